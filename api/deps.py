"""FastAPI dependencies: the one place routes get their collaborators and their caller from.

Stores and services come from the `ApiContext` here (`UserStoreDep`, `DeviceStoreDep`,
`AlertServiceDep` …); no route builds one. A part the process runs without is a 503.
Authorization lives here too: a route states who may call it with
`Depends(require(Role.admin, Role.operator))` (or the `Caller` annotation for any
authenticated principal); nothing else checks roles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.requests import HTTPConnection
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.channels.live import LiveHub
from alerts.service import AlertService
from api.context import AlertsPart, ApiContext, Bounds, RulesPart, TokenPolicy
from api.etag import TaggedBody
from api.photos import PhotoStore
from api.platform_stats import TaskStats
from api.probing import Probe
from api.rule_store import RuleStore
from api.security.api_keys import ApiKeyStore
from api.security.principal import Principal, Role
from api.security.ratelimit import LoginThrottle
from api.security.refresh import RefreshTokens
from api.security.tokens import decode_access_token
from api.security.users import UserStore
from api.stream_slots import StreamSlots
from devices.catalogue import Catalogue
from devices.errors import UnknownDeviceError
from devices.provisioning import Provisioning
from devices.registry import Device
from devices.store import DeviceStore
from ingest.timeseries.client import InfluxClient

bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an integration's key")


def get_context(connection: HTTPConnection) -> ApiContext:
    context: ApiContext = connection.app.state.context
    return context


ContextDep = Annotated[ApiContext, Depends(get_context)]


def _sessions(context: ContextDep) -> async_sessionmaker[AsyncSession]:
    return context.sessions


def _influx(context: ContextDep) -> InfluxClient:
    return context.influx


def _catalogue(context: ContextDep) -> Catalogue:
    return context.catalogue


def _tokens(context: ContextDep) -> TokenPolicy:
    return context.tokens


def _login_throttle(context: ContextDep) -> LoginThrottle:
    return context.login_throttle


def _probes(context: ContextDep) -> Mapping[str, Probe]:
    return context.probes


def _degrading(context: ContextDep) -> frozenset[str]:
    return context.degrading


def _timezone(context: ContextDep) -> str:
    return context.timezone


def _tasks(context: ContextDep) -> TaskStats | None:
    return context.metrics.tasks


def _bounds(context: ContextDep) -> Bounds:
    return context.bounds


def _live_streams(context: ContextDep) -> StreamSlots:
    return context.live_streams


def _device_map(context: ContextDep) -> TaggedBody:
    return context.device_map


SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessions)]
InfluxDep = Annotated[InfluxClient, Depends(_influx)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
TokensDep = Annotated[TokenPolicy, Depends(_tokens)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(_login_throttle)]
ProbesDep = Annotated[Mapping[str, Probe], Depends(_probes)]
CityZoneDep = Annotated[str, Depends(_timezone)]  # the city's IANA time zone
DegradingDep = Annotated[frozenset[str], Depends(_degrading)]  # probes whose loss only degrades
TasksDep = Annotated[TaskStats | None, Depends(_tasks)]  # None: no supervised tasks here
BoundsDep = Annotated[Bounds, Depends(_bounds)]
LiveStreamsDep = Annotated[StreamSlots, Depends(_live_streams)]
DeviceMapDep = Annotated[TaggedBody, Depends(_device_map)]  # the last GET /map/devices body


def _users(context: ContextDep) -> UserStore:
    return UserStore(context.sessions, context.passwords)


def _api_keys(sessions: SessionsDep) -> ApiKeyStore:
    return ApiKeyStore(sessions)


def _refresh_tokens(sessions: SessionsDep) -> RefreshTokens:
    return RefreshTokens(sessions)


def _devices(sessions: SessionsDep) -> DeviceStore:
    return DeviceStore(sessions)


def _provisioning(context: ContextDep) -> Provisioning:
    return Provisioning(context.sessions, context.catalogue, context.on_devices_changed)


UserStoreDep = Annotated[UserStore, Depends(_users)]
ApiKeyStoreDep = Annotated[ApiKeyStore, Depends(_api_keys)]
RefreshTokensDep = Annotated[RefreshTokens, Depends(_refresh_tokens)]
DeviceStoreDep = Annotated[DeviceStore, Depends(_devices)]
ProvisioningDep = Annotated[Provisioning, Depends(_provisioning)]


async def known_device(device_id: str, devices: DeviceStoreDep) -> Device:
    """The stored device of the path's `device_id` (UnknownDeviceError: 404)."""
    device = await devices.get(device_id)
    if device is None:
        raise UnknownDeviceError(device_id)
    return device


