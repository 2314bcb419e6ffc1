"""The routing file: who handles what, over which channels, and how to escalate.

Routing is the first route whose match covers (category, district, severity, device types);
the last route must match everything and goes to the emergency command center. A file is
validated completely (references, ids, the catch-all) before it is returned, so a reload can
build the new config and swap it in only if it is good. Webhook secrets are named by
environment variable (`secret_env`); the dispatch shell reads them, never this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alerts.errors import RoutingError, UnknownTeamError
from alerts.paging_checks import PolicySteps, TeamPeople, paging_problems
from alerts.schedules import Member, Schedule
from alerts.steps import Gateway, Step, ordered
from devices import plain_yaml
from devices.names import DepartmentId, Kind, PolicyId, TeamId, check
from rules.detection import Category, Severity

ANY = "*"
SHIPPED = "alerts/data/routing.yaml"
_LOCATED = "located"  # validation context flag: cross-references are checked by the caller
Loc = tuple[str | int, ...]
DISPATCH_TOPIC = re.compile(r"dispatch(/[A-Za-z0-9][A-Za-z0-9._:-]*)+\Z")


def _category(raw: str) -> str:
    known = {c.value for c in Category} | {ANY}
    if raw not in known:
        raise ValueError(f"unknown category {raw!r}; expected one of {', '.join(sorted(known))}")
    return raw


CategoryName = Annotated[str, AfterValidator(_category)]


def _district(raw: str) -> str:
    return raw if raw == ANY else check(Kind.DISTRICT, raw)


DistrictOrAny = Annotated[str, AfterValidator(_district)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookTarget(_Model):
    """Where a team's webhook channel posts (configures `alerts.channels.webhook`)."""

    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    secret_env: str  # name of the environment variable holding the HMAC secret
    cap: bool = False  # send CAP 1.2 XML instead of the JSON body
    allow_http: bool = False  # plain http:// only when the route says so

    @model_validator(mode="after")
    def _https_unless_allowed(self) -> WebhookTarget:
        if self.url.startswith("http://") and not self.allow_http:
            raise ValueError(
                "webhook URL is plain http://: alerts would cross the network readable by "
                "anyone; use https:// or add allow_http: true to this channel"
            )
        return self


def _dispatch_topic(raw: str) -> str:
    """A topic under ``dispatch/`` (where teams' logins may read), without wildcards."""
    if not DISPATCH_TOPIC.match(raw):
        raise ValueError(
            f"topic {raw!r} must be dispatch/<level>[/<level>…] with levels of letters, digits"
            " and . _ : - (no wildcards + or #, no spaces); e.g. dispatch/gas-emergency"
        )
    return raw


class MqttTarget(_Model):
    """The topic a team's MQTT channel publishes to (configures `alerts.channels.mqtt`)."""

    type: Literal["mqtt"]
    topic: Annotated[str, AfterValidator(_dispatch_topic)] | None = None  # dispatch/{team_id}


ChannelTarget = Annotated[WebhookTarget | MqttTarget, Field(discriminator="type")]


class Team(_Model):
    id: TeamId
    name: str
    channels: tuple[ChannelTarget, ...] = ()
    members: tuple[Member, ...] = ()  # people that policy steps page (`alerts.schedules`)
    oncall: tuple[Schedule, ...] = ()

    def member(self, member_id: str) -> Member:
        return next(m for m in self.members if m.id == member_id)

    def schedule(self, schedule_id: str) -> Schedule | None:
        return next((s for s in self.oncall if s.id == schedule_id), None)


class Handler(_Model):
    """A department and its teams, with the districts and categories it covers."""

    id: DepartmentId
    name: str
    districts: tuple[DistrictOrAny, ...] = (ANY,)
    categories: tuple[CategoryName, ...] = (ANY,)
    teams: tuple[Team, ...] = Field(min_length=1)


