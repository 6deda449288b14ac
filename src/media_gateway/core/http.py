"""Outbound HTTP: one `HttpClientFactory` per app hands out `ServiceClient`s that carry the request id,
time out, retry idempotent calls with full-jitter backoff and sit behind a per-upstream circuit breaker.

Every service calls every other service (and third parties) through these clients, so the contract of
DESIGN.md §6 ("Resilience", "Request ids") is kept in exactly one place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypedDict, Unpack

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from media_gateway.core.breaker import CircuitBreaker, CircuitOpenError
from media_gateway.core.http_transport import AiohttpTransport
from media_gateway.core.metrics import metric_set
from media_gateway.core.request_id import REQUEST_ID_HEADER, current_request_id, new_request_id
from media_gateway.core.settings import HttpClientSettings, Settings

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "ClientMetrics",
    "ClientOverrides",
    "HttpClientFactory",
    "ServiceClient",
]

logger = logging.getLogger(__name__)

# RFC 9110 §9.2.2: repeating these has the same effect as sending them once, so a retry after an
# ambiguous failure (was the request applied before the connection dropped?) is safe.
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Gateway/proxy answers that say "not now", unlike 500 which usually means "this request breaks me".
RETRYABLE_STATUSES: Final = frozenset({502, 503, 504})
# Errors that say the upstream is unreachable or unwell. Local mistakes (invalid URL, unsupported
# scheme, LocalProtocolError) are our bug: retrying or blaming the upstream would hide them.
_UPSTREAM_ERRORS: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class ClientMetrics:
    requests: Counter
    duration: Histogram
    breaker_state: Gauge

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> ClientMetrics:
        return metric_set(registry, cls, cls._build)

    @classmethod
    def _build(cls, registry: CollectorRegistry) -> ClientMetrics:
        return cls(
            requests=Counter(
                "mg_http_client_requests_total",
                "Outbound HTTP attempts by upstream and outcome.",
                ["upstream", "outcome"],
                registry=registry,
            ),
            duration=Histogram(
                "mg_http_client_request_duration_seconds",
                "Outbound HTTP attempt latency, including failed attempts.",
                ["upstream"],
                registry=registry,
            ),
            breaker_state=Gauge(
                "mg_http_breaker_state",
                "Circuit breaker state per upstream: 0 closed, 1 open, 2 half-open.",
                ["upstream"],
                registry=registry,
            ),
        )

    def track_breaker(self, breaker: CircuitBreaker) -> None:
        # Read at scrape time, so the gauge never lags the clock-derived half-open state.
        self.breaker_state.labels(upstream=breaker.upstream).set_function(lambda: float(breaker.state))


class ClientOverrides(TypedDict, total=False):
    """Per-client departures from `settings.http`, e.g. a slow third party or an in-process test."""

    connect_timeout_sec: float
    read_timeout_sec: float
    retries: int
    backoff_base_sec: float
    backoff_max_sec: float
    headers: Mapping[str, str]
    transport: httpx.AsyncBaseTransport


class ServiceClient:
    """`httpx.AsyncClient` for one upstream with timeouts, retries, a breaker and request-id propagation.

    The breaker sees every attempt, not every logical request, so a retry loop against a dead upstream
    trips it sooner and the breaker opening stops the remaining retries.
    """

    def __init__(
        self,
        upstream: str,
        base_url: str,
        *,
        http_settings: HttpClientSettings,
        breaker: CircuitBreaker,
        metrics: ClientMetrics | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_close: Callable[[ServiceClient], None] | None = None,
    ) -> None:
        if http_settings.retries < 0:
            raise ValueError("retries must not be negative")
        self.upstream = upstream
        self.breaker = breaker
        self._settings = http_settings
        self._metrics = metrics
        self._on_close = on_close
        # write and pool share the read budget: one slow phase should not get a fresh allowance.
        timeout = httpx.Timeout(http_settings.read_timeout_sec, connect=http_settings.connect_timeout_sec)
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=headers, transport=transport
        )

    @property
    def base_url(self) -> httpx.URL:
        return self._client.base_url

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries for idempotent methods; the last response is returned even when its status
        was retryable, and the last exception is re-raised when every attempt failed in transport.

        `kwargs` go to `httpx.AsyncClient.request`.
        """
        method = method.upper()
        headers = httpx.Headers(kwargs.pop("headers", None))
        if REQUEST_ID_HEADER not in headers:
            # Minted once per logical call, so the upstream sees its retries under one id.
            headers[REQUEST_ID_HEADER] = current_request_id() or new_request_id()
        kwargs["headers"] = headers

        attempts = 1
        if method in IDEMPOTENT_METHODS and _replayable(kwargs):
            attempts = self._settings.retries + 1
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_random_exponential(
                multiplier=self._settings.backoff_base_sec, max=self._settings.backoff_max_sec
            ),
            retry=(
                retry_if_exception(lambda exc: isinstance(exc, _UPSTREAM_ERRORS))
                | retry_if_result(lambda response: response.status_code in RETRYABLE_STATUSES)
            ),
            retry_error_callback=_last_outcome,
            before_sleep=self._log_retry,
            reraise=True,
        )
        response: httpx.Response = await retrying(self._attempt, method, url, kwargs)
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("HEAD", url, **kwargs)

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._on_close is not None:
            self._on_close(self)
            self._on_close = None

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _attempt(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        try:
            permit = self.breaker.acquire()
        except CircuitOpenError:
            self._count("circuit_open")
            raise
        started = time.perf_counter()
        try:
            response = await self._client.request(method, url, **kwargs)
        except _UPSTREAM_ERRORS as exc:
            self.breaker.record_failure(permit)
            self._observe(
                started, "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
            )
            raise
        except BaseException as exc:
            # Cancellation or our own mistake: no verdict on the upstream, but free a half-open trial.
            self.breaker.release(permit)
            self._count("cancelled" if isinstance(exc, asyncio.CancelledError) else "error")
            raise
        if response.status_code >= 500:
            self.breaker.record_failure(permit)
            outcome = "server_error"
        else:
            # A 4xx is the upstream working correctly and refusing our request.
            self.breaker.record_success(permit)
            outcome = "client_error" if response.status_code >= 400 else "success"
        self._observe(started, outcome)
        return response

    def _observe(self, started: float, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.duration.labels(upstream=self.upstream).observe(time.perf_counter() - started)
        self._count(outcome)

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.requests.labels(upstream=self.upstream, outcome=outcome).inc()

    def _log_retry(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        reason: object = None
        if outcome is not None:
            reason = outcome.exception() if outcome.failed else outcome.result().status_code
        logger.info(
            "retrying upstream call",
            extra={
                "upstream": self.upstream,
                "attempt": retry_state.attempt_number,
                "reason": repr(reason),
                "sleep_sec": retry_state.upcoming_sleep,
            },
        )


def _replayable(kwargs: Mapping[str, Any]) -> bool:
    # A streamed body or file upload is consumed by the first attempt; resending it would send nothing.
    content = kwargs.get("content")
    return kwargs.get("files") is None and (content is None or isinstance(content, bytes | str))


def _last_outcome(retry_state: RetryCallState) -> httpx.Response:
    # Out of attempts: hand back the last response (a 503 is still a response the caller can read)
    # or re-raise the last transport error, instead of tenacity's RetryError wrapper.
    if retry_state.outcome is None:  # pragma: no cover - tenacity only calls this after an attempt
        raise RuntimeError("retry ended before any attempt")
    response: httpx.Response = retry_state.outcome.result()
    return response


class HttpClientFactory:
    """Makes the clients of one app. Breakers are per upstream name and shared by every client of that
    upstream, so failures seen by one client protect the others."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        # Never the global default registry: all apps share one process in embedded mode.
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ClientMetrics.for_registry(self.registry)
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._clients: set[ServiceClient] = set()

    def breaker(self, upstream: str) -> CircuitBreaker:
        breaker = self._breakers.get(upstream)
        if breaker is None:
            breaker = CircuitBreaker(
                upstream,
                failure_threshold=self.settings.http.breaker_failure_threshold,
                cooldown_sec=self.settings.http.breaker_cooldown_sec,
                clock=self._clock,
            )
            self._breakers[upstream] = breaker
            self.metrics.track_breaker(breaker)
        return breaker

    def client(self, upstream: str, base_url: str, **overrides: Unpack[ClientOverrides]) -> ServiceClient:
        """A new client; make it once at startup and reuse it, as each holds its own connection pool."""
        headers = overrides.pop("headers", None)
        # Our services by default; a third party's client brings its own (TLS, proxies, metering).
        transport = overrides.pop("transport", None) or AiohttpTransport()
        http_settings = self.settings.http.model_copy(update=dict(overrides))
        client = ServiceClient(
            upstream,
            base_url,
            http_settings=http_settings,
            breaker=self.breaker(upstream),
            metrics=self.metrics,
            headers=headers,
            transport=transport,
            on_close=self._clients.discard,
        )
        self._clients.add(client)
        return client

    async def aclose(self) -> None:
        clients = list(self._clients)
        self._clients.clear()
        for client in clients:
            await client.aclose()
