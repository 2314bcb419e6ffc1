"""Shared fixtures: our own Mosquitto and influxd on free ports, started lazily.

`mosquitto` / `influxd` (session): one server process each for the whole run,
started the first time a test asks for it, stopped at the end. They expose
`.url`, `.host`, `.port` and `start()` / `stop()` / `restart()`; a test that
stops or kills one gets it started again (same port) after it finishes.
`secured_mosquitto` (function): a broker of its own with users and ACLs, none at first.
`influx_db` (function): an `InfluxClient` on a fresh database with the schema
(`ensure_schema`), dropped afterwards. `topic_prefix` (function): a unique
`t<hex>/`. `settings` (function): `Settings` pointing at all of those.
A missing binary fails the run with the install command; nothing is skipped.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from ingest.timeseries.client import InfluxClient
from tests.support.deadletters import deadletters  # noqa: F401  (shared fixture)
from tests.support.postgres import db_url, pg_server, sessions  # noqa: F401  (SQL fixtures)
from urbanwatch.services.influxd import Influxd
from urbanwatch.services.managed_service import ManagedService, MissingBinaryError, ServiceError
from urbanwatch.services.mosquitto import ORIGIN, Mosquitto, broker_user
from urbanwatch.services.ports import free_port
from urbanwatch.settings import Settings

# No timing in tests: on a loaded machine an example may be slow without being wrong.
hypothesis_settings.register_profile(
    "urbanwatch", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("urbanwatch")

_SERVICE_FIXTURES = {"mosquitto", "secured_mosquitto", "influxd", "influx_db", "settings"}
_started: list[ManagedService] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a real service carry the `services` marker (`-m "not services"`)."""
    for item in items:
        if _SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def _start(cls: type[ManagedService], state_dir: Path, *, revive: bool = True,
           **options: Any) -> ManagedService:
    """Start on a free port, retrying with another one if it was taken meanwhile."""
    error: ServiceError | None = None
    for _ in range(3):
        svc = cls(state_dir, free_port(), **options)
        try:
            svc.start()
        except MissingBinaryError as exc:
            error = exc
            break
        except ServiceError as exc:
            error = exc
            svc.stop()
            continue
        if revive:
            _started.append(svc)
        return svc
    pytest.fail(f"could not start {cls.name} for the tests: {error}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _broker_folders_removed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Brokers started as root keep their files under the broker user's home, not under the
    state folder (`urbanwatch.services.mosquitto`): remove those of this session's folders."""
    yield
    user = broker_user()
    if user is None:
        return
    base = str(tmp_path_factory.getbasetemp())
    for folder in Path(user.pw_dir).glob("urbanwatch-*"):
        with contextlib.suppress(OSError):
            if (folder / ORIGIN).read_text().startswith(base):
                shutil.rmtree(folder)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """The shared broker admits anonymous clients; `secured_mosquitto` is the one that does not."""
    svc = _start(Mosquitto, tmp_path_factory.mktemp("services"), allow_anonymous=True)
    yield svc  # type: ignore[misc]
    _started.remove(svc)
    svc.stop()


@pytest.fixture
def secured_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test only, admitting just the users of its password and ACL files
    (none until installed). It lives where `Settings(state_dir=tmp_path, mqtt={"port": ...})`
    expects its managed broker, so `sync_broker_auth` manages it."""
    svc = _start(Mosquitto, tmp_path / "services", revive=False)
    yield svc  # type: ignore[misc]
    svc.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    svc = _start(Influxd, tmp_path_factory.mktemp("services"))
    yield svc  # type: ignore[misc]
    _started.remove(svc)
    svc.stop()


@pytest.fixture(autouse=True)
def _revive_services() -> Iterator[None]:
    """Bring back a session service that the test stopped, so the next test finds it up."""
    yield
    for svc in _started:
        if not (svc.is_running() and svc.answers()):
            svc.start()


@pytest.fixture
async def influx_db(influxd: Influxd) -> AsyncIterator[InfluxClient]:
    client = InfluxClient(influxd.url, f"test_{uuid.uuid4().hex[:12]}")
    await client.ensure_schema()
    yield client
    if not await client.ping():  # the test may have left influxd stopped
        influxd.start()
    await client.drop_database()
    await client.aclose()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def settings(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, influx_db: InfluxClient,
    topic_prefix: str,
) -> Settings:
    return Settings(
        state_dir=tmp_path,
        mqtt={"url": mosquitto.url, "port": mosquitto.port, "topic_prefix": topic_prefix,
              "client_id": f"uw-test-{uuid.uuid4().hex[:12]}"},
        influx={"url": influxd.url, "port": influxd.port, "database": influx_db.database},
    )
