"""A client-side token bucket for third-party APIs that meter us per key.

No rate-limit library is among the project's dependencies, and this is the whole algorithm: a bucket
of `burst` tokens refilled continuously at `rate` per second; each request takes one, waiting for the
refill when the bucket is empty. Over any window of T seconds at most `burst + rate * T` requests
start, which is what a provider's "N requests per second" quota means.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx


class TokenBucket:
    def __init__(self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        # Waiters queue on the lock (asyncio locks are FIFO), so callers are served in arrival order
        # and none can starve behind a luckier one that keeps arriving just as a token appears.
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.rate)
                self._refill()
            # After the sleep the deficit is refilled up to float rounding; never let rounding make
            # the bucket go negative and delay the next caller by more than one interval.
            self._tokens = max(self._tokens - 1, 0.0)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now


class RateLimitedTransport(httpx.AsyncBaseTransport):
    """Takes a token before every attempt that goes on the wire.

    Limiting at the transport, below the client's retry loop, means retries are metered too: a
    retry storm against a struggling provider cannot exceed the quota the first attempts respect.
    """

    def __init__(self, bucket: TokenBucket, inner: httpx.AsyncBaseTransport) -> None:
        self.bucket = bucket
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.bucket.acquire()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
