"""Change the routing file in place: put or remove a team, add or remove an on-call override.

The API and `urbanwatch teams` both call `RoutingFile`. Each change is read-modify-write under a
per-file lock, the way rule edits are (`rules.language.rulefile`): the edit is made on the file's
text with the round-trip helpers the rule editor uses too (`devices.yaml_text`), so the comments
and layout outside what changed stay; the WHOLE new text must pass `parse_routing` (the checks of
`urbanwatch routing check`, each problem with its line and column) before it is written
atomically beside the file and moved over it. Where the layout cannot be edited in place (a
flow-style list, say), the whole routing is written afresh, as a rule file is.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from alerts.errors import (
    ReadOnlyRoutingError,
    RoutingEditRefused,
    RoutingError,
    TeamInUseError,
    UnknownRoutingPartError,
    UnknownTeamError,
)
from alerts.routing import SHIPPED, Loc, RoutingConfig, parse_routing
from devices import plain_yaml
from devices.names import Kind, check
from devices.yaml_text import (
    append_items,
    cut_lines,
    dump_yaml,
    file_lock,
    last_line,
    replace_item,
    text_lines,
    write_atomic,
)

READ_ONLY = (
    f"the platform runs the routing shipped with urbanwatch ({SHIPPED}), which is not edited "
    "in place: copy it to a file of your own, set [alerts] routing_path (or "
    "URBANWATCH_ALERTS__ROUTING_PATH) to that file and restart, then edit teams"
)
Data = dict[str, Any]
Edit = Callable[[RoutingConfig, Data], Loc]  # changes the data in place; returns where


@dataclass(frozen=True)
class RoutingFile:
    """The routing file `path` runs on; None: the shipped routing, which is read-only."""

    path: Path | None

    def team_data(self, team_id: str) -> Data | None:
        """Team `team_id` as the file writes it (plain data), or None if there is none."""
        if self.path is None:
            raise ReadOnlyRoutingError(READ_ONLY)
        text = self.path.read_text(encoding="utf-8")
        where = _team_loc(parse_routing(text, str(self.path)), team_id)
        return None if where is None else dict(_at(plain_yaml.load(text)[1], where))

    def put_team(self, handler_id: str, team: Data) -> RoutingConfig:
        """Create team `team["id"]` under `handler_id`, or replace it (moving it there).

        Raises:
            UnknownRoutingPartError: no such handler.
            RoutingError: the routing would be invalid (nothing is written).
        """
        team_id = check(Kind.TEAM, str(team.get("id", "")))

        def put(config: RoutingConfig, data: Data) -> Loc:
            h = _handler_index(config, handler_id)
            teams = data["handlers"][h]["teams"]
            where = _team_loc(config, team_id)
            if where is not None and where[1] == h:
                teams[where[3]] = team
                return where
            teams.append(team)
            return ("handlers", h, "teams", len(teams) - 1)

        def move(config: RoutingConfig, data: Data) -> Loc:  # out of its old handler first
            where = _team_loc(config, team_id)
            if where is None or where[1] == _handler_index(config, handler_id):
                return ()
            return _drop_team(config, data, team_id, where)

        return self._change(move, put)

    def remove_team(self, team_id: str) -> RoutingConfig:
        """Remove a team that no route, escalation level or policy step names.

        Raises:
            UnknownTeamError: no such team.
            TeamInUseError: it is still named (the reasons list where).
        """
        check(Kind.TEAM, team_id)

        def edit(config: RoutingConfig, data: Data) -> Loc:
            where = _team_loc(config, team_id)
            if where is None:
                raise UnknownTeamError(team_id)
            references = referrers(config, team_id)
            if references:
                raise TeamInUseError(team_id, references)
            return _drop_team(config, data, team_id, where)

        return self._change(edit)

    def cover(
        self, team_id: str, schedule_id: str, member_id: str, start_ms: int, end_ms: int, tz: str
    ) -> RoutingConfig:
        """Add an override: `member_id` is on duty for the schedule from `start_ms` until
        `end_ms`, written in the city's time zone `tz` with its offset."""
        check(Kind.MEMBER, member_id)
        override = {"member": member_id, "start": _local(start_ms, tz), "end": _local(end_ms, tz)}

        def edit(config: RoutingConfig, data: Data) -> Loc:
            loc = _schedule_loc(config, team_id, schedule_id)
            schedule = _at(data, loc)
            overrides = schedule.setdefault("overrides", [])
            overrides.append(override)
            return (*loc, "overrides", len(overrides) - 1)

        return self._change(edit)

    def uncover(self, team_id: str, schedule_id: str, index: int) -> RoutingConfig:
        """Remove the override at `index` (0-based, in file order) of the schedule."""

        def edit(config: RoutingConfig, data: Data) -> Loc:
            loc = _schedule_loc(config, team_id, schedule_id)
            schedule = _at(data, loc)
            overrides = schedule.get("overrides") or []
            if not 0 <= index < len(overrides):
                raise UnknownRoutingPartError("override", f"{team_id}/{schedule_id}/{index}")
            del overrides[index]
            if not overrides:
                del schedule["overrides"]
                return loc
            return (*loc, "overrides", index)

        return self._change(edit)

    def _change(self, *edits: Edit) -> RoutingConfig:
        """Apply `edits` in turn to the file's data and text; write the result if it is valid."""
        if self.path is None:
            raise ReadOnlyRoutingError(READ_ONLY)
        source = str(self.path)
        with file_lock(self.path):
            text = self.path.read_text(encoding="utf-8")
            try:
                config = parse_routing(text, source)
            except RoutingError as exc:
                raise RoutingEditRefused(
                    f"the routing file {source} is invalid now, so it is not edited: "
                    f"{'; '.join(exc.problems)}; fix it (urbanwatch routing check) first"
                ) from None
            data = plain_yaml.load(text)[1]
            edited: str | None = text
            for edit in edits:
                before = copy.deepcopy(data)
                loc = edit(config, data)
                if loc and edited is not None:
                    edited = _edit_text(edited, before, data, loc)
            new_text = edited if edited is not None and _loads_as(edited, data) else dump_yaml(data)
            new = parse_routing(new_text, source)
            write_atomic(self.path, new_text)
            return new


