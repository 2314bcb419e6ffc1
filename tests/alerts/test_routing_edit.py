"""`alerts.routing_edit` on files of several layouts: each edit made in the smallest enclosing
item the layout allows, and always the whole result validated."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from alerts.errors import RoutingEditRefused, RoutingError, UnknownRoutingPartError
from alerts.routing import load_routing
from alerts.routing_edit import RoutingFile

SHIPPED = files("alerts").joinpath("data/routing.yaml").read_text()
HEADER = "# Default routing for the simulated city."


def routing_file(tmp_path: Path, text: str = SHIPPED) -> RoutingFile:
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    return RoutingFile(path)


def test_a_team_moves_to_another_handler_in_one_write(tmp_path: Path) -> None:
    edits = routing_file(tmp_path)
    edits.put_team("gas-company", {"id": "gas-night", "name": "Night"})
    moved = edits.put_team("fire-rescue", {"id": "gas-night", "name": "Moved"})
    handler, team = moved.team("gas-night")
    assert (handler.id, team.name) == ("fire-rescue", "Moved")
    assert [t.id for t in moved.team("gas-emergency")[0].teams] == ["gas-emergency"]
    assert edits.path is not None
    text = edits.path.read_text()
    assert text.startswith(HEADER) and load_routing(edits.path) == moved


def test_a_flow_style_team_list_is_rewritten_within_its_handler(tmp_path: Path) -> None:
    flow = SHIPPED.replace(
        "    teams:\n      - id: traffic-control\n        name: Traffic control room\n"
        "        channels: [{type: mqtt}]\n",
        "    teams: [{id: traffic-control, name: Traffic control room,"
        " channels: [{type: mqtt}]}]\n")
    assert flow != SHIPPED
    edits = routing_file(tmp_path, flow)
    new = edits.put_team("traffic-police", {"id": "traffic-night", "name": "Night desk"})
    assert [t.id for t in new.team("traffic-night")[0].teams] == ["traffic-control",
                                                                  "traffic-night"]
    assert edits.path is not None and load_routing(edits.path) == new
    text = edits.path.read_text()
    assert text.startswith(HEADER)  # the edit stayed in the handler
    assert text.count("\n") == flow.count("\n") + 2  # the list in block style: a line a team


def test_an_invalid_file_on_disk_is_not_edited(tmp_path: Path) -> None:
    broken = SHIPPED.replace("levels: [ecc-duty]", "levels: [nobody]")
    edits = routing_file(tmp_path, broken)
    with pytest.raises(RoutingEditRefused, match=r"nobody.*routing check"):
        edits.put_team("fire-rescue", {"id": "fire-night", "name": "Night"})
    assert edits.path is not None and edits.path.read_text() == broken


def test_the_only_team_of_a_handler_stays(tmp_path: Path) -> None:
    edits = routing_file(tmp_path)
    with pytest.raises(RoutingEditRefused, match="only team of handler 'fire-rescue'"):
        edits.put_team("water-authority", {"id": "fire-station", "name": "Fire"})


def test_unknown_parts_and_invalid_results(tmp_path: Path) -> None:
    edits = routing_file(tmp_path)
    with pytest.raises(UnknownRoutingPartError, match="handler 'nope'"):
        edits.put_team("nope", {"id": "x", "name": "X"})
    with pytest.raises(UnknownRoutingPartError, match="schedule 'ecc-duty/lead'"):
        edits.uncover("ecc-duty", "lead", 0)
    with pytest.raises(RoutingError, match=r"line \d+, column \d+, handlers\.0\.teams\.2\.name"):
        edits.put_team("environment-bureau", {"id": "env-new", "name": ["not", "text"]})
    assert edits.path is not None and edits.path.read_text() == SHIPPED
