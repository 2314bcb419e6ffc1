"""The key that signs access tokens: required and strong in production; in development one is
generated once and kept in the state folder, so tokens survive a restart."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from devices.private_paths import open_private, private_dir

MIN_SECRET_LENGTH = 32
KNOWN_DEFAULTS = frozenset({
    "secret", "secret-key", "secret_key", "changeme", "change-me", "changethis", "default",
    "development", "dev", "test", "password", "urbanwatch", "insecure",
})
SECRET_FILE = "secret_key"


class InsecureSecretError(ValueError):
    """No usable secret key for this environment."""


def weakness(secret: str | None) -> str | None:
    """Why `secret` must not sign tokens in production, or None when it may."""
    if not secret:
        return "no secret key is set"
    if secret.strip().lower() in KNOWN_DEFAULTS or len(set(secret)) < 8:
        return "the secret key is a well-known default or has too little variety"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"the secret key is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def check_secret_key(secret: str | None, environment: str) -> None:
    """Outside development, raise `InsecureSecretError` unless `secret` is strong."""
    if environment == "development":
        return
    problem = weakness(secret)
    if problem is not None:
        raise InsecureSecretError(
            f"the API refuses to run in {environment} with this secret key: {problem}; set "
            f"URBANWATCH_API__SECRET_KEY (or [api] secret_key) to at least "
            f"{MIN_SECRET_LENGTH} random characters, e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )


def resolve_secret_key(secret: str | None, environment: str, state_dir: Path) -> str:
    """The secret to sign tokens with; in development without one, the state folder's."""
    check_secret_key(secret, environment)
    return secret or _stored_secret(state_dir / SECRET_FILE)


def _stored_secret(path: Path) -> str:
    if path.is_file():
        stored = path.read_text().strip()
        if stored:
            return stored
    private_dir(path.parent)
    secret = secrets.token_urlsafe(48)
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret
