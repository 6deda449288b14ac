from __future__ import annotations

import signal
import socket
import subprocess

import asyncpg
import httpx
import psutil
import pytest

from media_gateway.core.settings import SERVICE_NAMES
from tests.e2e.stack import CLI, StackProcess
from tests.support import world_traversable_dir

pytestmark = pytest.mark.e2e


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_serves_every_service_on_embedded_servers_and_leaves_no_orphans(sig: int) -> None:
    stack = StackProcess.fresh(world_traversable_dir("mg-e2e-") / "data")
    stack.start()
    try:
        stack.wait_ready()
        children = stack.descendants()
        names = {p.name() for p in children}
        assert any("postgres" in n for n in names), names
        assert any("valkey" in n for n in names), names

        with httpx.Client(timeout=5.0) as client:
            aggregate = client.get(stack.url("gateway") + "/health/aggregate")
            assert aggregate.status_code == 200, aggregate.text
            assert {s["status"] for s in aggregate.json()["services"].values()} == {"ready"}
            for service in SERVICE_NAMES:
                assert client.get(stack.url(service) + "/metrics").status_code == 200
    finally:
        code = stack.stop(sig)
    assert code == 0, stack.log()
    assert _alive(children) == []
    assert "Media Gateway is up" in stack.log()
    assert "Traceback" not in stack.log()


async def test_second_up_on_the_same_data_dir_keeps_the_data() -> None:
    stack = StackProcess.fresh(world_traversable_dir("mg-e2e-") / "data")
    dsn = f"postgresql://postgres@127.0.0.1:{stack.embedded_ports['postgres']}/media_gateway"
    stack.start()
    try:
        stack.wait_ready()
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE public.survivor (note text)")
        await conn.execute("INSERT INTO public.survivor VALUES ('still here')")
        await conn.close()
    finally:
        assert stack.stop() == 0
    stack.start()
    try:
        stack.wait_ready()
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT note FROM public.survivor") == "still here"
        await conn.close()
    finally:
        assert stack.stop() == 0


def test_a_taken_port_is_reported_clearly() -> None:
    stack = StackProcess.fresh(world_traversable_dir("mg-e2e-") / "data")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", stack.ports["discovery"]))
        blocker.listen(1)
        result = subprocess.run([CLI, "up"], env=stack.env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"port {stack.ports['discovery']}" in result.stderr
    assert "MG_PORTS__DISCOVERY" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    # Nothing was started, so nothing was written.
    assert not (stack.data_dir / "postgres").exists()


def test_up_serves_a_user_through_the_gateway_with_sign_in_limited_per_client() -> None:
    stack = StackProcess.fresh(
        world_traversable_dir("mg-e2e-") / "data",
        extra_env={
            "MG_AUTH__RATE_LIMIT_LOGIN_PER_MIN": "2",
            "MG_AUTH__PASSWORD_HASH_TIME_COST": "1",
            "MG_AUTH__PASSWORD_HASH_MEMORY_KIB": "64",
            "MG_AUTH__PASSWORD_HASH_PARALLELISM": "1",
        },
    )
    stack.start()
    try:
        stack.wait_ready()
        account = {"email": "viewer@example.test", "password": "correct horse battery staple"}

        def client_at(address: str) -> httpx.Client:
            # Two machines, as the gateway sees them: loopback has a whole /8 of source addresses.
            transport = httpx.HTTPTransport(local_address=address)
            return httpx.Client(base_url=stack.url("gateway"), transport=transport, timeout=10.0)

        with client_at("127.0.0.2") as first, client_at("127.0.0.3") as second:
            assert first.post("/api/v1/auth/register", json=account).status_code == 202
            logins = [first.post("/api/v1/auth/login", json=account) for _ in range(3)]
            assert [r.status_code for r in logins] == [200, 200, 429], [r.text for r in logins]
            # Auth counts the client the gateway names, not the gateway: the other client is unaffected.
            other = second.post("/api/v1/auth/login", json=account)
            assert other.status_code == 200, other.text
            authz = {"Authorization": f"Bearer {other.json()['access_token']}"}
            assert second.get("/api/v1/users/me", headers=authz).json()["email"] == account["email"]
            watching = second.get("/api/v1/playback/continue-watching", headers=authz)
            assert watching.status_code == 200, watching.text
            assert second.get("/api/v1/sync/watchlist", headers=authz).status_code == 200
            assert second.get("/api/v1/sync/watchlist").status_code == 401
    finally:
        assert stack.stop() == 0, stack.log()
    assert "Traceback" not in stack.log()
