"""`UpstreamProxy`: one public request forwarded to the service the routing table names, through the
resilient client (timeouts, retries of idempotent calls, a breaker per upstream, the request id)."""

from __future__ import annotations

import math
from typing import Final

import httpx
from fastapi import Request
from prometheus_client import CollectorRegistry, Counter
from starlette.responses import Response

from media_gateway.core.app import ServiceContext
from media_gateway.core.breaker import CircuitOpenError
from media_gateway.core.errors import ProblemError
from media_gateway.core.http import ServiceClient
from media_gateway.core.metrics import metric_set
from media_gateway.core.request_id import REQUEST_ID_HEADER
from media_gateway.core.settings import SERVICE_NAMES, ServiceName
from media_gateway.gateway.limits import forwarded_client_ip
from media_gateway.gateway.routing import Route

# RFC 9110 §7.6.1 hop-by-hop fields, plus what the gateway sets itself. Host is the upstream's;
# lengths and encodings are recomputed because httpx hands back a decoded body.
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED: Final = _HOP_BY_HOP | {
    "host",
    "content-length",
    "accept-encoding",
    "forwarded",
    REQUEST_ID_HEADER.lower(),
}
_NOT_RETURNED: Final = _HOP_BY_HOP | {"content-length", "content-encoding", "x-request-id", "date", "server"}


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.responses = Counter(
            "mg_gateway_upstream_responses_total",
            "Responses the gateway returned for proxied requests, by upstream and status class",
            ["upstream", "status"],
            registry=registry,
        )

    @classmethod
    def of(cls, ctx: ServiceContext) -> ProxyMetrics:
        return metric_set(ctx.registry, cls, cls)


class UpstreamProxy:
    """Holds one client (one connection pool, one breaker) per upstream for the gateway's lifetime."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.clients: dict[ServiceName, ServiceClient] = {
            name: ctx.http.client(name, ctx.settings.service_url(name))
            for name in SERVICE_NAMES
            if name != "gateway"
        }
        self._metrics = ProxyMetrics.of(ctx)

    async def forward(self, request: Request, route: Route) -> Response:
        body = await self._body(request, route)
        headers = self._upstream_headers(request)
        target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        if request.url.query:
            target = f"{target}?{request.url.query}"
        client = self.clients[route.upstream]
        try:
            upstream = await client.request(request.method, target, content=body, headers=headers)
        except CircuitOpenError as exc:
            self._count(route, 503)
            raise ProblemError(
                503,
                f"The {route.upstream} service is failing; the gateway stopped calling it for a while.",
                headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
            ) from exc
        except httpx.TimeoutException as exc:
            self._count(route, 504)
            raise ProblemError(504, f"The {route.upstream} service did not answer in time.") from exc
        except httpx.TransportError as exc:
            self._count(route, 502)
            raise ProblemError(502, f"The {route.upstream} service cannot be reached.") from exc
        self._count(route, upstream.status_code)
        response = Response(content=upstream.content, status_code=upstream.status_code)
        for name, value in upstream.headers.multi_items():
            if name.lower() not in _NOT_RETURNED:
                response.headers.append(name, value)
        return response

    async def _body(self, request: Request, route: Route) -> bytes:
        gateway = self._ctx.settings.gateway
        cap = gateway.webhook_max_body_bytes if route.large_body else gateway.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise ProblemError(413, f"The request body is larger than {cap} bytes.")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise ProblemError(413, f"The request body is larger than {cap} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)

    def _upstream_headers(self, request: Request) -> list[tuple[str, str]]:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED]
        headers = [(k, v) for k, v in headers if not k.lower().startswith("x-forwarded-")]
        # The upstreams trust the gateway's view of the caller (their `trusted_proxies`), so the chain
        # they see ends with the address the gateway itself believes, never with what a client wrote.
        client = forwarded_client_ip(request, self._ctx)
        headers.append(("x-forwarded-for", client))
        headers.append(("forwarded", f'for="[{client}]"' if ":" in client else f"for={client}"))
        headers.append(("x-forwarded-proto", request.url.scheme))
        if "host" in request.headers:
            headers.append(("x-forwarded-host", request.headers["host"]))
        return headers

    def _count(self, route: Route, status: int) -> None:
        self._metrics.responses.labels(route.upstream, f"{status // 100}xx").inc()
