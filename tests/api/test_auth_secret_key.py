"""The signing key: strong and given outside development, generated and kept in development."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.security.secret_key import InsecureSecretError, resolve_secret_key
from urbanwatch.cli.app import app
from urbanwatch.config_sources import SettingsError
from urbanwatch.settings import load_settings

STRONG = "q8Vb3kz0-Lr5Yt2mWn7Xc1Pd4Hs9Gf6J"


@pytest.mark.parametrize(("secret", "reason"), [
    (None, "no secret key is set"),
    ("", "no secret key is set"),
    ("changeme", "well-known default"),
    ("a" * 64, "too little variety"),
    ("Short-but-varied1", "shorter than 32"),
])
def test_production_refuses_weak_or_missing_secrets(secret: str | None, reason: str,
                                                    tmp_path: Path) -> None:
    with pytest.raises(InsecureSecretError, match=reason):
        resolve_secret_key(secret, "production", tmp_path)
    with pytest.raises(SettingsError, match=reason):
        load_settings(state_dir=tmp_path, api={"environment": "production", "secret_key": secret})
    assert not (tmp_path / "secret_key").exists()


def test_production_takes_a_strong_secret(tmp_path: Path) -> None:
    settings = load_settings(api={"environment": "production", "secret_key": STRONG})
    assert resolve_secret_key(settings.api.secret_key, "production", tmp_path) == STRONG


def test_development_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    first = resolve_secret_key(None, "development", tmp_path / "state")
    assert len(first) >= 32
    stored = tmp_path / "state" / "secret_key"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert resolve_secret_key(None, "development", tmp_path / "state") == first  # a restart
    assert resolve_secret_key("given", "development", tmp_path / "state") == "given"


def test_serve_in_production_without_a_secret_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("URBANWATCH_API__ENVIRONMENT", "production")
    monkeypatch.delenv("URBANWATCH_API__SECRET_KEY", raising=False)
    result = CliRunner().invoke(app, ["serve", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())  # Rich wraps long lines
    assert "refuses to run in production" in output and "URBANWATCH_API__SECRET_KEY" in output
    assert list(tmp_path.iterdir()) == []  # nothing was started or written