def referrers(config: RoutingConfig, team_id: str) -> list[str]:
    """Where the routing names team `team_id`: routes, escalation levels, policy steps."""
    found = [f"route {n}" for n, r in enumerate(config.routes) if r.team == team_id]
    for policy in config.policies:
        if team_id in policy.levels:
            found.append(f"the escalation levels of policy {policy.id}")
        for k, step in enumerate(policy.steps):
            if any(page.to.startswith(f"{team_id}/") for page in step.notify):
                found.append(f"step {k} of policy {policy.id}")
    return found


def _drop_team(config: RoutingConfig, data: Data, team_id: str, where: Loc) -> Loc:
    _, h, _, t = where
    assert isinstance(h, int) and isinstance(t, int)
    if len(config.handlers[h].teams) == 1:
        raise RoutingEditRefused(
            f"team {team_id!r} is the only team of handler {config.handlers[h].id!r}, and a "
            "handler needs one: add another team to it first, or remove the handler by hand"
        )
    del data["handlers"][h]["teams"][t]
    return where


def _handler_index(config: RoutingConfig, handler_id: str) -> int:
    found = next((i for i, h in enumerate(config.handlers) if h.id == handler_id), None)
    if found is None:
        raise UnknownRoutingPartError("handler", handler_id)
    return found


def _team_loc(config: RoutingConfig, team_id: str) -> Loc | None:
    return next((("handlers", i, "teams", j) for i, h in enumerate(config.handlers)
                 for j, t in enumerate(h.teams) if t.id == team_id), None)


def _schedule_loc(config: RoutingConfig, team_id: str, schedule_id: str) -> Loc:
    where = _team_loc(config, team_id)
    if where is None:
        raise UnknownTeamError(team_id)
    _, team = config.team(team_id)
    index = next((k for k, s in enumerate(team.oncall) if s.id == schedule_id), None)
    if index is None:
        raise UnknownRoutingPartError("on-call schedule", f"{team_id}/{schedule_id}")
    return (*where, "oncall", index)


def _local(ms: int, tz: str) -> str:
    try:
        moment = datetime.fromtimestamp(ms / 1000, ZoneInfo(tz))
    except (OverflowError, ValueError, OSError) as exc:  # beyond the years a date can hold
        raise RoutingEditRefused(f"time {ms} ms is out of range for an override") from exc
    spec = "minutes" if ms % 60_000 == 0 else "seconds" if ms % 1000 == 0 else "milliseconds"
    return moment.isoformat(timespec=spec)


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


def _get(data: Any, loc: Loc) -> Any:
    try:
        return _at(data, loc)
    except (KeyError, IndexError, TypeError):
        return None


def _plain(value: Any) -> Any:
    """`value` as JSON would hold it: a date the YAML loader built equals its text."""
    return json.loads(json.dumps(value, default=str))


def _loads_as(text: str, data: Data) -> bool:
    try:
        return _plain(plain_yaml.load(text)[1]) == _plain(data)
    except yaml.YAMLError:
        return False


def _edit_text(text: str, before: Data, after: Data, loc: Loc) -> str | None:
    """`text` (holding `before`) changed to hold `after`, which differs from it at item `loc`
    of a list (replaced, appended or removed); else in its parent item, and so on up; None when
    no enclosing item is a block mapping in a block list."""
    while len(loc) >= 2:
        edited = _edit_item(text, before, after, loc)
        if edited is not None:
            return edited
        loc = loc[:-2]
    return None


def _edit_item(text: str, before: Data, after: Data, loc: Loc) -> str | None:
    index = loc[-1]
    old, new = _get(before, loc), _get(after, loc)
    seq = _node(plain_yaml.compose(text), loc[:-1])
    if not isinstance(index, int) or not isinstance(seq, yaml.SequenceNode):
        return None
    if seq.flow_style or not seq.value or len(_get(after, loc[:-1]) or []) == 0:
        return None
    lines = text_lines(text)
    grew = len(_get(after, loc[:-1])) > len(seq.value)
    if grew and isinstance(new, dict):  # appended at the end
        append_items(lines, seq.value[-1], [new])
        return "".join(lines)
    node = seq.value[index]
    if not isinstance(node, yaml.MappingNode):
        return None
    if len(_get(after, loc[:-1])) < len(seq.value):  # removed
        floor = seq.start_mark.line if index == 0 else last_line(lines, seq.value[index - 1]) + 1
        del lines[slice(*cut_lines(lines, node, floor))]
        return "".join(lines)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None
    replace_item(lines, node, new, (_plain(old), _plain(new)))
    return "".join(lines)


def _node(node: yaml.Node | None, loc: Loc) -> yaml.Node | None:
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if 0 <= part < len(node.value) else None
        else:
            return None
    return node
