"""`urbanwatch teams list|show|set|remove|cover|uncover` on a routing file named by --config:
the same edits as the API's (`alerts.routing_edit`), comments kept, every problem printed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerts.sql.team_logins import TeamLogins
from urbanwatch.cli.app import app
from urbanwatch.database import create_engine, create_session_factory
from urbanwatch.settings import Settings

runner = CliRunner()
EXAMPLE = (Path(__file__).parents[3] / "docs" / "routing-oncall.example.yaml").read_text()
NOTE = "# dashboard and MQTT get every dispatch at once"
NIGHT = """\
# the night crew, from the duty roster
name: Gas night crew
channels: [{type: mqtt}]
members:
  - {id: ma.lin, name: Ma Lin, phone: "+8613800000009"}
oncall:
  - id: lead
    rotation: {members: [ma.lin]}
"""


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # set (empty: no file) so that what `urbanwatch --config` sets is undone after the test
    monkeypatch.setenv("URBANWATCH_CONFIG", "")
    monkeypatch.setattr("urbanwatch.config_sources.DEFAULT_CONFIG", tmp_path / "absent.toml")


@pytest.fixture
def routing(tmp_path: Path) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(EXAMPLE)
    return path


def teams(tmp_path: Path, routing: Path | None, *args: str) -> tuple[int, str, str]:
    config = tmp_path / "urbanwatch.toml"
    lines = [f"state_dir = {json.dumps(str(tmp_path / 'state'))}\n",
             '[city]\ntimezone = "Asia/Shanghai"\n']
    if routing is not None:
        lines.append(f"[alerts]\nrouting_path = {json.dumps(str(routing))}\n")
    config.write_text("".join(lines))
    result = runner.invoke(app, ["--config", str(config), "teams", *args])
    return result.exit_code, result.stdout, result.stderr


def test_list_and_show(tmp_path: Path, routing: Path) -> None:
    code, out, _ = teams(tmp_path, routing, "list")
    assert code == 0 and [line.split()[:2] for line in out.splitlines()] == [
        ["gas-emergency", "gas-company"], ["ecc-duty", "emergency-command"]]
    code, out, _ = teams(tmp_path, routing, "show", "gas-emergency", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["members"][0]["phone"] == "+8613800000001"
    assert shown["oncall"][0]["overrides"][0]["start"] == "2026-12-24T10:00:00.000Z"
    code, _, err = teams(tmp_path, routing, "show", "nobody")
    assert code == 1 and "no team 'nobody'" in err


def test_set_from_a_file_and_remove_keep_the_comments(tmp_path: Path, routing: Path) -> None:
    team_file = tmp_path / "night.yaml"
    team_file.write_text(NIGHT)
    code, out, err = teams(tmp_path, routing, "set", "gas-night", "--handler", "gas-company",
                           "--from-file", str(team_file))
    assert code == 0, err
    assert "next alert tick" in out  # how the running platform picks it up
    text = routing.read_text()
    assert NOTE in text and "id: gas-night" in text and "+8613800000009" in text
    code, out, _ = teams(tmp_path, routing, "set", "gas-night", "--handler", "gas-company",
                         "--name", "Night shift")
    assert code == 0
    shown = json.loads(teams(tmp_path, routing, "show", "gas-night", "--json")[1])
    assert shown["name"] == "Night shift" and shown["members"][0]["id"] == "ma.lin"
    code, out, err = teams(tmp_path, routing, "login", "gas-night", "--json")
    assert code == 0, err
    assert json.loads(out)["username"] == "urbanwatch.team.gas-night"
    code, _, err = teams(tmp_path, routing, "remove", "gas-night")
    assert code == 0, err
    assert routing.read_text() == EXAMPLE
    assert asyncio.run(team_logins(tmp_path / "state")) == []  # its MQTT login went with it


async def team_logins(state_dir: Path) -> list[str]:
    engine = create_engine(Settings(state_dir=state_dir).db_url)
    try:
        return [u.username for u in await TeamLogins(create_session_factory(engine)).users()]
    finally:
        await engine.dispose()


def test_a_bad_phone_prints_its_line_and_writes_nothing(tmp_path: Path, routing: Path) -> None:
    team_file = tmp_path / "night.yaml"
    team_file.write_text(NIGHT.replace('"+8613800000009"', '"13800000009"'))
    code, _, err = teams(tmp_path, routing, "set", "gas-night", "--handler", "gas-company",
                         "--from-file", str(team_file))
    assert code == 1
    assert "members.0.phone" in err and "E.164" in err and err.startswith("error: line ")
    assert "the routing file is unchanged" in err
    assert routing.read_text() == EXAMPLE


def test_a_referenced_team_stays(tmp_path: Path, routing: Path) -> None:
    code, _, err = teams(tmp_path, routing, "remove", "ecc-duty")
    assert code == 1
    assert err == "error: team 'ecc-duty' is still named by route 1; step 2 of policy gas: " \
                  "change those first\n"
    assert routing.read_text() == EXAMPLE


def test_cover_in_city_time_then_uncover(tmp_path: Path, routing: Path) -> None:
    code, _, err = teams(tmp_path, routing, "cover", "gas-emergency", "lead", "wang.fang",
                         "--from", "2026-12-31T18:00", "--until", "1798765200000")
    assert code == 0, err
    text = routing.read_text()
    assert "start: 2026-12-31T18:00+08:00" in text and "end: 2027-01-01T09:00+08:00" in text
    shown = json.loads(teams(tmp_path, routing, "show", "gas-emergency", "--json")[1])
    assert shown["oncall"][0]["overrides"][1]["start"] == "2026-12-31T10:00:00.000Z"
    code, _, err = teams(tmp_path, routing, "uncover", "gas-emergency", "lead", "1")
    assert code == 0, err
    assert routing.read_text() == EXAMPLE
    code, _, err = teams(tmp_path, routing, "cover", "gas-emergency", "lead", "wang.fang",
                         "--from", "tomorrow", "--until", "2027-01-01T09:00")
    assert code == 1 and "tomorrow" in err


def test_the_shipped_routing_is_not_edited(tmp_path: Path) -> None:
    code, out, _ = teams(tmp_path, None, "list")
    assert code == 0 and "env-monitoring" in out
    code, _, err = teams(tmp_path, None, "remove", "env-enforcement")
    assert code == 1 and "routing_path" in err
