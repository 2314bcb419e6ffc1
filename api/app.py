"""The FastAPI application, built from an `ApiContext` the composition root supplies.

Every error it answers is RFC 9457 problem details (`api.problems`). Each operation's OpenAPI
`operationId` is its route's name (the handler's function name, e.g. `list_incidents`), so
generated clients get readable method names; the names are unique across the app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.audit import AuditMiddleware
from api.body_limit import BodyLimit
from api.context import ApiContext
from api.metrics import install_metrics
from api.nul_guard import NulGuard
from api.problems import install_problems
from api.routes import (
    alerts,
    api_keys,
    areas,
    audit,
    auth,
    device_map,
    device_readings,
    devices,
    feeds,
    health,
    incidents,
    live,
    metrics,
    reports,
    routing,
    rules,
    silences,
    teams,
    ui_config,
    users,
)
from api.web.pages import install_web


def operation_id(route: APIRoute) -> str:
    """The OpenAPI operationId of `route`: its name."""
    return route.name


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        generate_unique_id_function=operation_id,
        title="urbanwatch",
        summary="IoT urban sensing and emergency warnings",
        version="0.1.0",
        docs_url=None,  # served by `install_web`, with Swagger UI's files from here
        redoc_url=None,
    )
    app.state.context = context
    install_problems(app)
    install_metrics(app, context.metrics, context.probes, context.degrading)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(NulGuard)  # such a request reaches nothing else
    limits = context.body_limits
    app.add_middleware(  # outermost: an oversized body is refused before authentication
        BodyLimit, default_bytes=limits.body_bytes,
        by_path={devices.IMPORT_PATH: limits.import_bytes}, read_timeout_s=limits.read_timeout_s,
    )
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(devices.router)
    app.include_router(device_readings.router)
    app.include_router(incidents.router)
    app.include_router(silences.router)
    app.include_router(feeds.router)
    app.include_router(live.router)
    app.include_router(auth.router)
    app.include_router(api_keys.router)
    app.include_router(audit.router)
    app.include_router(rules.router)
    app.include_router(alerts.router)
    app.include_router(reports.router)
    app.include_router(routing.router)
    app.include_router(teams.router)
    app.include_router(users.router)
    app.include_router(areas.router)
    app.include_router(device_map.router)
    app.include_router(ui_config.router)
    install_web(app)
    return app
