"""Platform webhooks: signature verification, replay protection and delivery dedup.

Signing (Stripe-style). The sender and we share one secret per platform. With `t` the current Unix
time in seconds and `body` the exact bytes of the request body, the sender sends

    X-MG-Signature: t=<t>,v1=<hex HMAC-SHA256(secret, f"{t}.".encode() + body)>

Several `v1=` entries may be sent (one per secret while the sender rotates keys); one match suffices.
We compare in constant time and refuse a `t` more than `webhook_tolerance_sec` away from our clock,
so a captured request cannot be replayed later.

Dedup. A sender retries until it sees a 2xx, so the same delivery may arrive several times. A
delivery is identified by its `X-MG-Delivery-ID` header, or by the SHA-256 of its body when the
sender does not send one; it is remembered for `webhook_dedup_ttl_sec` (24 h). Because that header is
not covered by the signature, the signature itself is remembered as well (for as long as its
timestamp is acceptable): a captured request replayed within the tolerance under a fresh delivery id
is still caught. Claims are taken atomically (one Lua script) *before* the records are handed on and
released if handing on fails, so a failed delivery can be retried while a good one is never ingested
twice; a claim whose worker died expires after `webhook_processing_ttl_sec`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from media_gateway.core.redis import redis_key
from media_gateway.core.settings import Settings
from media_gateway.ingestion.schemas import RawBatch

SIGNATURE_HEADER: Final = "X-MG-Signature"
DELIVERY_ID_HEADER: Final = "X-MG-Delivery-ID"
SIGNATURE_SCHEME: Final = "v1"
# `ServiceContext.extras` key under which the app registers the ingestion pipeline's entry point.
RAW_BATCH_HANDLER_KEY: Final = "raw_batch_handler"
MAX_DELIVERY_ID_CHARS: Final = 200
_HEX_SHA256: Final = re.compile(r"[0-9a-fA-F]{64}")

RawBatchHandler = Callable[[RawBatch], Awaitable[dict[str, Any]]]


class WebhookPayload(BaseModel):
    """The body of a webhook delivery: records in the platform's own raw shape."""

    model_config = ConfigDict(extra="ignore")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


class SignatureError(Exception):
    """The delivery is not provably from the platform. The message is safe to show the caller."""


class StaleSignatureError(SignatureError):
    """Correctly formed, but its timestamp is outside the tolerance: a replay or a badly skewed clock."""


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender attaches (used by senders, tests and the docs' example)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},{SIGNATURE_SCHEME}={compute_signature(secret, t, body)}"


def parse_signature_header(value: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and item.isdigit() and len(item) <= 12:
            timestamp = int(item)
        elif key == SIGNATURE_SCHEME and _HEX_SHA256.fullmatch(item):
            # Anything else cannot match, and compare_digest raises on non-ASCII text.
            signatures.append(item.lower())
        # Other schemes are ignored, so senders can add stronger ones without breaking us.
    if timestamp is None or not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} must look like 't=<unix seconds>,v1=<hex hmac>'")
    return timestamp, signatures


def verify_signature(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance_sec: int,
    now: float | None = None,
) -> int:
    """Check the header against the body; returns the signed timestamp."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp, signatures = parse_signature_header(header)
    expected = compute_signature(secret, timestamp, body)
    # Every candidate is compared (no early exit), each in constant time, so timing reveals nothing
    # about how close a forged signature came.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("signature does not match the body")
    # Checked after the HMAC so that only a sender holding the secret learns that its clock is off.
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_sec:
        raise StaleSignatureError(
            f"signature timestamp is {abs(current - timestamp):.0f} s from our clock "
            f"(tolerance {tolerance_sec} s); re-sign the delivery"
        )
    return timestamp


class ClaimState(StrEnum):
    CLAIMED = "claimed"
    PROCESSING = "processing"
    DONE = "done"


# Takes every key or none: with separate SET NXs a crash between them would leave half a claim.
_CLAIM_SCRIPT = """
for _, key in ipairs(KEYS) do
  local state = redis.call('GET', key)
  if state then return state end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, 'processing', 'EX', ARGV[1])
end
return false
"""


@dataclass(frozen=True)
class DeliveryClaim:
    """The Redis keys of one delivery: its identity (24 h) and its signed content (tolerance window)."""

    keys: tuple[str, ...]
    ttls: tuple[int, ...]


class DeliveryDeduplicator:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._claim = redis.register_script(_CLAIM_SCRIPT)

    def claim_for(self, platform: str, delivery_id: str | None, body: bytes, timestamp: int) -> DeliveryClaim:
        ingestion = self._settings.ingestion
        body_hash = hashlib.sha256(body).hexdigest()
        identity = f"id:{delivery_id}" if delivery_id else f"body:{body_hash}"
        # What the signature covers, not the header text: reordering the header or adding a bogus
        # v1 entry must not make a replay look new.
        signed = f"{timestamp}.{body_hash}"
        # The hash tag keeps both keys in one Redis Cluster slot, which a multi-key script needs.
        tag = "{" + hashlib.sha256(platform.encode()).hexdigest()[:16] + "}"
        return DeliveryClaim(
            keys=(
                redis_key(self._settings, "ingestion", "webhook", tag, "delivery", _digest(identity)),
                redis_key(self._settings, "ingestion", "webhook", tag, "signed", _digest(signed)),
            ),
            # Signed content only needs remembering while its timestamp would still be accepted.
            ttls=(ingestion.webhook_dedup_ttl_sec, 2 * ingestion.webhook_tolerance_sec + 60),
        )

    async def claim(self, claim: DeliveryClaim) -> ClaimState:
        state = await self._claim(keys=claim.keys, args=[self._settings.ingestion.webhook_processing_ttl_sec])
        if state is None:
            return ClaimState.CLAIMED
        raw = state.decode() if isinstance(state, bytes) else str(state)
        return ClaimState.DONE if raw == ClaimState.DONE.value else ClaimState.PROCESSING

    async def complete(self, claim: DeliveryClaim) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, ttl in zip(claim.keys, claim.ttls, strict=True):
                pipe.set(key, ClaimState.DONE.value, ex=ttl)
            await pipe.execute()

    async def release(self, claim: DeliveryClaim) -> None:
        await self._redis.delete(*claim.keys)


def _digest(value: str) -> str:
    # Fixed-length keys whatever the sender put in the header.
    return hashlib.sha256(value.encode()).hexdigest()
