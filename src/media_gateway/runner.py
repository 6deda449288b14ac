"""Serving the apps: all of them in one process (`up`) or one of them (`serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import uvicorn
from fastapi import FastAPI

from media_gateway.core.embedded import EmbeddedStack
from media_gateway.core.logging import configure_logging
from media_gateway.core.migrations import run_migrations
from media_gateway.core.settings import SERVICE_NAMES, ServiceName, Settings

logger = logging.getLogger("media_gateway.runner")


class PortInUseError(RuntimeError):
    pass


def app_factory(service: ServiceName) -> Callable[[Settings], FastAPI]:
    module = importlib.import_module(f"media_gateway.{service}.app")
    factory: Callable[[Settings], FastAPI] = module.create_app
    return factory


def bind_socket(host: str, port: int, service: str) -> socket.socket:
    """Bind before serving, so a taken port is reported clearly and before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} ({service}) is already in use. Stop whatever holds it, "
                f"or choose another port with MG_PORTS__{service.upper()}=<port>."
            ) from None
        raise PortInUseError(f"cannot listen on {host}:{port} ({service}): {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _SharedSignalServer(uvicorn.Server):
    """Several servers share one loop; the runner owns the signals and tells each to exit."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn_config(app: FastAPI, settings: Settings, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def _banner(settings: Settings, services: Sequence[ServiceName], started_in: float) -> str:
    lines = [f"Media Gateway is up in {started_in:.1f}s  (data: {settings.data_dir})"]
    pg = "embedded" if settings.uses_embedded_postgres else "external"
    rd = "embedded" if settings.uses_embedded_redis else "external"
    lines.append(f"  PostgreSQL ({pg}): {_redact(settings.effective_database_url)}")
    lines.append(f"  Redis ({rd}):      {_redact(settings.effective_redis_url)}")
    for service in services:
        lines.append(f"  {service:<10} {settings.service_url(service)}")
    if "gateway" in services:
        lines.append(f"Public API: {settings.service_url('gateway')}  (health: /health/aggregate)")
    if "mcp" in services:
        lines.append(f"MCP (streamable HTTP): {settings.service_url('mcp')}/mcp")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def _redact(url: str) -> str:
    # Keep credentials out of the banner, which ends up in terminal scrollback and logs.
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"


async def run_stack(settings: Settings, services: Sequence[ServiceName] = SERVICE_NAMES) -> None:
    started = time.perf_counter()
    sockets = []
    try:
        for service in services:
            sockets.append(bind_socket(settings.host, settings.ports.of(service), service))
    except PortInUseError:
        for sock in sockets:
            sock.close()
        raise

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    try:
        async with EmbeddedStack(settings):
            await run_migrations(settings)
            servers = [
                _SharedSignalServer(_uvicorn_config(app_factory(s)(settings), settings, settings.ports.of(s)))
                for s in services
            ]
            tasks = [
                asyncio.create_task(server.serve(sockets=[sock]), name=f"serve-{service}")
                for server, sock, service in zip(servers, sockets, services, strict=True)
            ]
            # uvicorn exposes `started` only as a flag, so it is polled.
            while not all(s.started for s in servers) and not any(t.done() for t in tasks):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            if all(s.started for s in servers):
                print(_banner(settings, services, time.perf_counter() - started), flush=True)
                logger.info("all services started", extra={"services": list(services)})
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for server in servers:
                server.should_exit = True
            results = await asyncio.gather(*tasks, return_exceptions=True)
            failed = [
                (service, r)
                for service, r in zip(services, results, strict=True)
                if isinstance(r, BaseException)
            ]
            for service, err in failed:
                logger.error("service %s stopped with %r", service, err)
            if failed and not stop.is_set():
                raise RuntimeError(f"service {failed[0][0]} failed to start or crashed")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for sock in sockets:
            sock.close()
    logger.info("stopped cleanly")


def up(settings: Settings) -> int:
    configure_logging(settings.log_level, settings.log_json)
    try:
        _run(run_stack(settings))
    except PortInUseError as exc:
        print(f"media-gateway: {exc}", file=sys.stderr)
        return 2
    return 0


def serve(settings: Settings, service: ServiceName, port: int | None = None) -> int:
    configure_logging(settings.log_level, settings.log_json)
    port = port or settings.ports.of(service)
    try:
        sock = bind_socket(settings.host, port, service)
    except PortInUseError as exc:
        print(f"media-gateway: {exc}", file=sys.stderr)
        return 2
    server = uvicorn.Server(_uvicorn_config(app_factory(service)(settings), settings, port))
    _run(server.serve(sockets=[sock]))
    return 0


def migrate(settings: Settings, schemas: list[str] | None = None) -> int:
    configure_logging(settings.log_level, settings.log_json)

    async def _migrate() -> None:
        async with EmbeddedStack(settings):
            await run_migrations(settings, schemas)

    _run(_migrate())
    return 0


def _run(coro: object) -> None:
    import uvloop

    uvloop.run(coro)  # type: ignore[arg-type]
