"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DegradingDep, ProbesDep, TasksDep
from api.probing import probe_all
from api.schemas.health import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Every dependency answers and every platform task runs; InfluxDB down is degraded "
    "(ingest spools), still ready",
    responses={503: {"model": Readiness}},
    response_model=Readiness,
)
async def readyz(probes: ProbesDep, degrading: DegradingDep, tasks: TasksDep) -> JSONResponse:
    checks = await probe_all(probes)
    if tasks is not None:  # a supervised task that failed is down until it recovers
        checks.update({f"task:{name}": up for name, up in sorted(tasks.up.items())})
    down = sorted(name for name, up in checks.items() if not up)
    degraded = [name for name in down if name in degrading]
    ready = len(degraded) == len(down)
    status = "not ready" if not ready else "degraded" if degraded else "ready"
    body = Readiness(status=status, checks=checks, degraded=degraded)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
