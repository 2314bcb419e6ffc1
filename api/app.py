"""The FastAPI application, built from an `ApiContext` the composition root supplies."""

from __future__ import annotations

from fastapi import FastAPI

from api.context import ApiContext
from api.routes import devices, health


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="urbanwatch",
        summary="IoT urban sensing and emergency warnings",
        version="0.1.0",
    )
    app.state.context = context
    app.include_router(health.router)
    app.include_router(devices.router)
    return app
