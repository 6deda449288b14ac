"""Webhooks over real HTTP: the router in an app built by `create_service_app`, served by uvicorn,
with the real Redis for dedup."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from media_gateway.core.app import create_service_app
from media_gateway.core.errors import PROBLEM_JSON
from media_gateway.ingestion.schemas import RawBatch
from media_gateway.ingestion.webhook_routes import router
from media_gateway.ingestion.webhooks import (
    DELIVERY_ID_HEADER,
    RAW_BATCH_HANDLER_KEY,
    SIGNATURE_HEADER,
    SignatureError,
    StaleSignatureError,
    compute_signature,
    parse_signature_header,
    signature_header,
    verify_signature,
)
from tests.conftest import make_settings
from tests.support import serving

SECRET = "whsec-netflix-3b1f0c9e7d"
TOLERANCE = 300


def new_records() -> list[dict[str, Any]]:
    # Unique per test: identical signed content within one second is, by design, the same delivery,
    # and every test of the run shares one Redis prefix.
    tag = uuid.uuid4().hex[:8]
    return [{"id": f"80100172-{tag}", "title": "Dark"}, {"id": f"81040344-{tag}", "title": "Squid Game"}]


class RecordingBatchHandler:
    """TEST STAND-IN for the ingestion pipeline's raw-batch entry point, which the router reaches
    through `ctx.extras["raw_batch_handler"]`. Used only because that pipeline did not exist when
    these tests were written: swap in the real pipeline once it does."""

    def __init__(self) -> None:
        self.batches: list[RawBatch] = []
        self.fail_next = False
        self.entered = asyncio.Event()
        self.release: asyncio.Event | None = None

    async def __call__(self, batch: RawBatch) -> dict[str, Any]:
        self.entered.set()
        if self.release is not None:
            await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("pipeline exploded")
        self.batches.append(batch)
        return {"received": len(batch.records)}


@dataclass
class Webhooks:
    client: httpx.AsyncClient
    handler: RecordingBatchHandler

    async def post(
        self,
        body: bytes | dict[str, Any],
        *,
        platform: str = "netflix",
        secret: str = SECRET,
        timestamp: int | None = None,
        delivery_id: str | None = "default",
        signature: str | None = "sign",
        signed_body: bytes | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            headers[SIGNATURE_HEADER] = signature_header(secret, signed_body or raw, timestamp)
        elif signature is not None:
            headers[SIGNATURE_HEADER] = signature
        if delivery_id is not None:
            headers[DELIVERY_ID_HEADER] = uuid.uuid4().hex if delivery_id == "default" else delivery_id
        return await self.client.post(f"/api/v1/webhooks/{platform}", content=raw, headers=headers)


async def webhooks_app(*, register_handler: bool = True, **ingestion: Any) -> AsyncIterator[Webhooks]:
    settings = make_settings(
        ingestion={
            "webhook_secrets": {"netflix": SECRET, "hulu": ""},
            "webhook_tolerance_sec": TOLERANCE,
            **ingestion,
        }
    )
    app = create_service_app("ingestion", settings, routers=[router])
    handler = RecordingBatchHandler()
    if register_handler:
        app.state.ctx.extras[RAW_BATCH_HANDLER_KEY] = handler
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield Webhooks(client, handler)


@pytest.fixture
async def hooks() -> AsyncIterator[Webhooks]:
    async for value in webhooks_app():
        yield value


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_valid_delivery_is_accepted_and_handed_to_the_pipeline(hooks: Webhooks) -> None:
    records = new_records()
    response = await hooks.post({"records": records})
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "records": 2}
    [batch] = hooks.handler.batches
    assert (batch.platform, batch.source, batch.records, batch.cursor) == (
        "netflix",
        "webhook:netflix",
        records,
        None,
    )


async def test_wrong_secret_is_401(hooks: Webhooks) -> None:
    body = assert_problem(await hooks.post({"records": new_records()}, secret="not-the-secret"), 401)
    assert "does not match" in body["detail"]
    assert hooks.handler.batches == []


async def test_missing_signature_is_401(hooks: Webhooks) -> None:
    body = assert_problem(await hooks.post({"records": new_records()}, signature=None), 401)
    assert SIGNATURE_HEADER in body["detail"]
    assert hooks.handler.batches == []


@pytest.mark.parametrize("header", ["", "v1=abc", "t=123", "t=soon,v1=abcd", "garbage"])
async def test_malformed_signature_header_is_401(hooks: Webhooks, header: str) -> None:
    assert_problem(await hooks.post({"records": new_records()}, signature=header), 401)
    assert hooks.handler.batches == []


async def test_tampered_body_is_401(hooks: Webhooks) -> None:
    signed = orjson.dumps({"records": new_records()})
    tampered = orjson.dumps({"records": [{**new_records()[0], "title": "Dark (evil)"}]})
    assert_problem(await hooks.post(tampered, signed_body=signed), 401)
    assert hooks.handler.batches == []


@pytest.mark.parametrize("skew", [-(TOLERANCE + 60), TOLERANCE + 60])
async def test_timestamp_outside_the_tolerance_is_401(hooks: Webhooks, skew: int) -> None:
    response = await hooks.post({"records": new_records()}, timestamp=int(time.time()) + skew)
    body = assert_problem(response, 401)
    assert body["type"].endswith("/webhook-replay")
    assert hooks.handler.batches == []


async def test_timestamp_inside_the_tolerance_is_accepted(hooks: Webhooks) -> None:
    response = await hooks.post({"records": new_records()}, timestamp=int(time.time()) - TOLERANCE + 30)
    assert response.status_code == 202, response.text


async def test_redelivered_delivery_id_is_a_duplicate_and_not_reingested(hooks: Webhooks) -> None:
    delivery = f"evt_{uuid.uuid4().hex}"
    body = {"records": new_records()}
    first = await hooks.post(body, delivery_id=delivery)
    # The sender's retry: re-signed a second later, same delivery id.
    second = await hooks.post(body, delivery_id=delivery, timestamp=int(time.time()) + 1)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    assert len(hooks.handler.batches) == 1


async def test_replayed_request_under_a_new_delivery_id_is_a_duplicate(hooks: Webhooks) -> None:
    raw = orjson.dumps({"records": new_records()})
    header = signature_header(SECRET, raw)
    first = await hooks.post(raw, signature=header, delivery_id="evt-original-" + uuid.uuid4().hex)
    # The delivery id is not signed: an attacker replaying the captured request can change it.
    replay = await hooks.post(raw, signature=header, delivery_id="evt-forged-" + uuid.uuid4().hex)
    assert first.status_code == 202
    assert replay.json() == {"status": "duplicate"}
    assert len(hooks.handler.batches) == 1


async def test_without_a_delivery_id_the_body_identifies_the_delivery(hooks: Webhooks) -> None:
    body = {"records": [{"id": uuid.uuid4().hex, "title": "Unique"}]}
    first = await hooks.post(body, delivery_id=None)
    second = await hooks.post(body, delivery_id=None, timestamp=int(time.time()) + 2)
    other = await hooks.post({"records": new_records()}, delivery_id=None)
    assert (first.status_code, second.status_code, other.status_code) == (202, 200, 202)
    assert len(hooks.handler.batches) == 2


async def test_unknown_platform_or_platform_without_secret_is_404(hooks: Webhooks) -> None:
    assert_problem(await hooks.post({"records": new_records()}, platform="crunchyroll"), 404)
    assert_problem(await hooks.post({"records": new_records()}, platform="hulu", secret=""), 404)
    assert hooks.handler.batches == []


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"records": "nope"}', b'{"records": []}', b'{"records": [1, 2]}', b"{}"],
)
async def test_malformed_body_is_422(hooks: Webhooks, body: bytes) -> None:
    problem = assert_problem(await hooks.post(body), 422)
    assert problem["errors"]
    assert all(error["loc"][0] == "body" for error in problem["errors"])
    assert hooks.handler.batches == []


async def test_rejected_body_does_not_use_up_the_delivery_id(hooks: Webhooks) -> None:
    delivery = uuid.uuid4().hex
    assert_problem(await hooks.post(b'{"records": "oops"}', delivery_id=delivery), 422)
    fixed = await hooks.post({"records": new_records()}, delivery_id=delivery)
    assert fixed.status_code == 202


async def test_failed_handoff_can_be_retried(hooks: Webhooks) -> None:
    delivery = uuid.uuid4().hex
    hooks.handler.fail_next = True
    body = {"records": new_records()}
    failed = await hooks.post(body, delivery_id=delivery)
    assert_problem(failed, 500)
    retried = await hooks.post(body, delivery_id=delivery)
    assert retried.status_code == 202, retried.text
    assert len(hooks.handler.batches) == 1


async def test_same_delivery_while_in_flight_is_409(hooks: Webhooks) -> None:
    delivery = uuid.uuid4().hex
    hooks.handler.release = asyncio.Event()
    body = {"records": new_records()}
    first = asyncio.create_task(hooks.post(body, delivery_id=delivery))
    await asyncio.wait_for(hooks.handler.entered.wait(), 5)
    concurrent = await hooks.post(body, delivery_id=delivery)
    hooks.handler.release.set()
    assert_problem(concurrent, 409)
    assert "Retry-After" in concurrent.headers
    assert (await first).status_code == 202
    assert len(hooks.handler.batches) == 1


async def test_no_pipeline_registered_is_503() -> None:
    async for hooks in webhooks_app(register_handler=False):
        response = await hooks.post({"records": new_records()})
        assert_problem(response, 503)
        assert response.headers["Retry-After"]


async def test_oversized_body_is_413() -> None:
    async for hooks in webhooks_app(webhook_max_body_bytes=64):
        assert_problem(await hooks.post({"records": new_records() * 10}), 413)
        assert hooks.handler.batches == []


async def test_secret_rotation_accepts_any_matching_v1(hooks: Webhooks) -> None:
    raw = orjson.dumps({"records": new_records()})
    t = int(time.time())
    header = f"t={t},v1={compute_signature('old-secret', t, raw)},v1={compute_signature(SECRET, t, raw)}"
    assert (await hooks.post(raw, signature=header)).status_code == 202


async def test_secret_and_signature_never_reach_the_logs(
    hooks: Webhooks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = orjson.dumps({"records": new_records()})
    header = signature_header(SECRET, raw)
    await hooks.post(raw, signature=header)
    await hooks.post(raw, secret="wrong")
    await hooks.post(raw, timestamp=int(time.time()) - 10_000)
    assert caplog.records, "the webhook route should log its decisions"
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert SECRET not in logged
    assert header.split("v1=")[1] not in logged


def test_signature_verification_unit() -> None:
    body = b'{"records": []}'
    now = 1_800_000_000
    header = signature_header(SECRET, body, now)
    assert parse_signature_header(header)[0] == now
    assert verify_signature(SECRET, body, header, tolerance_sec=300, now=now + 299) == now
    with pytest.raises(StaleSignatureError):
        verify_signature(SECRET, body, header, tolerance_sec=300, now=now + 301)
    with pytest.raises(SignatureError):
        verify_signature("other", body, header, tolerance_sec=300, now=now)
    with pytest.raises(SignatureError):
        verify_signature(SECRET, body + b" ", header, tolerance_sec=300, now=now)
    with pytest.raises(SignatureError):
        verify_signature(SECRET, body, f"t={now},v1=\u00fc{'a' * 63}", tolerance_sec=300, now=now)
    # A stale timestamp on a forged signature reports the forgery, not the clock.
    forged = f"t={now},v1={'0' * 64}"
    with pytest.raises(SignatureError) as caught:
        verify_signature(SECRET, body, forged, tolerance_sec=300, now=now + 10_000)
    assert not isinstance(caught.value, StaleSignatureError)
