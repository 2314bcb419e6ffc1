"""`config check`, `rules check FILE` and `routing check FILE`: offline, every problem with its
place, exit 1 on any (a city's CI runs them on its own configuration repository)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from urbanwatch.cli.app import app

runner = CliRunner()

BAD_RULES = """\
rules:
  # checked by the city's CI
  - id: a
    category: environment
    match: {device_type: air_quality, metric: pm25}
    when: value > > 150
    severity: orange
  - id: b
    category: nonsense
    match: {device_type: air_quality, metric: pm25}
    when: value > 1
    severity: purple
  - id: a
    category: environment
    match: {device_type: air_quality, metric: pm25}
    when: count_in(grid, rule=zz) > 1
"""


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # set (empty: no file) so that what `urbanwatch --config` sets is undone after the test
    monkeypatch.setenv("URBANWATCH_CONFIG", "")
    monkeypatch.setattr("urbanwatch.config_sources.DEFAULT_CONFIG", tmp_path / "absent.toml")


def test_rules_check_lists_every_problem_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BAD_RULES)
    result = runner.invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines == [
        f"error: {path}: line 6, column 19 (rule a): when: unexpected '>' at column 9: "
        "'value > > 150'",
        f"error: {path}: line 9, column 15 (rule b): category: Input should be 'environment', "
        "'traffic', 'safety', 'flood', 'fire', 'infrastructure' or 'device'",
        f"error: {path}: line 12, column 15 (rule b): severity: expected a severity, got name "
        "at column 1: 'purple'",
        f"error: {path}: line 13, column 5 (rule a): duplicate rule id 'a'",
        f"error: {path}: line 16, column 11 (rule a): count_in() refers to 'zz', which is not a "
        "per-series rule here",
        "5 problem(s) found",
    ]


def test_the_shipped_files_pass() -> None:
    pack = str(files("rules").joinpath("packs/default.yaml"))
    routing = str(files("alerts").joinpath("data/routing.yaml"))
    assert runner.invoke(app, ["rules", "check", pack]).exit_code == 0
    result = runner.invoke(app, ["routing", "check", routing])
    assert (result.exit_code, result.stdout.strip()) == (0, f"ok: {routing}")


def test_routing_check_lists_every_problem(tmp_path: Path) -> None:
    shipped = files("alerts").joinpath("data/routing.yaml").read_text()
    broken = shipped.replace("team: gas-emergency", "team: nobody").replace(
        "levels: [ecc-duty]", "levels: [ghost]")
    lines = broken.splitlines()
    path = tmp_path / "routing.yaml"
    path.write_text(broken)
    result = runner.invoke(app, ["routing", "check", str(path)])
    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert problems[-1] == "2 problem(s) found"
    assert problems[0].startswith(
        f"error: {path}: line {lines.index('    levels: [ghost]') + 1}, column 14, ")
    assert problems[1].startswith(
        f"error: {path}: line {lines.index('    team: nobody') + 1}, column 11, ")


def test_a_yaml_syntax_error_has_its_place(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - id: a\n    when: [\n")
    result = runner.invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 1 and "line 4, column 1: invalid YAML" in result.stderr


def test_config_check_names_each_bad_setting_by_file_and_key_or_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "urbanwatch.toml"
    config.write_text('[influx]\ndatabse = "x"\nport = 0\n[api]\nport = 70000\n'
                      '[city]\ntimezone = "Mars/Olympus"\n[cap]\nweb = "ftp://x"\n')
    monkeypatch.setenv("URBANWATCH_INGEST__BATCH_SIZE", "0")
    result = runner.invoke(app, ["--config", str(config), "config", "check"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {config}:3: [influx] port: Input should be greater than or equal to 1",
        f"error: {config}:2: [influx] databse: unknown setting",
        f"error: {config}:5: [api] port: Input should be less than or equal to 65535",
        "error: environment variable URBANWATCH_INGEST__BATCH_SIZE: Input should be greater "
        "than or equal to 1",
        f"error: {config}:7: [city] timezone: 'Mars/Olympus' is not an IANA time zone "
        "(e.g. Asia/Shanghai)",
        f"error: {config}:9: [cap] web: String should match pattern '^https?://\\S+$'",
        "6 problem(s) found",
    ]


def test_config_check_also_checks_the_rule_and_routing_files_it_names(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BAD_RULES)
    config = tmp_path / "urbanwatch.toml"
    config.write_text(f'[rules]\npath = "{rules}"\n')
    result = runner.invoke(app, ["config", "check", "--config", str(config)])
    assert result.exit_code == 1 and "5 problem(s) found" in result.stderr

    rules.write_text(files("rules").joinpath("packs/default.yaml").read_text())
    result = runner.invoke(app, ["config", "check", "--config", str(config)])
    assert result.exit_code == 0 and result.stdout.startswith(f"ok: settings from {config}")


def test_a_weak_secret_is_reported_without_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("changeme\n")
    monkeypatch.setenv("URBANWATCH_API__ENVIRONMENT", "production")
    monkeypatch.setenv("URBANWATCH_API__SECRET_KEY_FILE", str(secret))
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 1 and "changeme" not in result.output
    assert "well-known default" in result.stderr


def test_routing_check_lists_every_problem_of_the_people_and_their_steps(tmp_path: Path) -> None:
    example = Path(__file__).parents[3] / "docs" / "routing-oncall.example.yaml"
    assert runner.invoke(app, ["routing", "check", str(example)]).exit_code == 0
    broken = example.read_text().replace(
        "members: [li.wei, wang.fang, zhao.lei]", "members: [li.wei, ghost]").replace(
        "channel: voice", "channel: fax")
    path = tmp_path / "routing.yaml"
    path.write_text(broken)
    result = runner.invoke(app, ["routing", "check", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {path}: line 21, column 33, handlers.0.teams.0.oncall.0.rotation.members.1: "
        "team gas-emergency has no member 'ghost'",
        f"error: {path}: line 74, column 22, policies.0.steps.2.notify.0.channel: "
        "unknown channel 'fax'; known: email, sms, voice",
        "2 problem(s) found",
    ]
