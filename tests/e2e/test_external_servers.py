"""The same commands against servers we did not start: the machine's PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid

import asyncpg
import httpx
import psutil
import pytest

from media_gateway.core.migrations import SCHEMA_OWNERS
from tests.conftest import ADMIN_DSN, make_settings
from tests.e2e.stack import CLI, StackProcess
from tests.support import world_traversable_dir

pytestmark = pytest.mark.e2e


@pytest.fixture
async def scratch_database() -> object:
    """A database of its own, so these tests see migrations run by the command under test."""
    name = f"mg_e2e_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN_DSN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    yield name
    conn = await asyncpg.connect(ADMIN_DSN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def _external_env(database: str) -> dict[str, str]:
    settings = make_settings()
    base = settings.effective_database_url.rsplit("/", 1)[0]
    return {
        "MG_DATABASE_URL": f"{base}/{database}",
        "MG_REDIS_URL": settings.effective_redis_url,
        "MG_REDIS__PREFIX": settings.redis.prefix,
    }


async def _schemas(database: str) -> set[str]:
    conn = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}")
    try:
        rows = await conn.fetch(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'"
        )
        return {r["table_schema"] for r in rows}
    finally:
        await conn.close()


async def test_migrate_applies_every_schema_to_a_configured_database(scratch_database: str) -> None:
    stack = StackProcess.fresh(world_traversable_dir("mg-e2e-") / "data", _external_env(scratch_database))
    result = await asyncio.to_thread(
        subprocess.run, [CLI, "migrate"], env=stack.env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert await _schemas(scratch_database) == set(SCHEMA_OWNERS)
    # The configured servers were used: nothing embedded was started in the data dir.
    assert not (stack.data_dir / "postgres").exists()


async def test_up_uses_configured_servers_instead_of_starting_its_own(scratch_database: str) -> None:
    stack = StackProcess.fresh(world_traversable_dir("mg-e2e-") / "data", _external_env(scratch_database))
    stack.start()
    try:
        stack.wait_ready()
        assert stack.descendants() == []
        assert await _schemas(scratch_database) == set(SCHEMA_OWNERS)
    finally:
        assert stack.stop() == 0, stack.log()
    assert not (stack.data_dir / "postgres").exists()


async def test_serve_runs_one_service_on_the_port_given(scratch_database: str) -> None:
    stack = StackProcess.fresh(world_traversable_dir("mg-e2e-") / "data", _external_env(scratch_database))
    port = stack.ports["playback"]
    stack.ports = {"playback": port}
    stack.start("serve", "playback", "--port", str(port))
    try:
        stack.wait_ready(services=("playback",))
        async with httpx.AsyncClient() as client:
            live = await client.get(f"http://127.0.0.1:{port}/health/live")
        assert live.json()["service"] == "playback"
    finally:
        assert stack.stop() == 0, stack.log()


def _workers(stack: StackProcess) -> set[int]:
    """The live worker processes (a killed one is a zombie until the supervisor reaps it)."""
    found = set()
    for process in stack.descendants():
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE and "multiprocessing.spawn" in " ".join(
                process.cmdline()
            ):
                found.add(process.pid)
    return found


async def test_serve_with_workers_shares_the_port_and_replaces_a_killed_worker(scratch_database: str) -> None:
    stack = StackProcess.fresh(world_traversable_dir("mg-e2e-") / "data", _external_env(scratch_database))
    port = stack.ports["playback"]
    stack.ports = {"playback": port}
    stack.start("serve", "playback", "--port", str(port), "--workers", "2")
    try:
        stack.wait_ready(services=("playback",))
        workers = _workers(stack)
        assert len(workers) == 2, stack.log()
        victim = workers.pop()
        os.kill(victim, signal.SIGKILL)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(30):
                # The surviving worker keeps answering while the supervisor starts a replacement.
                while len(now := _workers(stack)) < 2 or victim in now:
                    assert (await client.get("/health/live")).status_code == 200
                    await asyncio.sleep(0.1)
            assert workers < now
            assert (await client.get("/health/live")).json()["service"] == "playback"
        survivors = [psutil.Process(pid) for pid in now]
    finally:
        assert stack.stop() == 0, stack.log()
    # The supervisor stopped its workers before it exited.
    _, alive = psutil.wait_procs(survivors, timeout=5)
    assert alive == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("ingestion", "--workers", "2"), "ingestion runs as one process"),
        (("sync", "--workers", "0"), "--workers: must be a whole number from 1 to 64"),
    ],
)
def test_serve_refuses_workers_it_cannot_run(args: tuple[str, ...], expected: str) -> None:
    result = subprocess.run([CLI, "serve", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert expected in result.stderr
