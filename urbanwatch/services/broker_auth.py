"""Who may use the managed broker: the platform's own users and every provisioned device.

The platform's users are generated once into the broker's state folder
(`platform-users.json`, owner-only) and each gets only what it needs:

- ingest: read `city/#` (subscribe to readings), write `deadletter/#`;
- dispatch: write `dispatch/#`;
- simulator: write `city/#` (demos and `urbanwatch simulate`).

Teams given a login (`urbanwatch teams login`, the API) may read `dispatch/{team}/#` only.

`sync_broker_auth` renders the password and ACL files from SQL (devices, their
credentials) plus those users and installs them; Mosquitto reloads on SIGHUP only
when something changed. Callers: the platform at start and on every registry
refresh (catching writes by other processes), the API through
`ApiContext.on_devices_changed`, and the devices CLI right after it writes.
A broker given by URL (`mqtt.url`) is not managed: nothing is written for it, but
`urbanwatch devices export-broker-auth` renders the same files for it (`render_broker_auth`,
with the platform's login there: `external_platform_user`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.sql.team_logins import TeamLogins
from devices.credential_store import CredentialStore
from devices.credentials import (
    PLATFORM_USER_PREFIX,
    PlatformUser,
    generate_password,
    hash_password,
    render_acl_file,
    render_password_file,
)
from devices.private_paths import private_dir
from devices.store import DeviceStore
from urbanwatch.database import create_engine, create_session_factory, migrate
from urbanwatch.services.managed_service import ServiceError
from urbanwatch.services.mosquitto import Mosquitto, TlsFiles, write_private
from urbanwatch.services.ports import HOST
from urbanwatch.services.services import Services
from urbanwatch.settings import Settings

PLATFORM_ACCESS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # role: (read, write) topic filters, before the topic prefix
    "ingest": (("city/#",), ("deadletter/#",)),
    "dispatch": ((), ("dispatch/#",)),
    "simulator": ((), ("city/#",)),
}
_USERS_FILE = "platform-users.json"


@dataclass(frozen=True)
class Login:
    username: str
    password: str


def managed(settings: Settings) -> bool:
    return settings.mqtt.url is None


def mqtt_tls(settings: Settings) -> TlsFiles | None:
    """The managed broker's TLS files, when its certificate and key are configured."""
    m = settings.mqtt  # all three or none (checked by `MqttSettings`)
    if m.tls_cert is None or m.tls_key is None or m.tls_ca is None:
        return None
    return TlsFiles(cert=m.tls_cert, key=m.tls_key, ca=m.tls_ca)


def managed_services(settings: Settings, *, mosquitto_bin: str | None = None,
                     influxd_bin: str | None = None) -> Services:
    """The services of `settings` that are not given by URL, under its state folder (the
    same ones for `serve`, `demo` and `urbanwatch services`, so each adopts the others')."""
    manage = {"mosquitto"} if settings.mqtt.url is None else set()
    manage |= {"influxd"} if settings.influx.url is None else set()
    return Services(
        settings.state_dir / "services", mqtt_port=settings.mqtt.port,
        influx_port=settings.influx.port, influx_host=settings.influx.host,
        mqtt_tls=mqtt_tls(settings), manage=frozenset(manage),
        mosquitto_bin=mosquitto_bin, influxd_bin=influxd_bin,
    )


def managed_broker(settings: Settings) -> Mosquitto:
    return managed_services(settings).mqtt


def platform_logins(broker_dir: Path) -> dict[str, Login]:
    """The platform's broker logins, created on first use and kept in the broker's folder
    under the state folder (`Mosquitto.origin`: the broker's own user never reads them)."""
    stored = _load_users(broker_dir)
    return {role: Login(u["username"], u["password"]) for role, u in stored.items()}


def client_url(settings: Settings, role: str) -> str:
    """The URL a platform client of `role` connects with (credentials in it when managed, or
    when `mqtt.username` / `mqtt.password` are set for an external broker)."""
    m = settings.mqtt
    if m.url is not None:
        if m.username is None or m.password is None:
            return m.url
        parts = urlsplit(m.url)
        host = parts.netloc.rpartition("@")[2]
        userinfo = f"{quote(m.username, safe='')}:{quote(m.password, safe='')}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
    login = platform_logins(managed_broker(settings).origin)[role]
    scheme = "mqtts" if settings.mqtt.tls_ca else "mqtt"
    user, password = quote(login.username, safe=""), quote(login.password, safe="")
    return f"{scheme}://{user}:{password}@{HOST}:{settings.mqtt.port}"


