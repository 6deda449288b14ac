"""The outbound client against a real HTTP server (uvicorn on a free 127.0.0.1 port), plus the breaker's
state machine on a fake clock where waiting for real time would add nothing."""

from __future__ import annotations

import asyncio
import gc
import re
import socket
import time
import uuid
import weakref
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import prometheus_client
import pytest
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from media_gateway.core.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from media_gateway.core.http import HttpClientFactory, ServiceClient
from media_gateway.core.request_id import request_id_var
from media_gateway.core.settings import HttpClientSettings, Settings

ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"]
COOLDOWN = 0.2


class Upstream:
    """A small service whose counters tell the tests how many requests actually arrived."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.request_ids: defaultdict[str, list[str | None]] = defaultdict(list)
        self.arrived: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.base_url = ""
        self.app = Starlette(
            routes=[
                Route("/echo", self.echo, methods=ALL_METHODS),
                Route("/flaky/{key}", self.flaky, methods=ALL_METHODS),
                Route("/status/{key}/{code:int}", self.status, methods=ALL_METHODS),
                Route("/slow/{key}", self.slow, methods=ALL_METHODS),
            ]
        )

    def _record(self, request: Request) -> str:
        key: str = request.path_params["key"]
        self.hits[key] += 1
        self.request_ids[key].append(request.headers.get("x-request-id"))
        self.arrived[key].set()
        return key

    async def echo(self, request: Request) -> Response:
        return JSONResponse({"headers": dict(request.headers)})

    async def flaky(self, request: Request) -> Response:
        """Answers `status` (default 503) to the first `fail` requests for a key, then 200."""
        await request.body()
        key = self._record(request)
        fail = int(request.query_params.get("fail", "1"))
        if self.hits[key] <= fail:
            return Response(status_code=int(request.query_params.get("status", "503")))
        return JSONResponse({"attempt": self.hits[key]})

    async def status(self, request: Request) -> Response:
        self._record(request)
        return Response(status_code=request.path_params["code"])

    async def slow(self, request: Request) -> Response:
        self._record(request)
        await asyncio.sleep(float(request.query_params.get("delay", "0.5")))
        return JSONResponse({"slept": True})


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[Upstream]:
    service = Upstream()
    # Binding port 0 ourselves and handing uvicorn the socket avoids a pick-a-port-then-bind race.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        service.app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("test upstream did not start")
        await asyncio.sleep(0.01)
    service.base_url = f"http://127.0.0.1:{port}"
    try:
        yield service
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


MakeClient = Callable[..., ServiceClient]


@pytest.fixture
async def factory_for() -> AsyncIterator[Callable[..., HttpClientFactory]]:
    """Factories with fast test defaults; each test states the knobs it depends on."""
    made: list[HttpClientFactory] = []

    def make(**http: Any) -> HttpClientFactory:
        values: dict[str, Any] = {
            "connect_timeout_sec": 1.0,
            "read_timeout_sec": 2.0,
            "retries": 2,
            "backoff_base_sec": 0.001,
            "backoff_max_sec": 0.01,
            "breaker_failure_threshold": 3,
            "breaker_cooldown_sec": COOLDOWN,
        }
        values.update(http)
        factory = HttpClientFactory(
            Settings(environment="test", http=HttpClientSettings(**values)), CollectorRegistry()
        )
        made.append(factory)
        return factory

    yield make
    for factory in made:
        await factory.aclose()


@pytest.fixture
def client_for(upstream: Upstream, factory_for: Callable[..., HttpClientFactory]) -> MakeClient:
    def make(**http: Any) -> ServiceClient:
        return factory_for(**http).client("upstream", upstream.base_url)

    return make


def state_of(breaker: CircuitBreaker) -> BreakerState:
    # A call, not a property read, so the type checker does not carry a narrowed state across awaits.
    return breaker.state


def key() -> str:
    return uuid.uuid4().hex


def gauge(factory: HttpClientFactory, upstream: str = "upstream") -> float | None:
    return factory.registry.get_sample_value("mg_http_breaker_state", {"upstream": upstream})


def requests_total(factory: HttpClientFactory, outcome: str, upstream: str = "upstream") -> float:
    value = factory.registry.get_sample_value(
        "mg_http_client_requests_total", {"upstream": upstream, "outcome": outcome}
    )
    return value or 0.0


async def arrival(upstream: Upstream, key: str) -> None:
    await asyncio.wait_for(upstream.arrived[key].wait(), timeout=5)


async def trip(client: ServiceClient, upstream: Upstream) -> str:
    """Open the client's breaker with 500s (never retried, so one request per failure)."""
    failing = key()
    for _ in range(client.breaker.failure_threshold):
        response = await client.get(f"/status/{failing}/500")
        assert response.status_code == 500
    assert state_of(client.breaker) is BreakerState.OPEN
    assert upstream.hits[failing] == client.breaker.failure_threshold
    return failing


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- request ids ---------------------------------------------------------------------------------


