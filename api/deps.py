"""FastAPI dependencies: the one place routes get their collaborators from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import ApiContext


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


async def get_session(
    context: Annotated[ApiContext, Depends(get_context)],
) -> AsyncIterator[AsyncSession]:
    async with context.sessions() as session:
        yield session


ContextDep = Annotated[ApiContext, Depends(get_context)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
