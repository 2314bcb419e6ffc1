"""What the web pages need to know before anyone logs in: the city's time zone.

Public (the login page shows times too); it says nothing a visitor could not see on a page.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContextDep
from api.schemas.ui_config import UiConfig

router = APIRouter(prefix="/api/v1", tags=["operations"])


@router.get("/ui-config", summary="Settings the web pages follow: the city's time zone")
async def ui_config(context: ContextDep) -> UiConfig:
    return UiConfig(timezone=context.timezone)
