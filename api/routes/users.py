"""People who log in, managed by admins: the same store and refusals as `urbanwatch users`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from api.deps import UserStoreDep, require
from api.routes.incidents import INVALID
from api.schemas.problems import Problem
from api.schemas.users import PasswordChange, UserChange, UserCreate, UserPublic
from api.security.principal import Principal, Role
from api.security.users import UnknownUserError, User
from devices.clock import now_ms

router = APIRouter(prefix="/api/v1/users", tags=["users"])
Admin = Annotated[Principal, Depends(require(Role.admin))]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such user"}
}
LAST_ADMIN: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "it would leave no enabled admin"}
}


@router.get("", summary="List users with their roles and teams")
async def list_users(_caller: Admin, users: UserStoreDep) -> list[UserPublic]:
    return [UserPublic.of(u) for u in await users.list()]


@router.post(
    "", summary="Add a user", status_code=status.HTTP_201_CREATED,
    responses={409: {"model": Problem, "description": "a user by that name exists"}, **INVALID},
)
async def add_user(body: UserCreate, _caller: Admin, users: UserStoreDep) -> UserPublic:
    user = await users.add(body.name, body.role, body.teams, body.password, now_ms())
    return UserPublic.of(user)


@router.get("/{user_name}", summary="One user", responses=NOT_FOUND)
async def get_user(user_name: str, _caller: Admin, users: UserStoreDep) -> UserPublic:
    return UserPublic.of(await _existing(users, user_name))


@router.patch(
    "/{user_name}", summary="Change a user's role and teams, or disable or enable them",
    responses={**NOT_FOUND, **LAST_ADMIN},
)
async def change_user(
    user_name: str, body: UserChange, _caller: Admin, users: UserStoreDep
) -> UserPublic:
    at = now_ms()
    if body.role is not None:
        await users.set_role(user_name, body.role, body.teams or [], at)
    if body.disabled is not None:
        await users.set_disabled(user_name, body.disabled, at)
    return UserPublic.of(await _existing(users, user_name))


@router.put(
    "/{user_name}/password", summary="Set a user's password; the tokens they hold stop working",
    status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND,
)
async def set_password(
    user_name: str, body: PasswordChange, _caller: Admin, users: UserStoreDep
) -> Response:
    await users.set_password(user_name, body.password, now_ms())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{user_name}", summary="Remove a user; the tokens they hold stop working",
    status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **LAST_ADMIN},
)
async def delete_user(user_name: str, _caller: Admin, users: UserStoreDep) -> Response:
    await users.delete(user_name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _existing(users: UserStoreDep, name: str) -> User:
    user = await users.get(name)
    if user is None:
        raise UnknownUserError(f"no user {name!r}")
    return user