class Policy(_Model):
    """Escalation: ack deadline per severity; when missed, level n+1 gets `levels[n]`; and
    `steps` paging the people on duty while the incident stays unacknowledged."""

    id: PolicyId
    ack_deadline_s: dict[Severity, int] = {}
    repeat_s: dict[Severity, int] = {}
    levels: tuple[TeamId, ...] = ()  # team ids for escalation levels 1, 2, …
    steps: Annotated[tuple[Step, ...], AfterValidator(ordered)] = ()

    @field_validator("ack_deadline_s", "repeat_s", mode="before")
    @classmethod
    def _severity_keys(cls, raw: object) -> object:
        if isinstance(raw, dict):
            return {Severity.parse(str(k)) if isinstance(k, str) else k: v for k, v in raw.items()}
        return raw

    def ack_deadline_ms(self, severity: Severity) -> int | None:
        seconds = self.ack_deadline_s.get(severity)
        return None if seconds is None else seconds * 1000

    def repeat_ms(self, severity: Severity) -> int | None:
        seconds = self.repeat_s.get(severity)
        return None if seconds is None else seconds * 1000


class Match(_Model):
    categories: tuple[CategoryName, ...] = (ANY,)
    districts: tuple[DistrictOrAny, ...] = (ANY,)
    device_types: tuple[str, ...] = (ANY,)
    min_severity: Severity = Severity.INFO

    @field_validator("min_severity", mode="before")
    @classmethod
    def _severity(cls, raw: object) -> object:
        return Severity.parse(raw) if isinstance(raw, str) else raw

    @property
    def catch_all(self) -> bool:
        wild = (self.categories, self.districts, self.device_types)
        return all(v == (ANY,) for v in wild) and self.min_severity is Severity.INFO

    def covers(
        self, category: str, district: str | None, severity: Severity, device_types: Iterable[str]
    ) -> bool:
        return (
            _hit(self.categories, [category])
            and _hit(self.districts, [district] if district else [])
            and _hit(self.device_types, device_types)
            and severity >= self.min_severity
        )


class Route(_Model):
    match: Match = Match()
    handler: DepartmentId
    team: TeamId
    policy: PolicyId


class RoutingConfig(_Model):
    version: Literal[1]
    handlers: tuple[Handler, ...] = Field(min_length=1)
    policies: tuple[Policy, ...] = Field(min_length=1)
    routes: tuple[Route, ...] = Field(min_length=1)
    gateways: tuple[Gateway, ...] = ()  # SMS/voice gateways that policy steps page through

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> RoutingConfig:
        if not (info.context or {}).get(_LOCATED):  # `parse_routing` reports them with lines
            problems = inconsistencies(self)
            if problems:
                raise ValueError("; ".join(f"{_dotted(loc)}: {msg}" for loc, msg in problems))
        return self

    def route(
        self,
        category: str,
        district: str | None,
        severity: Severity,
        device_types: Iterable[str] = (),
    ) -> Route:
        """The first route covering the incident; the catch-all guarantees one."""
        types = tuple(device_types)
        return next(r for r in self.routes if r.match.covers(category, district, severity, types))

    def team(self, team_id: str) -> tuple[Handler, Team]:
        """The team `team_id` and the handler it belongs to.

        Raises:
            UnknownTeamError: no such team.
        """
        for handler in self.handlers:
            for team in handler.teams:
                if team.id == team_id:
                    return handler, team
        raise UnknownTeamError(team_id)

    def policy(self, policy_id: str) -> Policy:
        return next(p for p in self.policies if p.id == policy_id)

    def gateway(self, gateway_id: str) -> Gateway | None:
        return next((g for g in self.gateways if g.id == gateway_id), None)


def _hit(allowed: tuple[str, ...], values: Iterable[str]) -> bool:
    return ANY in allowed or any(v in allowed for v in values)


def inconsistencies(config: RoutingConfig) -> list[tuple[Loc, str]]:
    """Cross-reference problems (ids, teams, policies, the catch-all), each with its location."""
    out: list[tuple[Loc, str]] = []
    seen_handlers: set[str] = set()
    teams: set[str] = set()
    for i, h in enumerate(config.handlers):
        if h.id in seen_handlers:
            out.append((("handlers", i, "id"), f"duplicate handler ids: {h.id}"))
        seen_handlers.add(h.id)
        for j, t in enumerate(h.teams):
            if t.id in teams:
                out.append((("handlers", i, "teams", j, "id"), f"duplicate team ids: {t.id}"))
            teams.add(t.id)
    for i, p in enumerate(config.policies):
        for k, team in enumerate(p.levels):
            if team not in teams:
                out.append(
                    (
                        ("policies", i, "levels", k),
                        f"policy {p.id}: unknown escalation team {team!r}",
                    )
                )
    policies = {p.id for p in config.policies}
    for n, r in enumerate(config.routes):
        handler = next((h for h in config.handlers if h.id == r.handler), None)
        if handler is None:
            out.append((("routes", n, "handler"), f"route {n}: unknown handler {r.handler!r}"))
        elif r.team not in {t.id for t in handler.teams}:
            out.append(
                (("routes", n, "team"), f"route {n}: handler {r.handler!r} has no team {r.team!r}")
            )
        if r.policy not in policies:
            out.append((("routes", n, "policy"), f"route {n}: unknown policy {r.policy!r}"))
    if not config.routes[-1].match.catch_all:
        last = ("routes", len(config.routes) - 1)
        out.append((last, "the last route must be a catch-all (match everything)"))
    return out + paging_problems(*_people(config))


