"""Serving the apps: all of them in one process (`up`), or the ones named (`serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import gc
import importlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import httpx
import uvicorn
import uvloop
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from media_gateway.core.admin import ADMIN_TOKEN_FILE, ensure_admin_token
from media_gateway.core.embedded import EmbeddedServerError, EmbeddedStack
from media_gateway.core.logging import configure_logging
from media_gateway.core.migrations import run_migrations
from media_gateway.core.settings import SERVICE_NAMES, ServiceName, Settings
from media_gateway.ingestion import repository as ingestion_repository

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


def _uvicorn_config(app: Callable[..., Any], settings: Settings, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # The peer address must stay the socket's: forwarded headers are honoured only from the
        # configured trusted proxies (`auth.trusted_proxies`, core.ratelimit.client_ip), and uvicorn
        # would otherwise believe any X-Forwarded-For sent from 127.0.0.1.
        proxy_headers=False,
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
    lines.append(f"Admin API token: {Path(settings.data_dir) / ADMIN_TOKEN_FILE} (or MG_ADMIN_TOKEN)")
    if "ingestion" in services and settings.ingestion.demo_on_start:
        lines.append(
            "Demo catalog (TMDB 5000 titles, generated availability) loads in the background: "
            f"GET {settings.service_url('ingestion')}/api/v1/admin/jobs"
        )
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


class ServiceFailedError(RuntimeError):
    pass


def _bind_all(settings: Settings, ports: dict[ServiceName, int]) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for service, port in ports.items():
            sockets.append(bind_socket(settings.host, port, service))
    except PortInUseError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def _serve_apps(
    settings: Settings,
    ports: dict[ServiceName, int],
    sockets: list[socket.socket],
    stop: asyncio.Event,
    on_started: Callable[[], None],
) -> None:
    """Serve the apps on their bound sockets until `stop` is set or one of them fails."""
    services = list(ports)
    servers = [
        _SharedSignalServer(_uvicorn_config(app_factory(s)(settings), settings, ports[s])) for s in services
    ]
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]), name=f"serve-{service}")
        for server, sock, service in zip(servers, sockets, services, strict=True)
    ]
    # uvicorn exposes `started` only as a flag, so it is polled.
    while not all(s.started for s in servers) and not any(t.done() for t in tasks):  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    if all(s.started for s in servers):
        # What start-up loaded (indexes' metadata, models, schemas) lives as long as the process;
        # left to the collector, every full collection walks all of it: ~200 ms pauses measured
        # mid-search on the demo catalog. Frozen objects are still freed by reference counting.
        gc.freeze()
        on_started()
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    # A server that ended before we asked it to failed to start (uvicorn logs why) or crashed.
    failed = [service for service, task in zip(services, tasks, strict=True) if task.done()]
    for server in servers:
        server.should_exit = True
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for service, result in zip(services, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("service %s stopped with %r", service, result)
    if failed and not stop.is_set():
        raise ServiceFailedError(f"{', '.join(failed)} stopped unexpectedly; see the log above")


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event, force: Callable[[], None]) -> Iterator[None]:
    """First SIGINT/SIGTERM: graceful stop. A second one: stop without waiting for open requests."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            force()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _load_demo_catalog(settings: Settings) -> None:
    """Through the ingestion API, like any operator: a no-op once the demo feeds are consumed."""
    url = settings.service_url("ingestion") + "/api/v1/admin/ingest"
    try:
        async with httpx.AsyncClient(timeout=30.0) as client:
            response = await client.post(
                url,
                json={"source": "demo"},
                headers={"Authorization": f"Bearer {settings.admin_token}"},
            )
    except httpx.HTTPError as exc:
        logger.error("could not start the demo catalog ingest: %r", exc)
        return
    if response.status_code == 202:
        logger.info("demo catalog ingest started", extra={"job_id": response.json()["id"]})
    elif response.status_code != 409:
        logger.error("demo catalog ingest refused: %s %s", response.status_code, response.text[:300])


async def run_stack(settings: Settings, services: Sequence[ServiceName] = SERVICE_NAMES) -> None:
    started = time.perf_counter()
    ports = {s: settings.ports.of(s) for s in services}
    sockets = _bind_all(settings, ports)
    stop = asyncio.Event()
    settings = ensure_admin_token(settings)
    background: set[asyncio.Task[None]] = set()

    def banner() -> None:
        print(_banner(settings, services, time.perf_counter() - started), flush=True)
        logger.info("all services started", extra={"services": list(services)})
        if "ingestion" in services and settings.ingestion.demo_on_start:
            task = asyncio.create_task(_load_demo_catalog(settings))
            background.add(task)
            task.add_done_callback(background.discard)

    try:
        with _stop_on_signals(stop, force=lambda: os._exit(130)):
            async with EmbeddedStack(settings):
                await run_migrations(settings)
                if not stop.is_set():
                    await _serve_apps(settings, ports, sockets, stop, banner)
    finally:
        for sock in sockets:
            sock.close()
    logger.info("stopped cleanly")


async def serve_services(settings: Settings, ports: dict[ServiceName, int]) -> None:
    """Serve these services in this process, nothing else: no embedded servers, no migrations."""
    sockets = _bind_all(settings, ports)
    stop = asyncio.Event()
    names = ", ".join(ports)
    listening = ", ".join(f"{service} :{port}" for service, port in ports.items())
    try:
        with _stop_on_signals(stop, force=lambda: os._exit(130)):
            await _serve_apps(
                settings,
                ports,
                sockets,
                stop,
                lambda: logger.info("%s listening on %s (%s)", names, settings.host, listening),
            )
    finally:
        for sock in sockets:
            sock.close()


