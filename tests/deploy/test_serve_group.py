"""`media-gateway serve discovery sona ingestion`: several services in one process (each container of
the compose file runs one, but a small host may group them), started here as a real subprocess against
the machine's PostgreSQL and Redis, and checked with the compose file's readiness probe."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from media_gateway.core.settings import Settings
from tests.deploy.compose_files import COMPOSE, load
from tests.e2e.stack import CLI, StackProcess
from tests.support import free_port

pytestmark = pytest.mark.e2e

GROUP = ("discovery", "sona", "ingestion")


def _probe(ports: list[int]) -> subprocess.CompletedProcess[str]:
    """The discovery healthcheck of docker-compose.yml (every service's probe), run against `ports`."""
    test = load(COMPOSE)["services"]["discovery"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    command = [sys.executable, *test[2:4], *map(str, ports)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the servers bind: connections the server closed linger in TIME_WAIT on its port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_three_services_run_in_one_process(scratch_settings: Settings, tmp_path: Path) -> None:
    env = {
        "MG_DATABASE_URL": scratch_settings.effective_database_url,
        "MG_REDIS_URL": scratch_settings.effective_redis_url,
        "MG_REDIS__PREFIX": scratch_settings.redis.prefix,
        # Training on an empty catalog proves nothing here and costs start-up time.
        "MG_SONA__TRAIN_ON_START": "false",
    }
    stack = StackProcess.fresh(tmp_path / "data", env)
    stack.start("serve", *GROUP)
    try:
        await asyncio.to_thread(stack.wait_ready, 120.0, GROUP)
        async with httpx.AsyncClient() as client:
            for service in GROUP:
                live = await client.get(stack.url(service) + "/health/live")
                assert live.json()["service"] == service
        # One process: no worker or helper processes.
        assert stack.descendants() == []
        # The compose readiness probe passes on these three ports...
        probe = await asyncio.to_thread(_probe, [stack.ports[s] for s in GROUP])
        assert probe.returncode == 0, probe.stderr
        # ...and fails when one of them does not answer.
        probe = await asyncio.to_thread(_probe, [stack.ports["discovery"], free_port()])
        assert probe.returncode != 0
    finally:
        code = await asyncio.to_thread(stack.stop, signal.SIGTERM, 30.0)
    assert code == 0, stack.log()
    assert all(_port_is_free(stack.ports[s]) for s in GROUP)
    assert "discovery, sona, ingestion listening" in stack.log()
    assert "Traceback" not in stack.log()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("discovery", "sona", "ingestion", "--port", "9000"), "--port applies to one service"),
        (("gateway", "auth", "--workers", "2"), "several services share one process"),
    ],
)
def test_serve_refuses_options_meant_for_one_service(args: tuple[str, ...], expected: str) -> None:
    result = subprocess.run([CLI, "serve", *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert expected in result.stderr