def _people(
    config: RoutingConfig,
) -> tuple[dict[str, TeamPeople], tuple[Gateway, ...], list[PolicySteps]]:
    """What `paging_problems` checks: teams' people, the gateways, the policies' steps."""
    teams = {t.id: TeamPeople(("handlers", i, "teams", j), t.members, t.oncall)
             for i, h in enumerate(config.handlers) for j, t in enumerate(h.teams)}
    policies = [
        PolicySteps(("policies", i), p.steps, frozenset(
            {r.team for r in config.routes if r.policy == p.id} | set(p.levels)))
        for i, p in enumerate(config.policies)
    ]
    return teams, config.gateways, policies


def parse_routing(text: str, source: str = "<routing>") -> RoutingConfig:
    """Parse and validate a routing file's text.

    Raises:
        RoutingError: listing every problem as ``line N, column C, <field path>: <reason>``.
    """
    try:
        root, raw = plain_yaml.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise RoutingError(source, [f"{where}not valid YAML: {exc}"]) from exc
    try:
        config = RoutingConfig.model_validate(raw, context={_LOCATED: True})
    except ValidationError as exc:
        found = _without_echoes([(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()])
        raise RoutingError(source, [_located(root, loc, msg) for loc, msg in found]) from exc
    problems = inconsistencies(config)
    if problems:
        raise RoutingError(source, [_located(root, loc, msg) for loc, msg in problems])
    return config


def _without_echoes(errors: list[tuple[Loc, str, str]]) -> list[tuple[Loc, str]]:
    """The errors, less a list's "too short" that only echoes a bad item inside it (pydantic
    drops the bad item, then finds the list shorter than its minimum)."""
    locs = [loc for loc, _, _ in errors]
    return [(loc, msg) for loc, msg, kind in errors
            if kind != "too_short" or not any(o[:len(loc)] == loc and o != loc for o in locs)]


def _located(root: yaml.Node | None, loc: Loc, message: str) -> str:
    position = _position(root, loc)
    where = f"line {position[0]}, column {position[1]}, " if position is not None else ""
    return f"{where}{_dotted(loc)}: {message}"


def _dotted(loc: Loc) -> str:
    return ".".join(map(str, loc)) or "(file)"


def _position(node: yaml.Node | None, loc: Loc) -> tuple[int, int] | None:
    """1-based line and column of the node at `loc` (or of its nearest existing parent)."""
    if node is None:
        return None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is not None:  # a part not in the file (e.g. a union tag) is skipped
            node = child
    return node.start_mark.line + 1, node.start_mark.column + 1


@dataclass(frozen=True)
class RoutingSummary:
    """What a (re)load put in force, for logs and the API."""

    source: str
    handlers: int
    teams: int
    policies: int
    routes: int

    @classmethod
    def of(cls, config: RoutingConfig, source: str) -> RoutingSummary:
        teams = sum(len(h.teams) for h in config.handlers)
        return cls(source, len(config.handlers), teams, len(config.policies), len(config.routes))


def load_routing(path: Path | None = None) -> RoutingConfig:
    """Load `path`, or the default routing shipped in `alerts/data/routing.yaml`."""
    if path is None:
        text = resources.files("alerts").joinpath("data/routing.yaml").read_text()
        return parse_routing(text, SHIPPED)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RoutingError(str(path), [f"cannot read the file: {exc}"]) from exc
    return parse_routing(text, str(path))