KnownDevice = Annotated[Device, Depends(known_device)]


def _alerts_part(context: ContextDep) -> AlertsPart:
    if context.alerts is None:
        raise HTTPException(503, "the alerts service is not running in this process")
    return context.alerts


AlertsPartDep = Annotated[AlertsPart, Depends(_alerts_part)]


def _alert_service(part: AlertsPartDep) -> AlertService:
    return part.service


AlertServiceDep = Annotated[AlertService, Depends(_alert_service)]


def _live_hub(context: ContextDep) -> LiveHub | None:
    return None if context.alerts is None else context.alerts.hub


LiveHubDep = Annotated[LiveHub | None, Depends(_live_hub)]  # None: no alerts in this process


def _rule_store(context: ContextDep) -> RuleStore:
    return RuleStore(None if context.rules is None else context.rules.path)


def _rules_part(context: ContextDep) -> RulesPart:
    if context.rules is None:
        raise HTTPException(503, "backtests need the device registry of a running platform")
    return context.rules


def _photos(context: ContextDep) -> PhotoStore:
    if context.photos is None:
        raise HTTPException(503, "this process keeps no photos (it has no state folder)")
    return context.photos


PhotosDep = Annotated[PhotoStore, Depends(_photos)]
RuleStoreDep = Annotated[RuleStore, Depends(_rule_store)]
RulesPartDep = Annotated[RulesPart, Depends(_rules_part)]


def _unauthenticated(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=reason)


async def authenticated(
    tokens: TokensDep,
    users: UserStoreDep,
    keys: ApiKeyStoreDep,
    token: Annotated[str | None, Depends(bearer)],
    key: Annotated[str | None, Depends(api_key)] = None,
) -> Principal:
    """The caller, from an `X-API-Key` header or a bearer access token (401 otherwise).

    A token's user is looked up on every request, so disabling or deleting a user or changing
    their password (from any process, e.g. the CLI) shuts out the tokens they already hold at
    once rather than when they expire.
    """
    if key is not None:
        principal = await keys.authenticate(key)
        if principal is None:
            raise _unauthenticated("invalid API key: unknown or revoked")
        return principal
    if token is None:
        raise _unauthenticated(
            "not authenticated: send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'"
        )
    principal = decode_access_token(token, tokens.secret_key)
    if principal.kind == "user" and (refusal := await users.token_refusal(principal)):
        raise _unauthenticated(f"invalid token: {refusal}")
    return principal


def _remembered(
    connection: HTTPConnection, principal: Annotated[Principal, Depends(authenticated)]
) -> Principal:
    """Leave the caller on the connection's state, where the audit log finds it."""
    connection.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(_remembered)]


async def _public_or_caller(
    connection: HTTPConnection,
    context: ContextDep,
    tokens: TokensDep,
    users: UserStoreDep,
    keys: ApiKeyStoreDep,
    token: Annotated[str | None, Depends(bearer)],
    key: Annotated[str | None, Depends(api_key)] = None,
) -> Principal | None:
    """None where the context makes public warnings public (`public_feed`), else the caller."""
    if context.public_feed:
        return None
    return _remembered(connection, await authenticated(tokens, users, keys, token, key))


PublicOrCaller = Annotated[Principal | None, Depends(_public_or_caller)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting only callers holding one of `roles` (403 otherwise)."""
    allowed = frozenset(roles)

    def check(caller: Caller) -> Principal:
        if caller.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {caller.role.value} may not do this; needs one of "
                + ", ".join(sorted(r.value for r in allowed)),
            )
        return caller

    return check
