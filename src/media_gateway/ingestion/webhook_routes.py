"""`POST /api/v1/webhooks/{platform}`: platforms push raw catalog records; see `webhooks` for the
signature scheme and dedup rules.

Answers: 202 accepted (records handed to the pipeline), 200 duplicate (already ingested, nothing
done), 401 bad or stale signature, 404 no webhook for that platform, 409 the same delivery is being
processed right now, 413 body too large, 422 body not `{"records": [...]}`, 503 pipeline or Redis
unavailable (retry later). Errors are problem+json.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any, Literal, cast

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from media_gateway.core.app import ServiceContext
from media_gateway.core.errors import PROBLEM_JSON, ProblemError
from media_gateway.ingestion.schemas import RawBatch
from media_gateway.ingestion.webhooks import (
    DELIVERY_ID_HEADER,
    MAX_DELIVERY_ID_CHARS,
    RAW_BATCH_HANDLER_KEY,
    SIGNATURE_HEADER,
    ClaimState,
    DeliveryClaim,
    DeliveryDeduplicator,
    RawBatchHandler,
    SignatureError,
    StaleSignatureError,
    WebhookPayload,
    verify_signature,
)

logger = logging.getLogger(__name__)

PROBLEM_BASE = "https://media-gateway.dev/problems"
RETRY_LATER_SEC = "5"


class WebhookAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    records: int


class WebhookDuplicate(BaseModel):
    status: Literal["duplicate"] = "duplicate"


_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.post(
    "/{platform}",
    status_code=202,
    response_model=WebhookAccepted,
    responses={
        200: {"model": WebhookDuplicate, "description": "Already received; nothing was ingested again."},
        401: {**_PROBLEM, "description": f"Missing, invalid or stale {SIGNATURE_HEADER}."},
        404: {**_PROBLEM, "description": "No webhook secret is configured for this platform."},
        409: {**_PROBLEM, "description": "The same delivery is being processed; retry later."},
        413: {**_PROBLEM, "description": "Body larger than ingestion.webhook_max_body_bytes."},
        422: {**_PROBLEM, "description": 'Body is not {"records": [...]}.'},
        503: {**_PROBLEM, "description": "Ingestion or Redis unavailable; retry later."},
    },
    # The body is read raw (the signature covers its exact bytes), so document its schema by hand.
    openapi_extra={
        "parameters": [
            {"name": SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
            {"name": DELIVERY_ID_HEADER, "in": "header", "required": False, "schema": {"type": "string"}},
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": WebhookPayload.model_json_schema()}},
        },
    },
)
async def receive_webhook(platform: str, request: Request) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    settings = ctx.settings.ingestion
    secret = settings.webhook_secrets.get(platform)
    if secret is None or not secret.get_secret_value():
        raise ProblemError(404, f"No webhook is configured for platform {platform!r}.")

    body = await _read_body(request, settings.webhook_max_body_bytes)
    try:
        timestamp = verify_signature(
            secret.get_secret_value(),
            body,
            request.headers.get(SIGNATURE_HEADER),
            tolerance_sec=settings.webhook_tolerance_sec,
        )
    except StaleSignatureError as exc:
        logger.warning("webhook replay or clock skew rejected", extra={"platform": platform})
        raise ProblemError(
            401, str(exc), title="Stale webhook signature", type_=f"{PROBLEM_BASE}/webhook-replay"
        ) from None
    except SignatureError as exc:
        logger.warning("webhook signature rejected", extra={"platform": platform, "reason": str(exc)})
        raise ProblemError(
            401, str(exc), title="Invalid webhook signature", type_=f"{PROBLEM_BASE}/webhook-signature"
        ) from None

    payload = _parse_payload(body)
    delivery_id = request.headers.get(DELIVERY_ID_HEADER) or None
    if delivery_id is not None and len(delivery_id) > MAX_DELIVERY_ID_CHARS:
        raise ProblemError(400, f"{DELIVERY_ID_HEADER} is longer than {MAX_DELIVERY_ID_CHARS} characters.")
    handler = ctx.extras.get(RAW_BATCH_HANDLER_KEY)
    if not callable(handler):
        # Checked before claiming: a delivery we cannot process must stay retryable.
        raise ProblemError(
            503, "The ingestion pipeline is not running.", headers={"Retry-After": RETRY_LATER_SEC}
        )

    dedup = DeliveryDeduplicator(ctx.redis, ctx.settings)
    claim = dedup.claim_for(platform, delivery_id, body, timestamp)
    try:
        state = await dedup.claim(claim)
    except RedisError:
        # Without the dedup store we cannot promise "never twice" (nor refuse replays): let the
        # sender retry rather than accept blindly.
        logger.exception("webhook dedup store unavailable", extra={"platform": platform})
        raise ProblemError(
            503, "Cannot record the delivery right now.", headers={"Retry-After": RETRY_LATER_SEC}
        ) from None
    if state is ClaimState.DONE:
        logger.info(
            "duplicate webhook delivery ignored", extra={"platform": platform, "delivery": delivery_id}
        )
        return JSONResponse(WebhookDuplicate().model_dump(), status_code=200)
    if state is ClaimState.PROCESSING:
        raise ProblemError(
            409,
            "The same delivery is being processed; retry later.",
            headers={"Retry-After": RETRY_LATER_SEC},
        )

    batch = RawBatch(source=f"webhook:{platform}", platform=platform, records=payload.records)
    try:
        result = await cast(RawBatchHandler, handler)(batch)
    except BaseException:
        # Not ingested: forget the claim so the sender's retry is processed, not called a duplicate.
        await _release(dedup, claim, platform)
        raise
    try:
        await dedup.complete(claim)
    except RedisError:
        # The records are in; at worst the processing claim expires and a retry re-ingests them,
        # which the idempotent pipeline absorbs.
        logger.warning("could not mark webhook delivery done", extra={"platform": platform})
    logger.info(
        "webhook delivery accepted",
        extra={
            "platform": platform,
            "delivery": delivery_id,
            "records": len(batch.records),
            "result": result,
        },
    )
    return JSONResponse(WebhookAccepted(records=len(batch.records)).model_dump(), status_code=202)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ProblemError(413, f"Body larger than {limit} bytes.")
    body = bytearray()
    # Counted while streaming: Content-Length may be absent (chunked) or wrong.
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ProblemError(413, f"Body larger than {limit} bytes.")
    return bytes(body)


def _parse_payload(body: bytes) -> WebhookPayload:
    try:
        return WebhookPayload.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("body", *error["loc"])}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        # The app's handler turns this into the same 422 problem+json as any other invalid body.
        raise RequestValidationError(errors) from None


async def _release(dedup: DeliveryDeduplicator, claim: DeliveryClaim, platform: str) -> None:
    with suppress(RedisError):
        await dedup.release(claim)
        return
    logger.warning("could not release webhook claim; it expires on its own", extra={"platform": platform})
