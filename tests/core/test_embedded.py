"""The embedded PostgreSQL and Valkey: real binaries on free ports, in a fresh data dir per test."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis

import media_gateway
from media_gateway.core.embedded import (
    EmbeddedPostgres,
    EmbeddedServerError,
    EmbeddedStack,
    EmbeddedValkey,
)
from media_gateway.core.settings import Settings
from tests.conftest import make_settings
from tests.support import free_port, world_traversable_dir

IS_ROOT = os.geteuid() == 0
# The child process in the parent-death test must import this checkout, installed or not.
SRC_DIR = str(Path(media_gateway.__file__).resolve().parents[1])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = world_traversable_dir("mg-embedded-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
async def cluster_template() -> AsyncIterator[Path]:
    """One initdb for the session: tests that are not about the cold start copy this cluster."""
    root = world_traversable_dir("mg-embedded-template-")
    pg = EmbeddedPostgres(embedded_settings(root))
    await pg.start()
    await pg.stop()
    yield pg.base_dir
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def warm_data_dir(data_dir: Path, cluster_template: Path) -> Path:
    # The copy is owned by the test's uid: as root, start() must hand it to the postgres user.
    shutil.copytree(cluster_template, data_dir / "postgres", symlinks=True)
    return data_dir


def embedded_settings(data_dir: Path, **embedded: object) -> Settings:
    values: dict[str, object] = {
        "postgres_port": free_port(),
        "redis_port": free_port(),
        "startup_timeout_sec": 20.0,
    }
    values.update(embedded)
    return make_settings(data_dir=data_dir, database_url=None, redis_url=None, embedded=values)


def running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def processes_in(directory: Path) -> list[int]:
    """Pids whose working directory is `directory` (postgres and valkey chdir into their data)."""
    target = str(directory.resolve())
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.cwd() == target and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


async def wait_gone(pids: list[int], within_sec: float = 15.0) -> list[int]:
    """The pids still running after up to `within_sec`."""
    for _ in range(int(within_sec / 0.05)):
        if not any(running(pid) for pid in pids):
            break
        await asyncio.sleep(0.05)
    return [pid for pid in pids if running(pid)]


async def test_cold_and_warm_start_keep_data_and_leave_no_process(data_dir: Path) -> None:
    settings = embedded_settings(data_dir)
    dsn = settings.effective_database_url.replace("postgresql+asyncpg://", "postgresql://")

    began = time.monotonic()
    async with EmbeddedStack(settings) as stack:
        cold = time.monotonic() - began
        assert stack.postgres is not None
        assert stack.postgres.created
        pids = stack.pids
        assert set(pids) == {"postgres", "valkey"}
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE kept (id int PRIMARY KEY, title text)")
            await conn.execute("INSERT INTO kept VALUES (1, 'Amélie')")
        finally:
            await conn.close()
        client = aioredis.from_url(settings.effective_redis_url)
        try:
            await client.set("kept", "yes")
        finally:
            await client.aclose()
        family = [pids["valkey"], pids["postgres"]]
        family += [p.pid for p in psutil.Process(pids["postgres"]).children(recursive=True)]
        assert len(family) > 3  # the postmaster's checkpointer, walwriter, ... are there too

    assert stack.pids == {}
    assert [pid for pid in family if running(pid)] == []
    assert processes_in(data_dir / "postgres" / "data") == []

    began = time.monotonic()
    async with EmbeddedStack(settings) as stack:
        warm = time.monotonic() - began
        assert stack.postgres is not None
        assert not stack.postgres.created
        assert set(stack.pids.values()).isdisjoint(family)
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT title FROM kept WHERE id = 1") == "Amélie"
        finally:
            await conn.close()
        client = aioredis.from_url(settings.effective_redis_url)
        try:
            assert await client.get("kept") == b"yes"
        finally:
            await client.aclose()
    print(f"embedded stack: cold start {cold:.2f} s, warm start {warm:.2f} s")


async def test_stack_starts_only_what_the_settings_need(data_dir: Path) -> None:
    external = make_settings(data_dir=data_dir)
    stack = EmbeddedStack(external)
    assert stack.servers == []
    await stack.start()
    assert stack.pids == {}
    await stack.stop()

    only_redis = make_settings(
        data_dir=data_dir, redis_url=None, embedded={"redis_port": free_port(), "postgres_port": free_port()}
    )
    async with EmbeddedStack(only_redis) as stack:
        assert stack.postgres is None
        assert set(stack.pids) == {"valkey"}
    assert not (data_dir / "postgres").exists()


@pytest.mark.parametrize(
    ("server", "setting"),
    [(EmbeddedPostgres, "MG_EMBEDDED__POSTGRES_PORT"), (EmbeddedValkey, "MG_EMBEDDED__REDIS_PORT")],
)
async def test_port_in_use_is_a_clear_error(
    data_dir: Path, server: type[EmbeddedPostgres | EmbeddedValkey], setting: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = embedded_settings(data_dir, postgres_port=port, redis_port=port)
        instance = server(settings)
        with pytest.raises(EmbeddedServerError, match=rf"port {port}\b.*already in use.*{setting}"):
            await instance.start()
        assert instance.pid is None


async def test_stack_stops_the_server_that_started_when_the_other_fails(
    warm_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="media_gateway.embedded")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        settings = embedded_settings(warm_data_dir, redis_port=holder.getsockname()[1])
        stack = EmbeddedStack(settings)
        with pytest.raises(EmbeddedServerError, match="MG_EMBEDDED__REDIS_PORT"):
            await stack.start()
    assert stack.pids == {}
    # PostgreSQL did start, and was stopped again.
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("embedded PostgreSQL 18") and " ready " in m for m in messages), messages
    assert any(m.startswith("embedded PostgreSQL stopped") for m in messages), messages
    assert processes_in(warm_data_dir / "postgres" / "data") == []


async def launch_orphan_postmaster(settings: Settings) -> int:
    """A postmaster that is not our child, as a killed earlier run leaves it."""
    pg = EmbeddedPostgres(settings)
    await pg.start()  # a warm start; as root it also hands the copied cluster to the postgres user
    await pg.stop()
    # `sh` backgrounds the postmaster and exits, so the postmaster is reparented away from us.
    launcher = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        '"$@" </dev/null >/dev/null 2>&1 &',
        "sh",
        *pg._server_argv(),
        cwd=pg.base_dir,
        user=settings.embedded.postgres_user if IS_ROOT else None,
    )
    assert await launcher.wait() == 0
    pidfile = pg.data_dir / "postmaster.pid"
    for _ in range(400):
        # The last line of postmaster.pid turns to "ready" once it accepts connections.
        if pidfile.exists() and "ready" in pidfile.read_text():
            pid = int(pidfile.read_text().split()[0])
            assert pid not in {c.pid for c in psutil.Process().children(recursive=True)}
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError("the orphan postmaster did not start")


async def test_live_postmaster_left_by_an_earlier_run_is_stopped(warm_data_dir: Path) -> None:
    settings = embedded_settings(warm_data_dir)
    orphan_pid = await launch_orphan_postmaster(settings)

    second = EmbeddedPostgres(settings)
    await second.start()
    try:
        assert not running(orphan_pid)
        assert second.pid is not None
        assert second.pid != orphan_pid
        conn = await asyncpg.connect(second.dsn)
        await conn.close()
    finally:
        await second.stop()


async def test_postmaster_of_another_live_run_is_left_alone(warm_data_dir: Path) -> None:
    settings = embedded_settings(warm_data_dir)
    orphan_pid = await launch_orphan_postmaster(settings)
    other_run = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        owner = psutil.Process(other_run.pid)
        (warm_data_dir / "postgres" / "owner").write_text(f"{owner.pid} {owner.create_time()}\n")
        with pytest.raises(EmbeddedServerError, match=rf"another running media-gateway \(pid {owner.pid}\)"):
            await EmbeddedPostgres(settings).start()
        assert running(orphan_pid)
    finally:
        other_run.kill()
        await other_run.wait()
        os.kill(orphan_pid, signal.SIGINT)
        assert await wait_gone([orphan_pid]) == []


async def test_abandoned_server_of_this_process_is_replaced(warm_data_dir: Path) -> None:
    settings = embedded_settings(warm_data_dir)
    abandoned = EmbeddedPostgres(settings)
    await abandoned.start()
    old_pid = abandoned.pid
    assert old_pid is not None

    fresh = EmbeddedPostgres(settings)
    await fresh.start()
    try:
        assert fresh.pid != old_pid
        assert await wait_gone([old_pid], within_sec=5) == []
    finally:
        await fresh.stop()
        await abandoned.stop()  # already gone: a no-op


async def test_stale_pid_files_naming_other_processes_are_cleared(warm_data_dir: Path) -> None:
    settings = embedded_settings(warm_data_dir)
    stack = EmbeddedStack(settings)
    await stack.start()
    await stack.stop()
    assert stack.postgres is not None
    assert stack.valkey is not None

    # A killed run left pid files; since then the pids were reused by unrelated processes.
    bystander = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        postmaster_pid = stack.postgres.data_dir / "postmaster.pid"
        postmaster_pid.write_text(f"{bystander.pid}\n{stack.postgres.data_dir}\n1700000000\n")
        stack.valkey.pidfile.write_text(f"{bystander.pid}\n")
        async with EmbeddedStack(settings) as again:
            assert set(again.pids) == {"postgres", "valkey"}
        assert bystander.returncode is None, "an unrelated process was signalled"
    finally:
        bystander.kill()
        await bystander.wait()


async def test_killed_postmaster_recovers_committed_rows(warm_data_dir: Path) -> None:
    settings = embedded_settings(warm_data_dir)
    first = EmbeddedPostgres(settings)
    await first.start()
    conn = await asyncpg.connect(first.dsn)
    await conn.execute("CREATE TABLE t (v int)")
    await conn.execute("INSERT INTO t VALUES (42)")
    await conn.close()
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)

    second = EmbeddedPostgres(settings)
    await second.start()
    try:
        conn = await asyncpg.connect(second.dsn)
        assert await conn.fetchval("SELECT v FROM t") == 42
        await conn.close()
    finally:
        await second.stop()
        await first.stop()


async def test_servers_die_with_a_killed_parent(warm_data_dir: Path) -> None:
    settings = embedded_settings(warm_data_dir)
    script = textwrap.dedent(
        f"""
        import asyncio, json, sys
        from pathlib import Path
        from media_gateway.core.embedded import EmbeddedStack
        from media_gateway.core.settings import Settings

        async def main():
            settings = Settings(
                warm_data_dir=Path({str(warm_data_dir)!r}), database_url=None, redis_url=None,
                embedded={settings.embedded.model_dump()!r},
            )
            stack = EmbeddedStack(settings)
            await stack.start()
            print(json.dumps(stack.pids), flush=True)
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC_DIR, os.environ.get("PYTHONPATH", "")])}
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(parent.stdout.readline(), 30)
        pids: dict[str, int] = json.loads(line)
        assert set(pids) == {"postgres", "valkey"}
        assert all(running(pid) for pid in pids.values())
    finally:
        parent.kill()
        await parent.wait()
    assert await wait_gone(list(pids.values())) == []

    # And the next run starts cleanly on the same data.
    async with EmbeddedStack(settings) as stack:
        assert set(stack.pids) == {"postgres", "valkey"}


async def test_other_major_version_is_refused(data_dir: Path) -> None:
    cluster = data_dir / "postgres" / "data"
    cluster.mkdir(parents=True)
    (cluster / "PG_VERSION").write_text("17\n")
    with pytest.raises(EmbeddedServerError, match=r"PostgreSQL 17.*pg_upgrade"):
        await EmbeddedPostgres(embedded_settings(data_dir)).start()


@pytest.mark.skipif(not IS_ROOT, reason="only root hands PostgreSQL to another user")
async def test_data_dir_the_postgres_user_cannot_enter_is_a_clear_error() -> None:
    private = Path(tempfile.mkdtemp(prefix="mg-private-"))  # 0700, owned by root
    try:
        with pytest.raises(EmbeddedServerError) as caught:
            await EmbeddedPostgres(embedded_settings(private / "data")).start()
        message = str(caught.value)
        assert str(private) in message
        assert "MG_DATA_DIR" in message
        assert "nobody" in message
    finally:
        shutil.rmtree(private, ignore_errors=True)
