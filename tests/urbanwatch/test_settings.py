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


def test_the_city_time_zone_comes_from_the_file(tmp_path: Path) -> None:
    assert load_settings().city.timezone == "Asia/Shanghai"
    config = tmp_path / "urbanwatch.toml"
    config.write_text('[city]\ntimezone = "Europe/Berlin"\n')
    assert load_settings(config).city.timezone == "Europe/Berlin"


@pytest.fixture
def system_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the default configuration file is looked for, in this test (absent at first)."""
    path = tmp_path / "etc" / "urbanwatch.toml"
    path.parent.mkdir()
    monkeypatch.setattr("urbanwatch.config_sources.DEFAULT_CONFIG", path)
    for name in ("URBANWATCH_CONFIG", "STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_the_default_file_then_urbanwatch_config_then_the_option(
    system_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().state_dir == Path(".urbanwatch")  # a checkout: `make demo` as before
    system_config.write_text('[influx]\ndatabase = "system"\n')
    s = load_settings()
    assert s.influx.database == "system"
    assert s.state_dir == Path("/var/lib/urbanwatch")  # installed as a service
    named = tmp_path / "named.toml"
    named.write_text('[influx]\ndatabase = "named"\n')
    monkeypatch.setenv("URBANWATCH_CONFIG", str(named))
    assert load_settings().influx.database == "named"
    assert load_settings().state_dir == Path(".urbanwatch")
    option = tmp_path / "option.toml"
    option.write_text('[influx]\ndatabase = "option"\n')
    assert load_settings(option).influx.database == "option"
    monkeypatch.setenv("URBANWATCH_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(FileNotFoundError, match="URBANWATCH_CONFIG"):
        load_settings()


def test_systemd_state_directory_is_the_state_folder(
    system_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/uw-a:/var/lib/uw-b")
    assert load_settings().state_dir == Path("/var/lib/uw-a")
    assert load_settings(state_dir=Path("/srv/x")).state_dir == Path("/srv/x")


def test_secrets_come_from_files_and_are_never_shown(
    system_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "influx.password").write_text("from-folder\n")
    (folder / "db.url").write_text("postgresql+asyncpg://uw:pw@db/uw\n")
    (folder / "README").write_text("not a setting: ignored\n")
    monkeypatch.setenv("URBANWATCH_SECRETS_DIR", str(folder))
    s = load_settings()
    assert (s.influx.password, s.db.url) == ("from-folder", "postgresql+asyncpg://uw:pw@db/uw")
    key = tmp_path / "api-key"
    key.write_text("k" * 20 + "-VeryRandom-0123456789\n")
    monkeypatch.setenv("URBANWATCH_API__SECRET_KEY_FILE", str(key))
    monkeypatch.setenv("URBANWATCH_INFLUX__PASSWORD_FILE", str(key))  # beats the folder
    s = load_settings()
    assert s.api.secret_key == s.influx.password == "k" * 20 + "-VeryRandom-0123456789"
    shown = repr(s) + str(s)
    assert "VeryRandom" not in shown and "pw@db" not in shown
    monkeypatch.setenv("URBANWATCH_INFLUX__PASSWORD", "plain")  # a variable beats its file
    assert load_settings().influx.password == "plain"


def test_an_unreadable_secret_file_names_its_variable(
    system_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("URBANWATCH_INFLUX__PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match=r"URBANWATCH_INFLUX__PASSWORD_FILE.*cannot read"):
        load_settings()


def test_the_secrets_folder_may_be_named_in_the_file(
    system_config: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "creds"
    folder.mkdir()
    (folder / "mqtt.url").write_text("mqtt://uw:secret@broker.example:1883")
    system_config.write_text(f'secrets_dir = "{folder}"\n')
    assert load_settings().mqtt.url == "mqtt://uw:secret@broker.example:1883"


@pytest.mark.parametrize(("env", "value", "problem"), [
    ("URBANWATCH_API__PORT", "0", "environment variable URBANWATCH_API__PORT: Input should be "
     "greater than or equal to 1"),
    ("URBANWATCH_RULES__TICK_S", "-1", "environment variable URBANWATCH_RULES__TICK_S: Input "
     "should be greater than 0"),
    ("URBANWATCH_ALERTS__LIVE_BACKLOG_EVENTS", "0", "URBANWATCH_ALERTS__LIVE_BACKLOG_EVENTS"),
    ("URBANWATCH_CITY__TIMEZONE", "UTC+8", "'UTC+8' is not an IANA time zone"),
    ("URBANWATCH_CAP__SENDER", "ops center", "URBANWATCH_CAP__SENDER"),
    ("URBANWATCH_SMTP__PORT", "70000", "environment variable URBANWATCH_SMTP__PORT: Input should "
     "be less than or equal to 65535"),
    ("URBANWATCH_SMTP__TIMEOUT_S", "0", "URBANWATCH_SMTP__TIMEOUT_S: Input should be greater"),
    ("URBANWATCH_SMTP__SECURITY", "tls", "URBANWATCH_SMTP__SECURITY: Input should be 'starttls'"),
    ("URBANWATCH_SMTP__FROM_ADDRESS", "ops center", "URBANWATCH_SMTP__FROM_ADDRESS"),
    ("URBANWATCH_API__PUBLIC_URL", "ops.example.org", "URBANWATCH_API__PUBLIC_URL"),
], ids=["port", "tick", "backlog", "zone", "sender", "smtp-port", "smtp-timeout",
        "smtp-security", "smtp-from", "public-url"])
def test_numbers_and_names_are_checked_and_the_variable_named(
    system_config: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert len(caught.value.problems) == 1 and problem in caught.value.problems[0]


def test_the_mail_server_password_comes_from_a_file_and_is_never_shown(
    system_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("Mail-Secret-42\n")
    system_config.write_text(
        '[smtp]\nhost = "mail.example.org"\nport = 465\nsecurity = "ssl"\n'
        'username = "urbanwatch"\nfrom_address = "ops@example.org"\n'
    )
    monkeypatch.setenv("URBANWATCH_SMTP__PASSWORD_FILE", str(secret))
    s = load_settings()
    assert (s.smtp.host, s.smtp.port, s.smtp.security) == ("mail.example.org", 465, "ssl")
    assert s.smtp.password == "Mail-Secret-42" and "Mail-Secret" not in repr(s) + str(s)
    monkeypatch.delenv("URBANWATCH_SMTP__PASSWORD_FILE")
    with pytest.raises(SettingsError, match=r"smtp\.username and smtp\.password are needed"):
        load_settings()


def test_links_in_pages_go_to_the_public_url_then_the_cap_web_address(
    system_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().dashboard_url == "http://127.0.0.1:8000"
    monkeypatch.setenv("URBANWATCH_CAP__WEB", "https://warnings.example.org")
    assert load_settings().dashboard_url == "https://warnings.example.org"
    monkeypatch.setenv("URBANWATCH_API__PUBLIC_URL", "https://ops.example.org/")
    assert load_settings().dashboard_url == "https://ops.example.org/"