async def test_request_id_from_context_reaches_upstream_unchanged(
    upstream: Upstream, client_for: MakeClient
) -> None:
    client = client_for()
    token = request_id_var.set("abc")
    try:
        response = await client.get("/echo")
    finally:
        request_id_var.reset(token)
    assert response.json()["headers"]["x-request-id"] == "abc"


async def test_request_id_is_minted_per_call_when_context_has_none(
    upstream: Upstream, client_for: MakeClient
) -> None:
    client = client_for()
    token = request_id_var.set(None)
    try:
        first = (await client.get("/echo")).json()["headers"].get("x-request-id")
        second = (await client.get("/echo")).json()["headers"].get("x-request-id")
    finally:
        request_id_var.reset(token)
    assert first is not None
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert second != first
    # Minting must not leak into the caller's context.
    assert request_id_var.get() is None


@pytest.mark.parametrize("context_id", ["abc", None])
async def test_retries_of_one_call_share_one_request_id(
    upstream: Upstream, client_for: MakeClient, context_id: str | None
) -> None:
    client = client_for(retries=2)
    k = key()
    token = request_id_var.set(context_id)
    try:
        response = await client.get(f"/flaky/{k}?fail=2")
    finally:
        request_id_var.reset(token)
    assert response.status_code == 200
    ids = upstream.request_ids[k]
    assert len(ids) == 3
    assert len(set(ids)) == 1
    assert ids[0] is not None
    if context_id is not None:
        assert ids[0] == context_id


