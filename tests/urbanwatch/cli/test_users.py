"""`urbanwatch users add / passwd / disable / enable / delete / list` against a real SQLite
database in a state folder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from api.security.users import LoginRefusedError, UserStore
from urbanwatch.cli.app import app
from urbanwatch.database import create_engine, create_session_factory

runner = CliRunner()


def _uw(state: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--state-dir", str(state)], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def _authenticates(state: Path, name: str, password: str) -> bool:
    async def check() -> bool:
        engine = create_engine(f"sqlite+aiosqlite:///{state.resolve() / 'urbanwatch.db'}")
        try:
            await UserStore(create_session_factory(engine)).authenticate(name, password, 0)
            return True
        except LoginRefusedError:
            return False
        finally:
            await engine.dispose()

    return asyncio.run(check())


def test_add_passwd_list(tmp_path: Path) -> None:
    code, out, err = _uw(tmp_path, "users", "add", "rita", "--role", "responder", "--team",
                         "team-a", "--team", "team-b", "--password-stdin", stdin="first pass 1\n")
    assert code == 0, err
    assert out.strip() == "added rita: responder (teams team-a, team-b)"
    code, _, err = _uw(tmp_path, "users", "add", "root", "--role", "admin", "--password-stdin",
                       stdin="root password\n")
    assert code == 0, err
    assert _authenticates(tmp_path, "rita", "first pass 1")
    assert not _authenticates(tmp_path, "rita", "first pass 1\n")

    code, out, err = _uw(tmp_path, "users", "passwd", "rita", "--password-stdin",
                         stdin="second pass 2\n")
    assert code == 0, err and out.strip() == "password of rita changed"
    assert _authenticates(tmp_path, "rita", "second pass 2")
    assert not _authenticates(tmp_path, "rita", "first pass 1")

    code, out, _ = _uw(tmp_path, "users", "list", "--json")
    listed = json.loads(out)
    assert code == 0
    assert [(u["name"], u["role"], u["teams"], u["disabled"]) for u in listed] == [
        ("rita", "responder", ["team-a", "team-b"], False), ("root", "admin", [], False)]
    assert "password" not in out and "argon2" not in out
    code, out, _ = _uw(tmp_path, "users", "list")
    assert code == 0 and "rita" in out and "2 users" in out


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    cases = [
        (["users", "add", "ann", "--role", "viewer", "--password-stdin"], "short\n",
         "error: password too short: needs at least 8 characters"),
        (["users", "add", "ann", "--role", "responder", "--password-stdin"], "long enough\n",
         "error: a responder needs at least one team"),
        (["users", "add", "ann", "--role", "viewer", "--team", "t", "--password-stdin"],
         "long enough\n", "error: only responders belong to teams, not role viewer"),
        (["users", "add", " ann", "--role", "viewer", "--password-stdin"], "long enough\n",
         "error: invalid user name ' ann'"),
        (["users", "passwd", "nobody", "--password-stdin"], "long enough\n",
         "error: no user 'nobody'"),
    ]
    for args, stdin, message in cases:
        code, _, err = _uw(tmp_path, *args, stdin=stdin)
        assert code == 1 and err.strip().startswith(message), (args, err)
        assert len(err.strip().splitlines()) == 1
    code, out, _ = _uw(tmp_path, "users", "list", "--json")
    assert json.loads(out) == []
    code, _, err = _uw(tmp_path, "users", "add", "ann", "--role", "king", "--password-stdin",
                       stdin="long enough\n")
    assert code == 2 and "king" in err  # not a role


def test_a_name_is_taken_once(tmp_path: Path) -> None:
    args = ["users", "add", "ann", "--role", "viewer", "--password-stdin"]
    assert _uw(tmp_path, *args, stdin="long enough\n")[0] == 0
    code, _, err = _uw(tmp_path, *args, stdin="other password\n")
    assert code == 1 and err.strip() == "error: user 'ann' already exists"
    assert _authenticates(tmp_path, "ann", "long enough")


def test_disable_and_enable(tmp_path: Path) -> None:
    assert _uw(tmp_path, "users", "add", "ann", "--role", "viewer", "--password-stdin",
               stdin="long enough\n")[0] == 0
    code, out, _ = _uw(tmp_path, "users", "disable", "ann")
    assert code == 0 and out.strip() == "ann: disabled"
    assert not _authenticates(tmp_path, "ann", "long enough")
    assert json.loads(_uw(tmp_path, "users", "list", "--json")[1])[0]["disabled"] is True
    code, out, _ = _uw(tmp_path, "users", "enable", "ann")
    assert code == 0 and out.strip() == "ann: enabled"
    assert _authenticates(tmp_path, "ann", "long enough")
    code, _, err = _uw(tmp_path, "users", "disable", "bob")
    assert code == 1 and err.strip() == "error: no user 'bob'"


def test_delete(tmp_path: Path) -> None:
    assert _uw(tmp_path, "users", "add", "ann", "--role", "viewer", "--password-stdin",
               stdin="long enough\n")[0] == 0
    code, out, _ = _uw(tmp_path, "users", "delete", "ann")
    assert code == 0 and out.strip() == "deleted ann"
    assert not _authenticates(tmp_path, "ann", "long enough")
    assert json.loads(_uw(tmp_path, "users", "list", "--json")[1]) == []
    code, _, err = _uw(tmp_path, "users", "delete", "ann")
    assert code == 1 and err.strip() == "error: no user 'ann'"
