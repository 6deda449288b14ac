"""Signing keys: generated on first start, kept in `auth.signing_keys`, rotated with an overlap in
which the previous key stays published until every token it signed has expired."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.auth import repository
from media_gateway.core.security.signing import (
    SigningAlgorithm,
    SigningKey,
    generate_signing_key,
    jwks_document,
)
from media_gateway.core.settings import Settings

logger = logging.getLogger(__name__)

KEY_ENCRYPTION_KEY_FILE = "auth-key-encryption-key"
_SEALED_PREFIX = "v1."


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def key_encryption_key(settings: Settings) -> bytes:
    """The AES-256-GCM key sealing private keys at rest: configured, else kept 0600 in the data dir."""
    configured = settings.auth.key_encryption_key.get_secret_value().strip()
    if not configured:
        path = Path(settings.data_dir) / KEY_ENCRYPTION_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode())
        configured = path.read_text().strip()
    try:
        key = _b64decode(configured)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("auth.key_encryption_key is not base64url") from exc
    if len(key) != 32:
        raise ValueError("auth.key_encryption_key must be 32 bytes (base64url)")
    return key


def seal(kek: bytes, kid: str, private_jwk: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(kek).encrypt(nonce, private_jwk.encode(), kid.encode())
    return _SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(kek: bytes, kid: str, stored: str) -> str | None:
    """The private JWK; None when it was sealed with another key-encryption key."""
    if not stored.startswith(_SEALED_PREFIX):
        return stored  # written before keys were sealed
    raw = _b64decode(stored[len(_SEALED_PREFIX) :])
    try:
        return AESGCM(kek).decrypt(raw[:12], raw[12:], kid.encode()).decode()
    except InvalidTag:
        return None


@dataclass(frozen=True)
class KeySet:
    current: SigningKey
    published: list[SigningKey]

    def jwks(self) -> dict[str, Any]:
        return jwks_document(self.published)


def _load(rows: list[repository.KeyRow], kek: bytes) -> KeySet | None:
    keys: list[SigningKey] = []
    current: list[SigningKey] = []
    for row in rows:
        jwk = unseal(kek, row.kid, row.private_jwk)
        if jwk is None:
            logger.warning(
                "signing key sealed with another key-encryption key; skipped", extra={"kid": row.kid}
            )
            continue
        key = SigningKey.from_private_jwk(json.loads(jwk))
        keys.append(key)
        if row.retired_at is None:
            current.append(key)
    if not current:
        return None
    return KeySet(current=current[0], published=keys)


async def _generate(alg: SigningAlgorithm, kek: bytes) -> tuple[SigningKey, str]:
    # RSA key generation is CPU work of tens of milliseconds: off the event loop.
    key = await asyncio.to_thread(generate_signing_key, alg)
    return key, seal(kek, key.kid, json.dumps(key.private_jwk()))


def _overlap_sec(settings: Settings) -> int:
    auth = settings.auth
    return auth.access_token_ttl_sec + auth.leeway_sec + auth.key_overlap_extra_sec


async def ensure_keys(engine: AsyncEngine, settings: Settings) -> KeySet:
    """The published keys, generating the first one if there is none (or none we can unseal)."""
    kek = await asyncio.to_thread(key_encryption_key, settings)
    async with engine.connect() as conn:
        keyset = _load(await repository.published_keys(conn), kek)
    if keyset is not None:
        return keyset
    key, jwk = await _generate(settings.auth.signing_algorithm, kek)
    async with engine.begin() as conn:
        await repository.lock_keys(conn)
        keyset = _load(await repository.published_keys(conn), kek)
        if keyset is not None:
            return keyset
        # Current keys we cannot unseal (the key-encryption key changed) are retired, not deleted.
        await repository.retire_current_keys(conn, overlap_sec=_overlap_sec(settings))
        await repository.insert_key(conn, kid=key.kid, alg=key.alg, private_jwk=jwk)
        keyset = _load(await repository.published_keys(conn), kek)
    assert keyset is not None
    return keyset


async def rotate_keys(engine: AsyncEngine, settings: Settings) -> KeySet:
    """A new current key; the previous ones stay published for a token lifetime plus leeway."""
    kek = await asyncio.to_thread(key_encryption_key, settings)
    key, jwk = await _generate(settings.auth.signing_algorithm, kek)
    async with engine.begin() as conn:
        await repository.lock_keys(conn)
        await repository.retire_current_keys(conn, overlap_sec=_overlap_sec(settings))
        await repository.insert_key(conn, kid=key.kid, alg=key.alg, private_jwk=jwk)
        keyset = _load(await repository.published_keys(conn), kek)
    assert keyset is not None
    return keyset


class KeyStore:
    """The process's view of the keys. After the first load, `get` never waits for the database: a
    stale view is served while a background task reloads it. Callers sign tokens inside their own
    transactions, so waiting here for a second pooled connection could exhaust the pool."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._keyset: KeySet | None = None
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()
        self._reload_task: asyncio.Task[None] | None = None
        # Another replica (or the CLI) may rotate; every process picks the change up within this.
        self._reload_sec = settings.auth.keys_reload_sec

    async def get(self) -> KeySet:
        keyset = self._keyset
        if keyset is not None:
            stale = time.monotonic() - self._loaded_at >= self._reload_sec
            if stale and (self._reload_task is None or self._reload_task.done()):
                self._reload_task = asyncio.create_task(self._reload(), name="auth-keys-reload")
            return keyset
        async with self._lock:
            if self._keyset is None:
                self._keyset = await ensure_keys(self._engine, self._settings)
                self._loaded_at = time.monotonic()
            return self._keyset

    async def _reload(self) -> None:
        try:
            async with self._lock:
                self._keyset = await ensure_keys(self._engine, self._settings)
        except Exception as exc:  # keep signing with the keys we have; retry later
            logger.warning("signing keys reload failed", extra={"error": type(exc).__name__})
        # A failure waits a full period too: no retry storm against a struggling database.
        self._loaded_at = time.monotonic()

    async def rotate(self) -> KeySet:
        async with self._lock:
            self._keyset = await rotate_keys(self._engine, self._settings)
            self._loaded_at = time.monotonic()
            return self._keyset

    async def close(self) -> None:
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task