def _run_cli(coro: Coroutine[Any, Any, None]) -> int:
    """Run a command; failures a user can act on are one clear line on stderr, not a traceback."""
    try:
        uvloop.run(coro)
    except PortInUseError as exc:
        print(f"media-gateway: {exc}", file=sys.stderr)
        return 2
    except (EmbeddedServerError, ServiceFailedError) as exc:
        print(f"media-gateway: {exc}", file=sys.stderr)
        return 1
    return 0


# In one process the gateway reaches auth over loopback: auth believes the client address it forwards
# from there, so sign-in limits stay per client (a local process could claim any address, as it
# could by calling auth directly; a remote one cannot).
LOOPBACK_PROXIES: Final = ["127.0.0.1/32", "::1/128"]


def up(settings: Settings) -> int:
    configure_logging(settings.log_level, settings.log_json)
    if not settings.auth.trusted_proxies:
        settings = settings.model_copy(
            update={"auth": settings.auth.model_copy(update={"trusted_proxies": LOOPBACK_PROXIES})}
        )
    return _run_cli(run_stack(settings))


# Ingestion serializes its catalog writes inside its process (entity resolution reads what the
# previous batch wrote), so two of its processes could resolve one new title twice. Discovery and
# SONA each keep a private replica of the catalog's vectors and scale out (README, "Scaling out").
SINGLE_PROCESS_SERVICES: frozenset[ServiceName] = frozenset({"ingestion"})


def serve(settings: Settings, services: Sequence[ServiceName], port: int | None = None) -> int:
    """`serve NAME...`: one service (optionally pre-forked), or several sharing one process."""
    configure_logging(settings.log_level, settings.log_json)
    services = list(dict.fromkeys(services))
    if not services:
        return _refuse("name at least one service")
    if len(services) > 1:
        if port is not None:
            return _refuse("--port applies to one service; several take their MG_PORTS__<NAME> ports")
        if settings.workers != 1:
            return _refuse(
                "several services share one process, which cannot be pre-forked; "
                "run `serve NAME --workers N` per service instead"
            )
        return _run_cli(serve_services(settings, {s: settings.ports.of(s) for s in services}))
    (service,) = services
    port = port or settings.ports.of(service)
    if settings.workers == 1:
        return _run_cli(serve_services(settings, {service: port}))
    if service in SINGLE_PROCESS_SERVICES:
        return _refuse(
            f"{service} runs as one process: it serializes its catalog writes inside that process "
            "(README, Scaling out)."
        )
    return _serve_workers(settings, service, port)


def _refuse(reason: str) -> int:
    """A command line that cannot be served: said on stderr, exit status 2 like a usage error."""
    print(f"media-gateway: {reason}", file=sys.stderr)
    return 2


def worker_app(service: ServiceName, settings: Settings) -> FastAPI:
    """What each pre-forked worker serves; it starts in a fresh interpreter, so logging is set up
    again there."""
    configure_logging(settings.log_level, settings.log_json)
    return app_factory(service)(settings)


def _serve_workers(settings: Settings, service: ServiceName, port: int) -> int:
    """Pre-fork: the port is bound here once and `settings.workers` processes accept on it.

    uvicorn's supervisor restarts a worker that dies or stops answering its health pings, and stops
    everything if a worker cannot start at all (a bad database URL fails the same way every time).
    """
    try:
        sock = bind_socket(settings.host, port, service)
    except PortInUseError as exc:
        print(f"media-gateway: {exc}", file=sys.stderr)
        return 2
    config = _uvicorn_config(functools.partial(worker_app, service, settings), settings, port)
    config.factory = True
    config.workers = settings.workers
    supervisor = Multiprocess(config, sockets=[sock])
    logger.info("%s listening on %s:%d with %d workers", service, settings.host, port, settings.workers)
    try:
        supervisor.run()
    finally:
        sock.close()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        print(f"media-gateway: a {service} worker could not start; see the log above", file=sys.stderr)
        return 1
    return 0


def ingest(
    settings: Settings, what: Literal["demo", "file", "aggregator", "enrich"], path: Path | None = None
) -> int:
    """Run one job in this process with the ingestion app's own runtime, print its counts, exit."""
    configure_logging(settings.log_level, settings.log_json)

    async def _ingest() -> None:
        async with EmbeddedStack(settings):
            await run_migrations(settings)
            app = app_factory("ingestion")(settings)
            async with app.router.lifespan_context(app):
                jobs = app.state.ctx.extras["jobs"]
                if what == "enrich":
                    job = await jobs.start_enrichment()
                else:
                    job = await jobs.start_ingest(what, str(path) if path else None, confined=False)
                await jobs.wait()
                async with app.state.ctx.engine.connect() as conn:
                    finished = await ingestion_repository.get_job(conn, job["id"])
            assert finished is not None
            print(json.dumps({k: finished[k] for k in ("status", "counts", "error")}, indent=2, default=str))
            if finished["status"] != "succeeded":
                raise ServiceFailedError(f"the {what} job failed: {finished['error']}")

    return _run_cli(_ingest())


def migrate(settings: Settings, schemas: list[str] | None = None) -> int:
    configure_logging(settings.log_level, settings.log_json)

    async def _migrate() -> None:
        async with EmbeddedStack(settings):
            await run_migrations(settings, schemas)

    return _run_cli(_migrate())
