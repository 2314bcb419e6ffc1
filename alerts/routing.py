"""The routing file: who handles what, over which channels, and how to escalate.

Routing is the first route whose match covers (category, district, severity, device types);
the last route must match everything and goes to the emergency command center. A file is
validated completely (references, ids, the catch-all) before it is returned, so a reload can
build the new config and swap it in only if it is good. Webhook secrets are named by
environment variable (`secret_env`); the dispatch shell reads them, never this module.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    field_validator,
    model_validator,
)

from alerts.errors import RoutingError
from rules.detection import Category, Severity

ANY = "*"
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]


def _category(raw: str) -> str:
    known = {c.value for c in Category} | {ANY}
    if raw not in known:
        raise ValueError(f"unknown category {raw!r}; expected one of {', '.join(sorted(known))}")
    return raw


CategoryName = Annotated[str, AfterValidator(_category)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookChannel(_Model):
    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    secret_env: str  # name of the environment variable holding the HMAC secret
    cap: bool = False  # send CAP 1.2 XML instead of the JSON body


class MqttChannel(_Model):
    type: Literal["mqtt"]
    topic: str | None = None  # default dispatch/{team_id}


Channel = Annotated[WebhookChannel | MqttChannel, Field(discriminator="type")]


class Team(_Model):
    id: Id
    name: str
    channels: tuple[Channel, ...] = ()


class Handler(_Model):
    """A department and its teams, with the districts and categories it covers."""

    id: Id
    name: str
    districts: tuple[str, ...] = (ANY,)
    categories: tuple[CategoryName, ...] = (ANY,)
    teams: tuple[Team, ...] = Field(min_length=1)


class Policy(_Model):
    """Escalation: ack deadline per severity; when missed, level n+1 gets `levels[n]`."""

    id: Id
    ack_deadline_s: dict[Severity, int]
    repeat_s: dict[Severity, int] = {}
    levels: tuple[str, ...] = ()  # team ids for escalation levels 1, 2, …

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
    districts: tuple[str, ...] = (ANY,)
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
    handler: Id
    team: Id
    policy: Id


class RoutingConfig(_Model):
    version: Literal[1]
    handlers: tuple[Handler, ...] = Field(min_length=1)
    policies: tuple[Policy, ...] = Field(min_length=1)
    routes: tuple[Route, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RoutingConfig:
        teams = [t.id for h in self.handlers for t in h.teams]
        for kind, ids in (("handler", [h.id for h in self.handlers]), ("team", teams)):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} ids: {', '.join(dupes)}")
        policies = {p.id for p in self.policies}
        for p in self.policies:
            for team in p.levels:
                if team not in teams:
                    raise ValueError(f"policy {p.id}: unknown escalation team {team!r}")
        for n, r in enumerate(self.routes):
            handler = next((h for h in self.handlers if h.id == r.handler), None)
            if handler is None:
                raise ValueError(f"route {n}: unknown handler {r.handler!r}")
            if r.team not in {t.id for t in handler.teams}:
                raise ValueError(f"route {n}: handler {r.handler!r} has no team {r.team!r}")
            if r.policy not in policies:
                raise ValueError(f"route {n}: unknown policy {r.policy!r}")
        if not self.routes[-1].match.catch_all:
            raise ValueError("the last route must be a catch-all (match everything)")
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
        for handler in self.handlers:
            for team in handler.teams:
                if team.id == team_id:
                    return handler, team
        raise KeyError(team_id)

    def policy(self, policy_id: str) -> Policy:
        return next(p for p in self.policies if p.id == policy_id)


def _hit(allowed: tuple[str, ...], values: Iterable[str]) -> bool:
    return ANY in allowed or any(v in allowed for v in values)


def parse_routing(text: str, source: str = "<routing>") -> RoutingConfig:
    """Parse and validate a routing file's text; raises `RoutingError` listing every problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RoutingError(source, [f"not valid YAML: {exc}"]) from exc
    try:
        return RoutingConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in exc.errors()]
        raise RoutingError(source, problems) from exc


def load_routing(path: Path | None = None) -> RoutingConfig:
    """Load `path`, or the default routing shipped in `alerts/data/routing.yaml`."""
    if path is None:
        text = resources.files("alerts").joinpath("data/routing.yaml").read_text()
        return parse_routing(text, "alerts/data/routing.yaml")
    return parse_routing(path.read_text(), str(path))
