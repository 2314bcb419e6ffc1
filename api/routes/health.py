"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.context import Probe
from api.deps import ProbesDep, TasksDep
from api.schemas.health import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Every dependency answers (MQTT, InfluxDB, SQL) and every platform task runs",
    responses={503: {"model": Readiness}},
    response_model=Readiness,
)
async def readyz(probes: ProbesDep, tasks: TasksDep) -> JSONResponse:
    names = list(probes)
    results = await asyncio.gather(*(_safe(probes[n]) for n in names))
    checks = dict(zip(names, results, strict=True))
    if tasks is not None:  # a supervised task that failed is down until it recovers
        checks.update({f"task:{name}": up for name, up in sorted(tasks.up.items())})
    ready = all(checks.values())
    body = Readiness(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _safe(probe: Probe) -> bool:
    try:
        return bool(await asyncio.wait_for(probe(), timeout=2.0))
    except Exception:  # a failing probe means "not ready", whatever it raised
        return False
