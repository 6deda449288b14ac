"""WebSocket fan-out latency of the sync service: from a device's write to its other device's receipt.

Two replicas (`media-gateway serve sync` subprocesses on one scratch database
`mg_bench_fanout_<random>` on 127.0.0.1:5432 (MG_BENCH_POSTGRES_DSN) and one Redis, scratch prefix).
A writer device PUTs watchlist items on replica 1, one at a time; reader devices of the same user
hold `/api/v1/sync/ws` sockets on replica 2 (cross-replica, through Redis pub/sub) and on replica 1.

Per write: `write_to_receipt` = request sent → op received on the socket; `ack_to_receipt` =
response received → op received (negative when the push beats the HTTP response, which it may: the
op is published right after the commit, before the response is written).
Phase `fanout_100` repeats it with 100 sockets of the user split over both replicas and reports the
time until the LAST socket has the op (and the first); all 100 are read by this one Python process,
whose own decoding is part of that figure.

Floor measured in the same run, interleaved write by write: a raw Redis PUBLISH → subscriber
receipt of a same-sized message (no HTTP, no database).
Target (the fan-out): write acknowledged → other device's receipt, p99 <= 50 ms, across replicas.
`write_to_receipt` adds the write's own latency (sync's commit path) for the end-to-end view.

    python -P bench/sync_fanout.py [WRITES]      # MG_BENCH_WS_DEFLATE=0: sockets without compression
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sync_mutations import ADMIN_DSN, REDIS_URL, ServiceProcess
from tests.fakes.token_issuer import TestTokenIssuer

from media_gateway.core.migrations import run_migrations
from media_gateway.core.settings import Settings

WIDE_SOCKETS = 100
TARGET_P99_MS = 50.0
# permessage-deflate as browsers and `websockets` negotiate it by default; MG_BENCH_WS_DEFLATE=0 turns
# it off, to see what compressing every message for every socket costs.
COMPRESSION = None if os.environ.get("MG_BENCH_WS_DEFLATE") == "0" else "deflate"


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(pick(0.95), 2),
        "p99_ms": round(pick(0.99), 2),
        "max_ms": round(ordered[-1], 2),
        "n": len(ordered),
    }


class Reader:
    """A socket that timestamps every op it receives, by seq."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: dict[int, float] = {}
        self.events: dict[int, asyncio.Event] = {}
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for raw in self.ws:
            now = time.perf_counter()
            message = orjson.loads(raw)
            if message.get("type") == "op":
                seq = message["op"]["seq"]
                self.received[seq] = now
                self.events.setdefault(seq, asyncio.Event()).set()

    async def wait(self, seq: int) -> float:
        await asyncio.wait_for(self.events.setdefault(seq, asyncio.Event()).wait(), 10)
        return self.received[seq]


async def _open_reader(base: str, token: str, device_id: str) -> Reader:
    url = f"{base.replace('http', 'ws', 1)}/api/v1/sync/ws?device_id={device_id}"
    ws = await connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, proxy=None, compression=COMPRESSION
    )
    first = orjson.loads(await ws.recv())
    assert first["type"] == "synced", first
    return Reader(ws)


async def _raw_floor(redis: aioredis.Redis, channel: str, payload: bytes, pubsub: Any) -> float:
    started = time.perf_counter()
    await redis.publish(channel, payload)
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=10)
        if message is not None:
            return (time.perf_counter() - started) * 1000


async def _phase(
    writer: httpx.AsyncClient,
    readers: list[Reader],
    writes: int,
    redis: aioredis.Redis,
    prefix: str,
    tag: str,
) -> dict[str, Any]:
    write_to_last: list[float] = []
    ack_to_last: list[float] = []
    ack_to_first: list[float] = []
    write_latency: list[float] = []
    floor: list[float] = []
    channel = f"{prefix}:bench:floor:{uuid.uuid4().hex}"
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=5)  # the subscribe confirmation
    sample_payload = b""
    for n in range(writes):
        started = time.perf_counter()
        response = await writer.put(f"/api/v1/sync/watchlist/{tag}-{n}")
        acked = time.perf_counter()
        response.raise_for_status()
        body = response.json()
        seq = body["operation"]["seq"]
        received = [await reader.wait(seq) for reader in readers]
        last = max(received)
        write_to_last.append((last - started) * 1000)
        ack_to_last.append((last - acked) * 1000)
        ack_to_first.append((min(received) - acked) * 1000)
        write_latency.append((acked - started) * 1000)
        sample_payload = sample_payload or orjson.dumps(body["operation"])
        floor.append(await _raw_floor(redis, channel, sample_payload, pubsub))
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    return {
        "sockets": len(readers),
        "write_to_receipt": _percentiles(write_to_last),
        "ack_to_receipt": _percentiles(ack_to_last),
        **({"ack_to_first_socket": _percentiles(ack_to_first)} if len(readers) > 1 else {}),
        "write_http_latency": _percentiles(write_latency),
        "baseline_redis_publish_to_receipt": _percentiles(floor),
    }


async def main() -> None:
    writes = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    database = f"mg_bench_fanout_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    base_dsn = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    prefix = f"mgbench-{database}"
    settings = Settings(database_url=f"{base_dsn}/{database}", redis_url=REDIS_URL, redis={"prefix": prefix})
    redis = aioredis.from_url(REDIS_URL)
    try:
        await run_migrations(settings, ["sync"])
        with TestTokenIssuer() as issuer:
            async with ServiceProcess(settings, issuer) as one, ServiceProcess(settings, issuer) as two:
                token = issuer.mint(uuid.uuid4())
                headers = {"Authorization": f"Bearer {token}", "X-Device-ID": "writer"}
                async with httpx.AsyncClient(base_url=one.base, headers=headers, timeout=30) as writer:
                    # Warm both replicas' pools, JWKS caches and hubs.
                    warm = [
                        await _open_reader(two.base, token, "warm-2"),
                        await _open_reader(one.base, token, "warm-1"),
                    ]
                    await _phase(writer, warm, 20, redis, prefix, "warm")
                    for reader in warm:
                        await reader.ws.close()

                    other_replica = [await _open_reader(two.base, token, "tv")]
                    cross = await _phase(writer, other_replica, writes, redis, prefix, "cross")
                    same_replica = [await _open_reader(one.base, token, "tablet")]
                    same = await _phase(writer, same_replica, writes, redis, prefix, "same")
                    for reader in other_replica + same_replica:
                        await reader.ws.close()

                    wide = [
                        await _open_reader((one, two)[i % 2].base, token, f"wall-{i}")
                        for i in range(WIDE_SOCKETS)
                    ]
                    fanout = await _phase(writer, wide, max(50, writes // 3), redis, prefix, "wide")
                    for reader in wide:
                        await reader.ws.close()
        cross_p99 = cross["ack_to_receipt"]["p99_ms"]
        print(
            json.dumps(
                {
                    "writes": writes,
                    "ws_compression": COMPRESSION,
                    "cross_replica": cross,
                    "same_replica": same,
                    f"fanout_{WIDE_SOCKETS}_sockets_two_replicas": fanout,
                    "target": {"ack_to_other_device_p99_ms": TARGET_P99_MS},
                    "meets_target": cross_p99 <= TARGET_P99_MS,
                },
                indent=2,
            )
        )
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
