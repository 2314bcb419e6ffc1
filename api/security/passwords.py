"""Password hashing with argon2id (argon2-cffi's RFC 9106 defaults), on threads of its own.

Each hash or check costs tens of milliseconds of CPU and memory on purpose. `PasswordPool`
runs them on a small executor of their own with a bounded queue, so a flood of logins waits
for (or is refused by) that pool rather than filling the default executor that ingest and
dispatch use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 8
T = TypeVar("T")
_hasher = PasswordHasher()


class WeakPasswordError(ValueError):
    """The password is too short (or empty) to be accepted."""


class PasswordPoolBusyError(Exception):
    """Every worker of the password pool is busy and its queue is full: try again shortly."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(
            f"password too short: needs at least {MIN_PASSWORD_LENGTH} characters"
        )
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; for an unknown user (`None`) a dummy hash is checked
    so the answer takes as long as for a known one."""
    try:
        _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not a password of anyone")


class PasswordPool:
    """`workers` threads for argon2 and at most `queue` calls waiting for one."""

    def __init__(self, workers: int = 2, queue: int = 16) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="argon2")
        self._capacity = workers + queue
        self._taken = 0
        self.verified = 0  # password checks run so far

    async def hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD_LENGTH:  # refused before it takes a worker
            hash_password(password)
        return await self._run(hash_password, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        matched = await self._run(verify_password, password_hash, password)
        self.verified += 1
        return matched

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        if self._taken >= self._capacity:
            raise PasswordPoolBusyError("too many password checks at once; try again shortly")
        self._taken += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, work, *args)
        finally:
            self._taken -= 1
