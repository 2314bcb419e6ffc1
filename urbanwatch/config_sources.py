"""Where settings come from, and naming that place when a setting is wrong.

- The configuration file: `--config FILE`, else `URBANWATCH_CONFIG`, else
  `/etc/urbanwatch/urbanwatch.toml` when it exists (a service's usual place), else none.
- Secrets from files, as Grafana and Alertmanager allow: `URBANWATCH_<KEY>_FILE=PATH` holds the
  value of `URBANWATCH_<KEY>` (e.g. `URBANWATCH_INFLUX__PASSWORD_FILE`), and a secrets folder
  (`URBANWATCH_SECRETS_DIR`, else `secrets_dir` in the file, else systemd's
  `$CREDENTIALS_DIRECTORY`) holds one file per setting, named by its dotted key
  (`influx.password`, `api.secret_key`). A value read from a file loses its final newline.
- The state folder: `$STATE_DIRECTORY` (systemd's `StateDirectory=`) when set; else
  `/var/lib/urbanwatch` when the settings come from `/etc/urbanwatch/urbanwatch.toml`; else
  `./.urbanwatch` (what `make demo` and a checkout use).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

ENV_PREFIX = "URBANWATCH_"
CONFIG_ENV = "URBANWATCH_CONFIG"
SECRETS_ENV = "URBANWATCH_SECRETS_DIR"
DEFAULT_CONFIG = Path("/etc/urbanwatch/urbanwatch.toml")
SERVICE_STATE_DIR = Path("/var/lib/urbanwatch")
CHECKOUT_STATE_DIR = Path(".urbanwatch")
_FILE_SUFFIX = "_FILE"
_NOT_SETTINGS = {CONFIG_ENV, SECRETS_ENV}


class SettingsError(ValueError):
    """Settings that cannot be used; `problems` has one line per problem, each naming its
    source (file and key, or environment variable) and never a secret's value."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def config_path(explicit: Path | None) -> Path | None:
    """The configuration file in force: `--config`, `URBANWATCH_CONFIG`, or the default one."""
    if explicit is not None:
        return _must_exist(explicit, "--config")
    named = os.environ.get(CONFIG_ENV)
    if named:
        return _must_exist(Path(named), CONFIG_ENV)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def _must_exist(path: Path, given_by: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} (given by {given_by}) not found")
    return path


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"{path}: not valid TOML: {exc}"]) from None


def default_state_dir(config: Path | None) -> Path:
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])
    if config is not None and config.resolve() == DEFAULT_CONFIG.resolve():
        return SERVICE_STATE_DIR
    return CHECKOUT_STATE_DIR


def secrets_dir(toml: Mapping[str, Any]) -> Path | None:
    named = os.environ.get(SECRETS_ENV) or toml.get("secrets_dir")
    named = named or os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(named) if named else None


class SecretFiles(PydanticBaseSettingsSource):
    """`URBANWATCH_*_FILE` variables and the secrets folder, as nested settings values."""

    def __init__(self, settings_cls: type[BaseSettings], folder: Path | None) -> None:
        super().__init__(settings_cls)
        self.folder = folder

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read at once in __call__

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, path in self.folder_files().items():
            _put(found, key.split("."), _read_secret(path, str(path)))
        for key, (name, path) in env_files().items():
            _put(found, key.split("."), _read_secret(path, f"{path} (from {name})"))
        return found

    def folder_files(self) -> dict[str, Path]:
        """Dotted setting key -> file, for the files of the folder named like a setting."""
        if self.folder is None or not self.folder.is_dir():
            return {}
        known = _dotted_keys(self.settings_cls)
        return {p.name: p for p in sorted(self.folder.iterdir()) if p.name in known}


class WithoutFileVariables(PydanticBaseSettingsSource):
    """The environment source without the `*_FILE` variables (`SecretFiles` reads those)."""

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.env.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        found = self.env()
        for key in env_files():
            *parents, last = key.split(".")
            node: Any = found
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(f"{last}_file", None)
        return found


def env_files() -> dict[str, tuple[str, Path]]:
    """Dotted setting key -> (variable, file) for every `URBANWATCH_<KEY>_FILE` variable."""
    out = {}
    for name, value in os.environ.items():
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper.endswith(_FILE_SUFFIX) and (
            upper not in _NOT_SETTINGS
        ):
            key = upper[len(ENV_PREFIX):-len(_FILE_SUFFIX)].lower().replace("__", ".")
            out[key] = (name, Path(value))
    return out


def _read_secret(path: Path, described: str) -> str:
    try:
        return path.read_text().removesuffix("\n").removesuffix("\r")
    except OSError as exc:
        raise SettingsError([f"{described}: cannot read the secret: {exc.strerror}"]) from None


def _put(target: dict[str, Any], path: list[str], value: str) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _dotted_keys(model: type[Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and hasattr(kind, "model_fields"):
            keys |= _dotted_keys(kind, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def source_of(loc: Sequence[str | int], options: Mapping[str, Any], config: Path | None,
              toml: Mapping[str, Any], folder: Path | None) -> str:
    """Where the value at `loc` came from, highest source first, e.g.
    `environment variable URBANWATCH_API__PORT` or `/etc/urbanwatch/urbanwatch.toml: [api] port`.
    """
    parts = [str(p) for p in loc]
    dotted = ".".join(parts)
    if _has(options, parts):
        return f"option {dotted}"
    env = ENV_PREFIX + "__".join(parts).upper()
    environ, files = {k.upper() for k in os.environ}, env_files()
    for depth in range(len(parts), 0, -1):  # a section given whole, as JSON, counts too
        name = ENV_PREFIX + "__".join(parts[:depth]).upper()
        if name in environ:
            return f"environment variable {name}"
        key = ".".join(parts[:depth])
        if key in files:
            variable, path = files[key]
            return f"file {path} (from {variable})"
    if folder is not None and (folder / dotted).is_file():
        return f"secret file {folder / dotted}"
    if config is not None and _has(toml, parts):
        section = f"[{'.'.join(parts[:-1])}] " if len(parts) > 1 else ""
        line = toml_line(config, parts)
        return f"{config}{f':{line}' if line else ''}: {section}{parts[-1]}"
    return f"setting {dotted} (or {env})"


def toml_line(path: Path, parts: Sequence[str]) -> int | None:
    """The line (1-based) that sets `parts` in a plain `[section]` / `key = value` file; None
    when it is written another way (inline tables, dotted keys)."""
    table, key = ".".join(parts[:-1]), parts[-1]
    current = ""
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and not line.startswith("[["):
            current = line.strip("[] ")
        elif current == table and line.partition("=")[0].strip().strip("\"'") == key:
            return number
    return None


def _has(tree: Mapping[str, Any], parts: Sequence[str]) -> bool:
    node: Any = tree
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True