async def test_explicit_request_id_header_and_client_headers_are_kept(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    client = factory_for().client("upstream", upstream.base_url, headers={"X-Api-Key": "secret"})
    token = request_id_var.set("from-context")
    try:
        response = await client.get("/echo", headers={"X-Request-ID": "explicit"})
    finally:
        request_id_var.reset(token)
    headers = response.json()["headers"]
    assert headers["x-request-id"] == "explicit"
    assert headers["x-api-key"] == "secret"


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
async def test_idempotent_methods_are_retried_until_success(
    upstream: Upstream, client_for: MakeClient, method: str
) -> None:
    client = client_for(retries=2)
    k = key()
    response = await client.request(method, f"/flaky/{k}?fail=2&status=503")
    assert response.status_code == 200
    assert upstream.hits[k] == 3


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_statuses_are_retried(upstream: Upstream, client_for: MakeClient, status: int) -> None:
    client = client_for(retries=2)
    k = key()
    response = await client.get(f"/flaky/{k}?fail=1&status={status}")
    assert response.status_code == 200
    assert response.json() == {"attempt": 2}
    assert upstream.hits[k] == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_non_idempotent_methods_are_never_retried(
    upstream: Upstream, client_for: MakeClient, method: str
) -> None:
    client = client_for(retries=2)
    k = key()
    response = await client.request(method, f"/flaky/{k}?fail=1&status=503", json={"a": 1})
    assert response.status_code == 503
    assert upstream.hits[k] == 1


async def test_post_shorthand_is_not_retried(upstream: Upstream, client_for: MakeClient) -> None:
    client = client_for(retries=2)
    k = key()
    response = await client.post(f"/flaky/{k}?fail=1&status=503", content=b"x")
    assert response.status_code == 503
    assert upstream.hits[k] == 1


async def test_exhausted_retries_return_the_last_response(upstream: Upstream, client_for: MakeClient) -> None:
    client = client_for(retries=2)
    k = key()
    response = await client.get(f"/flaky/{k}?fail=100&status=503")
    assert response.status_code == 503
    assert upstream.hits[k] == 3


async def test_retries_setting_zero_means_one_attempt(upstream: Upstream, client_for: MakeClient) -> None:
    client = client_for(retries=0)
    k = key()
    response = await client.get(f"/flaky/{k}?fail=1&status=503")
    assert response.status_code == 503
    assert upstream.hits[k] == 1


async def test_500_is_not_retried(upstream: Upstream, client_for: MakeClient) -> None:
    client = client_for(retries=2)
    k = key()
    response = await client.get(f"/status/{k}/500")
    assert response.status_code == 500
    assert upstream.hits[k] == 1


async def test_streamed_body_is_not_retried_even_for_put(upstream: Upstream, client_for: MakeClient) -> None:
    client = client_for(retries=2)
    k = key()

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    response = await client.put(f"/flaky/{k}?fail=1&status=503", content=body())
    assert response.status_code == 503
    assert upstream.hits[k] == 1


async def test_backoff_is_capped_by_backoff_max(upstream: Upstream, client_for: MakeClient) -> None:
    # Uncapped, a 5 s base would wait up to 5 s and then 10 s between these attempts.
    client = client_for(retries=2, backoff_base_sec=5.0, backoff_max_sec=0.05)
    k = key()
    started = time.monotonic()
    response = await client.get(f"/flaky/{k}?fail=2&status=503")
    assert response.status_code == 200
    assert upstream.hits[k] == 3
    assert time.monotonic() - started < 2.0


# --- timeouts and connection errors --------------------------------------------------------------


async def test_timeout_raises_and_counts_as_breaker_failure(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    factory = factory_for(read_timeout_sec=0.1, retries=0, breaker_failure_threshold=2)
    client = factory.client("upstream", upstream.base_url)
    k = key()
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"/slow/{k}?delay=0.5")
    assert client.breaker.consecutive_failures == 1
    assert state_of(client.breaker) is BreakerState.CLOSED
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"/slow/{k}?delay=0.5")
    assert state_of(client.breaker) is BreakerState.OPEN
    assert requests_total(factory, "timeout") == 2
    assert upstream.hits[k] == 2


async def test_get_timeout_is_retried_post_timeout_is_not(upstream: Upstream, client_for: MakeClient) -> None:
    client = client_for(read_timeout_sec=0.1, retries=2, breaker_failure_threshold=10)
    get_key, post_key = key(), key()
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"/slow/{get_key}?delay=0.3")
    with pytest.raises(httpx.ReadTimeout):
        await client.post(f"/slow/{post_key}?delay=0.3")
    assert upstream.hits[get_key] == 3
    assert upstream.hits[post_key] == 1