async def sync_broker_auth(
    settings: Settings, sessions: async_sessionmaker[AsyncSession] | None = None,
) -> bool:
    """Install the current users and ACLs into the managed broker; True if they changed.

    Without `sessions`, the SQL database of `settings` is opened (and migrated) here.
    """
    if not managed(settings):
        return False
    if sessions is None:
        await migrate(settings.db_url)
        engine = create_engine(settings.db_url)
        try:
            return await sync_broker_auth(settings, create_session_factory(engine))
        finally:
            await engine.dispose()
    broker = managed_broker(settings)
    passwords, acl = await render_broker_auth(settings, sessions, _platform_users(broker.origin))
    return broker.install_auth(passwords, acl)


async def render_broker_auth(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], platform: list[PlatformUser],
) -> tuple[str, str]:
    """Mosquitto's password and ACL files: `platform`, the team logins, every admitted device."""
    devices, _ = await DeviceStore(sessions).list()
    credentials = await CredentialStore(sessions).all()
    users = platform + await TeamLogins(sessions).users()
    passwords = render_password_file(devices, credentials, users)
    acl = render_acl_file(devices, credentials, users, prefix=settings.mqtt.topic_prefix)
    return passwords, acl


async def broker_auth_version(sessions: async_sessionmaker[AsyncSession]) -> tuple[object, ...]:
    """What changes whenever the rows `render_broker_auth` reads change: cheap to poll."""
    return (await DeviceStore(sessions).version(), await CredentialStore(sessions).version(),
            await TeamLogins(sessions).version())


def external_platform_user(settings: Settings) -> PlatformUser | None:
    """The platform's own login at a broker given by URL (`mqtt.username`, or the URL's user),
    with what its ingest and dispatch clients need; None when it has no login there."""
    if settings.mqtt.url is None:
        return None
    parts = urlsplit(client_url(settings, "ingest"))
    if parts.username is None or parts.password is None:
        return None
    read = tuple(t for role in ("ingest", "dispatch") for t in PLATFORM_ACCESS[role][0])
    write = tuple(t for role in ("ingest", "dispatch") for t in PLATFORM_ACCESS[role][1])
    return PlatformUser(unquote(parts.username), hash_password(unquote(parts.password)),
                        read, write)


def _platform_users(broker_dir: Path) -> list[PlatformUser]:
    stored = _load_users(broker_dir)
    return [
        PlatformUser(u["username"], u["password_hash"], *PLATFORM_ACCESS[role])
        for role, u in stored.items()
    ]


def _load_users(broker_dir: Path) -> dict[str, dict[str, str]]:
    """Read the users file, adding any role it lacks (hash kept, so files stay stable)."""
    path = broker_dir / _USERS_FILE
    try:
        stored: dict[str, dict[str, str]] = json.loads(path.read_text())
        if not isinstance(stored, dict) or not all(
            isinstance(u, dict) and {"username", "password", "password_hash"} <= u.keys()
            for u in stored.values()
        ):
            raise ValueError("not a map of role -> username, password, password_hash")
    except FileNotFoundError:
        stored = {}
    except ValueError as exc:  # JSONDecodeError included
        raise ServiceError(f"{path} is unreadable ({exc}); delete it and start again to make "
                           "new platform logins") from exc
    missing = [role for role in PLATFORM_ACCESS if role not in stored]
    for role in missing:
        password = generate_password()
        stored[role] = {"username": f"{PLATFORM_USER_PREFIX}{role}", "password": password,
                        "password_hash": hash_password(password)}
    if missing:
        private_dir(broker_dir)
        write_private(path, json.dumps(stored, indent=2))
    return {role: stored[role] for role in PLATFORM_ACCESS}


def client_settings(settings: Settings, role: str) -> Settings:
    """`settings` with `mqtt.url` carrying the login of platform user `role`."""
    mqtt = settings.mqtt.model_copy(update={"url": client_url(settings, role)})
    return settings.model_copy(update={"mqtt": mqtt})


def broker_present(settings: Settings) -> bool:
    """Whether the managed broker of `settings` has been set up (its folder under the state
    folder exists: the platform's own logins are kept there, wherever the broker's files are)."""
    return managed(settings) and managed_broker(settings).origin.is_dir()
