from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, Field

from media_gateway.core.app import create_service_app
from media_gateway.core.settings import SERVICE_NAMES, Settings
from media_gateway.runner import app_factory
from tests.conftest import make_settings
from tests.support import free_port, serving


class Greeting(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    times: int = Field(ge=1, le=3)


probe_router = APIRouter()


@probe_router.post("/greet")
async def greet(body: Greeting) -> dict[str, str]:
    logging.getLogger("tests.probe").info("greeting %s", body.name)
    return {"message": " ".join([f"hello {body.name}"] * body.times)}


@probe_router.get("/boom")
async def boom() -> None:
    raise RuntimeError("kaboom with a secret-ish detail")


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_every_service_is_live_ready_and_exposes_metrics(
    migrated_settings: Settings, service: str
) -> None:
    gateway_port = free_port()
    settings = make_settings(ports={"gateway": gateway_port})
    app = app_factory(service)(settings)  # type: ignore[arg-type]
    async with (
        serving(app_factory("gateway")(settings), port=gateway_port),
        serving(app) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        live = await client.get("/health/live")
        assert live.status_code == 200
        assert live.json() == {"status": "ok", "service": service}

        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "ready"
        assert body["checks"]["postgres"]["status"] == "ok"
        assert body["checks"]["redis"]["status"] == "ok"

        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert "mg_http_requests_total" in metrics.text
        assert f'service="{service}"' in metrics.text
        assert 'route="/health/ready"' in metrics.text


async def test_ready_is_503_naming_postgres_when_the_database_is_down(test_database: str) -> None:
    dead = free_port()
    settings = make_settings(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{dead}/nothing")
    async with serving(app_factory("playback")(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["failing"] == ["postgres"]
    assert "postgres" in body["detail"]
    assert body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["postgres"]["status"] == "down"


async def test_ready_is_503_naming_redis_when_redis_is_down(test_database: str) -> None:
    dead = free_port()
    settings = make_settings(redis_url=f"redis://127.0.0.1:{dead}/0")
    async with serving(app_factory("sync")(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"]


async def test_mcp_is_not_ready_without_the_gateway(test_database: str) -> None:
    settings = make_settings(ports={"gateway": free_port()})
    async with serving(app_factory("mcp")(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["gateway"]


async def test_gateway_aggregate_health_reports_each_service(migrated_settings: Settings) -> None:
    ports = {name: free_port() for name in SERVICE_NAMES}
    settings = make_settings(ports=ports)
    async with (
        serving(app_factory("gateway")(settings), port=ports["gateway"]) as gateway_url,
        serving(app_factory("discovery")(settings), port=ports["discovery"]),
        httpx.AsyncClient(base_url=gateway_url) as client,
    ):
        response = await client.get("/health/aggregate")
    assert response.status_code == 503
    services = response.json()["services"]
    assert services["discovery"]["status"] == "ready"
    assert services["sona"]["status"] == "unreachable"
    assert set(services) == set(SERVICE_NAMES) - {"gateway"}


@pytest.fixture
async def probe_url(settings: Settings) -> object:
    app = create_service_app("discovery", settings, routers=[probe_router])
    async with serving(app) as url:
        yield url


async def test_unknown_route_is_a_problem_json_404(probe_url: str) -> None:
    async with httpx.AsyncClient(base_url=probe_url) as client:
        response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["type"] == "about:blank"
    assert "/no/such/thing" in body["detail"]


async def test_wrong_method_is_a_problem_json_405(probe_url: str) -> None:
    async with httpx.AsyncClient(base_url=probe_url) as client:
        response = await client.delete("/health/live")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 405
    assert "DELETE" in response.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "bad_field"),
    [({"name": "", "times": 1}, "name"), ({"name": "ann", "times": 9}, "times"), ({"name": "ann"}, "times")],
)
async def test_invalid_body_is_a_problem_json_422(
    probe_url: str, payload: dict[str, object], bad_field: str
) -> None:
    async with httpx.AsyncClient(base_url=probe_url) as client:
        response = await client.post("/greet", json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert [e["loc"][-1] for e in body["errors"]] == [bad_field]
    # Inputs are not echoed back: they could hold a password.
    assert "input" not in body["errors"][0]


async def test_malformed_json_is_a_problem_json_422(probe_url: str) -> None:
    async with httpx.AsyncClient(base_url=probe_url) as client:
        response = await client.post(
            "/greet", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unhandled_error_is_a_problem_json_500_without_internals(probe_url: str) -> None:
    async with httpx.AsyncClient(base_url=probe_url) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "kaboom" not in response.text


async def test_request_id_is_echoed_minted_and_logged(
    probe_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from media_gateway.core.logging import JsonFormatter, RequestIdFilter

    async with httpx.AsyncClient(base_url=probe_url) as client:
        given = await client.get("/health/live", headers={"X-Request-ID": "req-abc.123"})
        minted = await client.get("/health/live")
        unsafe = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
        with caplog.at_level(logging.INFO, logger="tests.probe"):
            caplog.handler.addFilter(RequestIdFilter())
            await client.post(
                "/greet", json={"name": "ann", "times": 1}, headers={"X-Request-ID": "log-me-1"}
            )
    assert given.headers["x-request-id"] == "req-abc.123"
    assert len(minted.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
    record = next(r for r in caplog.records if r.name == "tests.probe")
    line = JsonFormatter().format(record)
    assert '"request_id":"log-me-1"' in line
    assert '"msg":"greeting ann"' in line


async def test_request_id_travels_from_the_gateway_to_the_services_it_calls(
    migrated_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from media_gateway.core.logging import RequestIdFilter

    ports = {name: free_port() for name in SERVICE_NAMES}
    settings = make_settings(ports=ports)
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.DEBUG, logger="media_gateway.access"):
        async with (
            serving(app_factory("gateway")(settings), port=ports["gateway"]) as gateway_url,
            serving(app_factory("sona")(settings), port=ports["sona"]),
            httpx.AsyncClient(base_url=gateway_url) as client,
        ):
            response = await client.get("/health/aggregate", headers={"X-Request-ID": "trace-4242"})
    assert response.headers["x-request-id"] == "trace-4242"
    seen_by_sona = [
        r
        for r in caplog.records
        if r.name == "media_gateway.access" and getattr(r, "service", None) == "sona"
    ]
    assert [(r.getMessage(), r.request_id) for r in seen_by_sona] == [  # type: ignore[attr-defined]
        ("GET /health/ready 200", "trace-4242")
    ]