async def test_connection_errors_are_retried_and_count_as_failures(
    factory_for: Callable[..., HttpClientFactory],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    # Bound but never listening: connections are refused for as long as the probe is closed.
    factory = factory_for(retries=2, breaker_failure_threshold=10)
    client = factory.client("dead", f"http://127.0.0.1:{dead_port}")
    with pytest.raises(httpx.ConnectError):
        await client.get("/anything")
    assert requests_total(factory, "connection_error", upstream="dead") == 3
    assert client.breaker.consecutive_failures == 3


# --- circuit breaker over real HTTP --------------------------------------------------------------


async def test_4xx_is_not_retried_and_does_not_trip_the_breaker(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    factory = factory_for(retries=2, breaker_failure_threshold=2)
    client = factory.client("upstream", upstream.base_url)
    k = key()
    for _ in range(5):
        response = await client.get(f"/status/{k}/404")
        assert response.status_code == 404
    assert upstream.hits[k] == 5
    assert state_of(client.breaker) is BreakerState.CLOSED
    assert client.breaker.consecutive_failures == 0
    assert requests_total(factory, "client_error") == 5
    assert gauge(factory) == 0


async def test_4xx_answer_resets_the_consecutive_failure_count(
    upstream: Upstream, client_for: MakeClient
) -> None:
    client = client_for(retries=0, breaker_failure_threshold=2)
    await client.get(f"/status/{key()}/500")
    assert client.breaker.consecutive_failures == 1
    await client.get(f"/status/{key()}/404")
    assert client.breaker.consecutive_failures == 0
    await client.get(f"/status/{key()}/500")
    assert state_of(client.breaker) is BreakerState.CLOSED


async def test_breaker_opens_at_threshold_then_rejects_without_reaching_server(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    factory = factory_for(retries=0, breaker_failure_threshold=3)
    client = factory.client("upstream", upstream.base_url)
    failing = key()
    for attempt in range(3):
        assert state_of(client.breaker) is BreakerState.CLOSED
        assert gauge(factory) == 0
        response = await client.get(f"/status/{failing}/500")
        assert response.status_code == 500
        assert client.breaker.consecutive_failures == attempt + 1
    assert state_of(client.breaker) is BreakerState.OPEN
    assert gauge(factory) == 1

    healthy = key()
    with pytest.raises(CircuitOpenError) as raised:
        await client.get(f"/status/{healthy}/200")
    assert raised.value.upstream == "upstream"
    assert 0 < raised.value.retry_after <= COOLDOWN
    with pytest.raises(CircuitOpenError):
        await client.post(f"/status/{healthy}/200")
    assert upstream.hits[failing] == 3
    assert upstream.hits[healthy] == 0
    assert requests_total(factory, "server_error") == 3
    assert requests_total(factory, "circuit_open") == 2


async def test_open_breaker_stops_the_remaining_retries(upstream: Upstream, client_for: MakeClient) -> None:
    client = client_for(retries=5, breaker_failure_threshold=2)
    k = key()
    with pytest.raises(CircuitOpenError):
        await client.get(f"/flaky/{k}?fail=100&status=503")
    assert upstream.hits[k] == 2


async def test_half_open_after_cooldown_and_successful_trial_closes(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    factory = factory_for(retries=0, breaker_failure_threshold=2, breaker_cooldown_sec=COOLDOWN)
    client = factory.client("upstream", upstream.base_url)
    await trip(client, upstream)

    await asyncio.sleep(COOLDOWN + 0.05)
    assert state_of(client.breaker) is BreakerState.HALF_OPEN
    assert gauge(factory) == 2

    trial = key()
    response = await client.get(f"/status/{trial}/200")
    assert response.status_code == 200
    assert upstream.hits[trial] == 1
    assert state_of(client.breaker) is BreakerState.CLOSED
    assert gauge(factory) == 0


async def test_failed_trial_reopens_and_restarts_the_cooldown(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    factory = factory_for(retries=0, breaker_failure_threshold=2, breaker_cooldown_sec=COOLDOWN)
    client = factory.client("upstream", upstream.base_url)
    await trip(client, upstream)
    await asyncio.sleep(COOLDOWN + 0.05)
    assert state_of(client.breaker) is BreakerState.HALF_OPEN

    trial = key()
    response = await client.get(f"/status/{trial}/500")
    assert response.status_code == 500
    assert upstream.hits[trial] == 1
    # Measured from the trial's failure: the first opening's cool-down has long expired.
    assert state_of(client.breaker) is BreakerState.OPEN
    assert gauge(factory) == 1
    healthy = key()
    with pytest.raises(CircuitOpenError):
        await client.get(f"/status/{healthy}/200")
    assert upstream.hits[healthy] == 0

    await asyncio.sleep(COOLDOWN + 0.05)
    assert state_of(client.breaker) is BreakerState.HALF_OPEN
    assert (await client.get(f"/status/{healthy}/200")).status_code == 200
    assert state_of(client.breaker) is BreakerState.CLOSED


async def test_half_open_lets_exactly_one_trial_through(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    factory = factory_for(retries=2, breaker_failure_threshold=2, breaker_cooldown_sec=COOLDOWN)
    client = factory.client("upstream", upstream.base_url)
    await trip(client, upstream)
    await asyncio.sleep(COOLDOWN + 0.05)

    trial_key, other_key = key(), key()
    trial = asyncio.create_task(client.get(f"/slow/{trial_key}?delay=0.3"))
    await arrival(upstream, trial_key)
    others = await asyncio.gather(
        *(client.get(f"/status/{other_key}/200") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, CircuitOpenError) for result in others)
    assert all(result.retry_after == 0 for result in others if isinstance(result, CircuitOpenError))
    assert upstream.hits[other_key] == 0
    assert state_of(client.breaker) is BreakerState.HALF_OPEN
    assert gauge(factory) == 2

    assert (await trial).status_code == 200
    assert state_of(client.breaker) is BreakerState.CLOSED
    assert (await client.get(f"/status/{other_key}/200")).status_code == 200
    assert upstream.hits[other_key] == 1


async def test_cancelled_trial_frees_the_half_open_slot(upstream: Upstream, client_for: MakeClient) -> None:
    client = client_for(retries=0, breaker_failure_threshold=2, breaker_cooldown_sec=COOLDOWN)
    await trip(client, upstream)
    await asyncio.sleep(COOLDOWN + 0.05)

    slow = key()
    trial = asyncio.create_task(client.get(f"/slow/{slow}?delay=1"))
    await arrival(upstream, slow)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert state_of(client.breaker) is BreakerState.HALF_OPEN

    healthy = key()
    assert (await client.get(f"/status/{healthy}/200")).status_code == 200
    assert state_of(client.breaker) is BreakerState.CLOSED


# --- factory -------------------------------------------------------------------------------------


async def test_factory_shares_one_breaker_per_upstream_name(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    factory = factory_for(retries=0, breaker_failure_threshold=2)
    first = factory.client("discovery", upstream.base_url)
    second = factory.client("discovery", upstream.base_url, read_timeout_sec=5.0)
    other = factory.client("sona", upstream.base_url)
    assert first.breaker is second.breaker
    assert first.breaker is factory.breaker("discovery")
    assert other.breaker is not first.breaker

    await trip(first, upstream)
    healthy = key()
    with pytest.raises(CircuitOpenError):
        await second.get(f"/status/{healthy}/200")
    assert upstream.hits[healthy] == 0
    assert (await other.get(f"/status/{healthy}/200")).status_code == 200
    assert gauge(factory, "discovery") == 1
    assert gauge(factory, "sona") == 0


async def test_factory_aclose_closes_every_client_it_made(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    factory = factory_for()
    clients = [factory.client(name, upstream.base_url) for name in ("a", "b", "a")]
    async with factory.client("c", upstream.base_url) as scoped:
        assert (await scoped.get("/echo")).status_code == 200
    assert scoped.is_closed
    # A client closed on its own is forgotten, so short-lived clients do not pile up in the factory.
    scoped_ref = weakref.ref(scoped)
    del scoped
    gc.collect()
    assert scoped_ref() is None
    assert not any(client.is_closed for client in clients)
    await factory.aclose()
    assert all(client.is_closed for client in clients)


async def test_metrics_go_to_the_given_registry_never_the_global_one(
    upstream: Upstream, factory_for: Callable[..., HttpClientFactory]
) -> None:
    registry = CollectorRegistry()
    settings = Settings(environment="test")
    factory = HttpClientFactory(settings, registry)
    # A second factory on the same registry must not collide on metric names.
    sibling = HttpClientFactory(settings, registry)
    name = f"upstream-{key()}"
    try:
        client = factory.client(name, upstream.base_url)
        sibling.client(f"{name}-sibling", upstream.base_url)
        assert (await client.get("/echo")).status_code == 200
    finally:
        await factory.aclose()
        await sibling.aclose()
    assert factory.registry is registry
    labels = {"upstream": name, "outcome": "success"}
    assert registry.get_sample_value("mg_http_client_requests_total", labels) == 1
    assert registry.get_sample_value("mg_http_breaker_state", {"upstream": name}) == 0
    assert registry.get_sample_value("mg_http_breaker_state", {"upstream": f"{name}-sibling"}) == 0
    assert prometheus_client.REGISTRY.get_sample_value("mg_http_breaker_state", {"upstream": name}) is None
    assert prometheus_client.REGISTRY.get_sample_value("mg_http_client_requests_total", labels) is None


def test_factory_without_registry_makes_its_own() -> None:
    first = HttpClientFactory(Settings(environment="test"))
    second = HttpClientFactory(Settings(environment="test"))
    assert first.registry is not prometheus_client.REGISTRY
    assert first.registry is not second.registry
    first.breaker("x")
    assert first.registry.get_sample_value("mg_http_breaker_state", {"upstream": "x"}) == 0


# --- breaker state machine on a fake clock -------------------------------------------------------


def make_breaker(clock: FakeClock, threshold: int = 3, cooldown: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker("svc", failure_threshold=threshold, cooldown_sec=cooldown, clock=clock)


def fail_times(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure(breaker.acquire())


def test_breaker_needs_consecutive_failures() -> None:
    breaker = make_breaker(FakeClock(), threshold=3)
    fail_times(breaker, 2)
    breaker.record_success(breaker.acquire())
    fail_times(breaker, 2)
    assert state_of(breaker) is BreakerState.CLOSED
    fail_times(breaker, 1)
    assert state_of(breaker) is BreakerState.OPEN


def test_breaker_cooldown_and_trial_on_fake_clock() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, threshold=1, cooldown=10.0)
    fail_times(breaker, 1)
    clock.advance(9.99)
    assert state_of(breaker) is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as raised:
        breaker.acquire()
    assert raised.value.retry_after == pytest.approx(0.01)
    clock.advance(0.01)
    assert state_of(breaker) is BreakerState.HALF_OPEN
    trial = breaker.acquire()
    assert trial.is_trial
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    breaker.record_failure(trial)
    assert state_of(breaker) is BreakerState.OPEN
    clock.advance(9.0)
    assert state_of(breaker) is BreakerState.OPEN
    clock.advance(1.0)
    trial = breaker.acquire()
    breaker.record_success(trial)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0
    assert not breaker.acquire().is_trial


def test_released_trial_lets_the_next_caller_try() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, threshold=1, cooldown=1.0)
    fail_times(breaker, 1)
    clock.advance(1.0)
    breaker.release(breaker.acquire())
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.acquire().is_trial


def test_late_outcomes_of_calls_admitted_while_closed_are_ignored() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, threshold=2, cooldown=10.0)
    slow_success, slow_failure = breaker.acquire(), breaker.acquire()
    fail_times(breaker, 2)
    assert state_of(breaker) is BreakerState.OPEN
    clock.advance(5.0)
    breaker.record_success(slow_success)
    assert state_of(breaker) is BreakerState.OPEN
    breaker.record_failure(slow_failure)
    clock.advance(5.0)
    # The stale failure did not restart the cool-down.
    assert state_of(breaker) is BreakerState.HALF_OPEN


def test_a_permit_counts_once() -> None:
    breaker = make_breaker(FakeClock(), threshold=2)
    permit = breaker.acquire()
    breaker.record_failure(permit)
    breaker.record_failure(permit)
    assert breaker.consecutive_failures == 1
    assert state_of(breaker) is BreakerState.CLOSED


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, -1.0)])
def test_breaker_rejects_nonsense_settings(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError, match="must"):
        CircuitBreaker("svc", failure_threshold=threshold, cooldown_sec=cooldown)
