"""Settings: defaults, a TOML file, URBANWATCH_* variables and overrides, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from urbanwatch.config_sources import SettingsError
from urbanwatch.settings import load_settings, without_password


def test_defaults_put_everything_under_the_state_dir() -> None:
    s = load_settings()
    assert s.state_dir == Path(".urbanwatch")
    assert s.mqtt.url is None and s.influx.url is None
    assert s.db_url.startswith("sqlite+aiosqlite:///") and s.db_url.endswith("urbanwatch.db")
    assert (s.api.host, s.api.port) == ("127.0.0.1", 8000)


def test_sources_are_layered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "uw.toml"
    config.write_text(
        'state_dir = "/srv/uw"\n[influx]\ndatabase = "fromfile"\nport = 1111\n'
        '[mqtt]\ntopic_prefix = "file/"\n'
    )
    monkeypatch.setenv("URBANWATCH_INFLUX__PORT", "2222")
    monkeypatch.setenv("URBANWATCH_MQTT__TOPIC_PREFIX", "env/")
    s = load_settings(config, mqtt={"topic_prefix": "cli/", "url": None})
    assert s.state_dir == Path("/srv/uw")
    assert s.influx.database == "fromfile"  # file only
    assert s.influx.port == 2222  # env beats file
    assert s.mqtt.topic_prefix == "cli/"  # explicit option beats env
    assert s.db_url == "sqlite+aiosqlite:////srv/uw/urbanwatch.db"


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        load_settings(tmp_path / "nope.toml")


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "uw.toml"
    config.write_text("[influx]\ndatabse = 'typo'\n")
    with pytest.raises(SettingsError, match="databse"):
        load_settings(config)


@pytest.mark.parametrize(("url", "shown"), [
    ("mqtt://uw:s3cret@broker:1883", "mqtt://uw:***@broker:1883"),
    ("postgresql+asyncpg://app:p%40ss:word@db.local/uw", "postgresql+asyncpg://app:***@db.local/uw"),
    ("http://admin:x@[::1]:8086/?db=uw", "http://admin:***@[::1]:8086/?db=uw"),
    ("mqtt://only-user@broker:1883", "mqtt://only-user@broker:1883"),
    ("sqlite+aiosqlite:///state/urbanwatch.db", "sqlite+aiosqlite:///state/urbanwatch.db"),
])
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert without_password(url) == shown
