"""A lean HTTP/1.1 load generator for the benches: keep-alive connections spread over processes.

The benches used to drive load from one Python process with httpx, which topped out near 140
requests/s and so measured itself. Here each connection is a raw asyncio protocol with httptools
parsing (about 40 µs of client CPU a request), and connections are spread over several processes.

Two ways to load:
- closed loop (`rate_per_sec=None`): each connection sends its next request when the previous
  answer arrives. This finds the saturation throughput; its latency is mostly queueing.
- open loop (`rate_per_sec=R`): the connections together send R requests/s on a fixed schedule,
  like devices that act on their own clock. Latency is measured from each request's *scheduled*
  time, so a slow answer that delays the next request is charged to it too (no coordinated omission,
  as in wrk2). "N/s with p99 X" means: offered N/s, and 99 % answered within X of when they were due.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httptools
import uvloop


def http_request(
    method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


@dataclass(frozen=True)
class LoadSpec:
    host: str
    port: int
    # One list per connection, sent in order and cycled: what each device or client says.
    requests: Sequence[Sequence[bytes]]
    duration_sec: float
    warmup_sec: float = 1.0
    rate_per_sec: float | None = None
    processes: int = 1
    # False: each connection sends its list once (every request distinct, e.g. uncached searches)
    # and the run ends when all are answered or the duration is up, whichever is first.
    cycle: bool = True


@dataclass
class LoadResult:
    mode: str
    connections: int
    offered_per_sec: float | None
    completed_per_sec: float
    latency_ms: dict[str, float]
    statuses: dict[int, int]
    errors: int
    # Requests that were due in the window but never answered before the run ended.
    unfinished: int
    samples: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "connections": self.connections,
            "offered_per_sec": self.offered_per_sec,
            "completed_per_sec": self.completed_per_sec,
            **self.latency_ms,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "unfinished": self.unfinished,
        }


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 2)

    return {
        "p50_ms": pick(0.50),
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "p999_ms": pick(0.999),
        "max_ms": round(ordered[-1], 2),
        "n": len(ordered),
    }


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[int] | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("server closed the connection")
        self._fail(self.lost)

    def _fail(self, exc: BaseException) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        if self.lost is not None:
            raise self.lost
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.done


async def _drive(
    host: str,
    port: int,
    lanes: list[tuple[int, Sequence[bytes]]],
    connections: int,
    spec_rate: float | None,
    start_at: float,
    warmup: float,
    duration: float,
    cycle: bool,
) -> tuple[list[float], Counter[int], int, int, float]:
    loop = asyncio.get_running_loop()
    samples: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    unfinished = 0
    # Wall-clock start shared by every process, turned into this loop's clock.
    # uvloop's loop.time() ticks in whole milliseconds: schedule and measure on perf_counter.
    clock = time.perf_counter
    begin = clock() + (start_at - time.time())
    measure_from = begin + warmup
    end = measure_from + duration
    last_answer = measure_from

    async def lane(index: int, requests: Sequence[bytes]) -> None:
        nonlocal errors, unfinished, last_answer
        if not requests:
            return
        _, conn = await loop.create_connection(_Connection, host, port)
        interval = connections / spec_rate if spec_rate else 0.0
        # Spread the connections' schedules so the offered load is smooth, not in bursts.
        due = begin + (interval * random.Random(index).random() if interval else 0.0)
        await asyncio.sleep(max(0.0, due - clock()))
        sent = 0
        while True:
            now = clock()
            if interval:
                if due >= end:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                started = due
                due += interval
            else:
                if now >= end:
                    break
                started = now
            if not cycle and sent == len(requests):
                break
            request = requests[sent % len(requests)]
            sent += 1
            try:
                status = await asyncio.wait_for(conn.exchange(request), timeout=max(0.1, end + 5 - clock()))
            except TimeoutError:
                if started >= measure_from:
                    unfinished += 1
                break
            except (OSError, httptools.HttpParserError):
                errors += 1
                if conn.transport is not None:
                    conn.transport.close()
                _, conn = await loop.create_connection(_Connection, host, port)
                continue
            finished = clock()
            if started >= measure_from:
                statuses[status] += 1
                samples.append((finished - started) * 1000)
                last_answer = max(last_answer, finished)
        if conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(lane(i, r) for i, r in lanes))
    # How long this process measured for: the full duration, or less if its lists ran out.
    elapsed = duration if cycle else min(duration, last_answer - measure_from)
    return samples, statuses, errors, unfinished, elapsed


def _worker(
    args: tuple[str, int, list[tuple[int, Sequence[bytes]]], int, float | None, float, float, float, bool],
) -> tuple[list[float], dict[int, int], int, int, float]:
    samples, statuses, errors, unfinished, elapsed = uvloop.run(_drive(*args))
    return samples, dict(statuses), errors, unfinished, elapsed


def run_load(spec: LoadSpec) -> LoadResult:
    """Blocking: run it with `asyncio.to_thread` from async code."""
    connections = len(spec.requests)
    processes = max(1, min(spec.processes, connections))
    shares: list[list[tuple[int, Sequence[bytes]]]] = [[] for _ in range(processes)]
    for index, requests in enumerate(spec.requests):
        shares[index % processes].append((index, list(requests)))
    # Processes take a second or two to start: everyone begins at one agreed wall-clock moment.
    start_at = time.time() + 1.5 + 0.2 * processes
    jobs = [
        (
            spec.host,
            spec.port,
            share,
            connections,
            spec.rate_per_sec,
            start_at,
            spec.warmup_sec,
            spec.duration_sec,
            spec.cycle,
        )
        for share in shares
    ]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        outputs = pool.map(_worker, jobs)
    samples: list[float] = []
    statuses: Counter[int] = Counter()
    errors = unfinished = 0
    elapsed = 0.0
    for part_samples, part_statuses, part_errors, part_unfinished, part_elapsed in outputs:
        elapsed = max(elapsed, part_elapsed)
        samples.extend(part_samples)
        statuses.update(part_statuses)
        errors += part_errors
        unfinished += part_unfinished
    return LoadResult(
        mode="open" if spec.rate_per_sec else "closed",
        connections=connections,
        offered_per_sec=spec.rate_per_sec,
        completed_per_sec=round(len(samples) / elapsed, 1) if elapsed > 0 else 0.0,
        latency_ms=percentiles(samples),
        statuses=dict(statuses),
        errors=errors,
        unfinished=unfinished,
        samples=samples,
    )
