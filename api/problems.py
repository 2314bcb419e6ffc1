"""Errors as HTTP responses: one table from domain error to status, and RFC 9457 bodies.

Routes do not catch what a service refuses: the error travels up to the handlers installed
here, which answer ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and ``instance`` (the request path), plus members of its own for some errors.
The most specific class in `KINDS` wins (the error's MRO is walked), so an
`UnknownDeviceError` is a 404 while any other `RegistryError` is a 422.

FastAPI's own errors get the same shape: an `HTTPException` keeps its ``detail``; a
malformed request keeps FastAPI's list of validation errors (``loc``, ``msg``, ``type``) as
``detail``, as clients read it before this format; anything unexpected is a 500 that says
nothing of its cause (the server logs it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from alerts.errors import (
    NoteLimitError,
    ReadOnlyRoutingError,
    RoutingEditRefused,
    RoutingError,
    SilenceError,
    TeamInUseError,
    TransitionError,
    UnknownAlertError,
    UnknownIncidentError,
    UnknownRoutingPartError,
    UnknownSilenceError,
    UnknownTeamError,
)
from api.photos import NotAPhotoError, PhotoTooLargeError
from api.schemas.problems import ProblemBase
from api.schemas.rules import RuleProblem
from api.security.refresh import InvalidRefreshTokenError
from api.security.tokens import InvalidTokenError
from api.security.users import DuplicateUserError, LastAdminError, UnknownUserError, UserError
from api.stream_slots import TooManyStreams
from devices.errors import (
    DeviceFileError,
    DuplicateDeviceError,
    InvalidNameError,
    RegistryError,
    RetiredDeviceError,
    UnknownDeviceError,
)
from ingest.errors import InfluxError
from rules.errors import RuleFileError, RuleRejected, RuleTextRefused

JSON, PROBLEM_JSON = "application/json", "application/problem+json"
REF = "#/components/schemas/"
TYPE_PREFIX = "urn:urbanwatch:problem:"  # names a kind of problem; not a page to fetch
BLANK = "about:blank"  # RFC 9457: nothing to add to the HTTP status
UNEXPECTED = "the server failed unexpectedly and has logged why; try again later"


@dataclass(frozen=True)
class Kind:
    """How one class of error is answered."""

    status: int
    name: str  # the problem type is TYPE_PREFIX + name
    title: str
    detail: Callable[[Any], object] = str
    members: Callable[[Any], dict[str, object]] | None = None  # extension members


KINDS: dict[type[Exception], Kind] = {
    UnknownDeviceError: Kind(404, "unknown-device", "No such device"),
    DuplicateDeviceError: Kind(409, "duplicate-device", "The device exists already"),
    RetiredDeviceError: Kind(409, "retired-device", "The device is retired"),
    RegistryError: Kind(422, "invalid-device", "The device is refused"),
    InvalidNameError: Kind(422, "invalid-name", "An id breaks the id grammar"),
    DeviceFileError: Kind(
        422, "invalid-device-file", "Invalid device file",
        detail=lambda e: f"{len(e.problems)} invalid rows; nothing was imported",
        members=lambda e: {"problems": e.problems},
    ),
    InfluxError: Kind(502, "influxdb-failed", "InfluxDB failed"),
    RuleRejected: Kind(
        422, "invalid-rule", "The rule is refused",
        detail=lambda e: RuleProblem.of(e).model_dump(),
    ),
    RuleTextRefused: Kind(
        422, "refused-rule-text", "The rule text is refused unread",
        detail=lambda e: RuleProblem.of(e).model_dump(),
    ),
    RuleFileError: Kind(
        409, "invalid-rule-file", "The rule file on disk is invalid",
        detail=lambda e: f"the rule file cannot be read: {e}; fix the file, then try again",
    ),
    UnknownAlertError: Kind(404, "unknown-alert", "No such alert"),
    UnknownIncidentError: Kind(404, "unknown-incident", "No such incident"),
    NoteLimitError: Kind(409, "note-limit", "The incident holds its most notes"),
    TransitionError: Kind(409, "state-conflict", "Not allowed in the current state"),
    SilenceError: Kind(422, "invalid-silence", "Invalid silence"),
    UnknownSilenceError: Kind(404, "unknown-silence", "No such silence"),
    UnknownTeamError: Kind(
        404, "unknown-team", "No such team",
        detail=lambda e: f"{e}; see GET /api/v1/routing for the teams",
    ),
    RoutingError: Kind(
        422, "invalid-routing", "Invalid routing",
        detail=lambda e: "; ".join(e.problems),
        members=lambda e: {"source": e.source, "problems": e.problems},
    ),
    RoutingEditRefused: Kind(409, "routing-edit-refused", "The routing change is refused"),
    ReadOnlyRoutingError: Kind(409, "routing-read-only", "The routing is read-only here"),
    TeamInUseError: Kind(
        409, "team-in-use", "The team is still referenced",
        members=lambda e: {"references": e.references},
    ),
    UnknownRoutingPartError: Kind(404, "unknown-routing-part", "Not in the routing file"),
    UnknownUserError: Kind(404, "unknown-user", "No such user"),
    DuplicateUserError: Kind(409, "duplicate-user", "The user exists already"),
    LastAdminError: Kind(409, "last-admin", "The last enabled admin must stay"),
    TooManyStreams: Kind(429, "too-many-streams", "Too many live streams"),
    PhotoTooLargeError: Kind(413, "photo-too-large", "The photo is too large"),
    NotAPhotoError: Kind(415, "not-a-photo", "Not a JPEG, PNG or WebP photo"),
    UserError: Kind(422, "invalid-user", "Invalid user"),
    InvalidTokenError: Kind(
        401, "invalid-token", "Invalid access token", detail=lambda e: f"invalid token: {e}"
    ),
    InvalidRefreshTokenError: Kind(
        401, "invalid-refresh-token", "Invalid refresh token",
        detail=lambda e: f"invalid refresh token: {e}",
    ),
}


def kind_of(error: Exception) -> Kind | None:
    """The entry of `KINDS` for the most specific class of `error`, if any."""
    return next((KINDS[c] for c in type(error).__mro__ if c in KINDS), None)


def describe(error: Exception) -> str:
    """The ``detail`` a refusal is answered with, as one line of text (e.g. a close reason)."""
    if isinstance(error, HTTPException):
        return str(error.detail)
    kind = kind_of(error)
    return str(error) if kind is None else str(kind.detail(error))


def problem(
    status: int, detail: object, instance: str, *, type_uri: str = BLANK, title: str | None = None,
    headers: dict[str, str] | None = None, members: Mapping[str, object] | None = None,
) -> JSONResponse:
    """An RFC 9457 response; a 401 also names the scheme to authenticate with."""
    body = {
        "type": type_uri, "title": title or HTTPStatus(status).phrase, "status": int(status),
        "detail": jsonable_encoder(detail), "instance": instance, **(members or {}),
    }
    if status == HTTPStatus.UNAUTHORIZED:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status, headers=headers, media_type=PROBLEM_JSON)


async def _domain_error(request: Request, error: Exception) -> Response:
    kind = kind_of(error)
    assert kind is not None, "only the classes of KINDS are routed here"
    return problem(kind.status, kind.detail(error), request.url.path,
                   type_uri=TYPE_PREFIX + kind.name, title=kind.title,
                   members=kind.members(error) if kind.members else None)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
        return Response(status_code=error.status_code, headers=error.headers)
    return problem(error.status_code, error.detail, request.url.path,
                   headers=dict(error.headers or {}))


async def _invalid_request(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return problem(HTTPStatus.UNPROCESSABLE_ENTITY, error.errors(), request.url.path)


async def _unexpected(request: Request, error: Exception) -> Response:
    """The body of a 500; the error goes on up to the server, which logs it."""
    return problem(HTTPStatus.INTERNAL_SERVER_ERROR, UNEXPECTED, request.url.path)


def install_problems(app: FastAPI) -> None:
    """Answer every error of `app` with problem details, and document them so."""
    for error in KINDS:
        app.add_exception_handler(error, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected)
    document_problems(app)


def document_problems(app: FastAPI) -> None:
    """Declare the problem-details responses of `app`'s OpenAPI document (FastAPI's 422 and
    those a route declares with a model of `api.schemas.problems`) as
    ``application/problem+json``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            problems = {f"{REF}{name}" for name in _problem_models()}
            for path in build()["paths"].values():
                for operation in path.values():
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {})
                        if content.get(JSON, {}).get("schema", {}).get("$ref") in problems:
                            content[PROBLEM_JSON] = content.pop(JSON)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_models() -> set[str]:
    names, todo = {"HTTPValidationError"}, [ProblemBase]
    while todo:
        model = todo.pop()
        names.add(model.__name__)
        todo.extend(model.__subclasses__())
    return names
