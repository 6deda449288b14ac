"""argon2id password hashing, off the event loop (each hash is deliberately slow)."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from media_gateway.core.settings import AuthSettings


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


def hasher(settings: AuthSettings) -> PasswordHasher:
    return _hasher(
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )


@lru_cache(maxsize=8)
def _dummy_hash(ph: PasswordHasher) -> str:
    return ph.hash("not a password anyone has")


async def hash_password(settings: AuthSettings, password: str) -> str:
    return await asyncio.to_thread(hasher(settings).hash, password)


async def verify_password(settings: AuthSettings, password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account (or its password) exists, so timing reveals neither."""
    ph = hasher(settings)
    target = password_hash if password_hash is not None else await asyncio.to_thread(_dummy_hash, ph)

    def check() -> bool:
        try:
            return ph.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    ok = await asyncio.to_thread(check)
    return ok and password_hash is not None


def needs_rehash(settings: AuthSettings, password_hash: str) -> bool:
    return hasher(settings).check_needs_rehash(password_hash)
