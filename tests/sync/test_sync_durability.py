"""`kill -9` of the sync process right after acknowledged writes loses none of them: the service
answers only after the group-commit transaction committed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from media_gateway.core.settings import Settings
from media_gateway.sync.app import create_app
from tests.conftest import make_settings
from tests.fakes.token_issuer import TestTokenIssuer
from tests.support import free_port, serving


@contextmanager
def sync_process(settings: Settings, issuer: TestTokenIssuer, port: int) -> Iterator[subprocess.Popen[bytes]]:
    auth = issuer.auth_settings()
    env = os.environ | {
        "MG_ENVIRONMENT": "test",
        "MG_DATABASE_URL": settings.effective_database_url,
        "MG_REDIS_URL": settings.effective_redis_url,
        "MG_REDIS__PREFIX": settings.redis.prefix,
        "MG_DATA_DIR": str(settings.data_dir),
        "MG_AUTH__ISSUER": auth["issuer"],
        "MG_AUTH__AUDIENCE": auth["audience"],
        "MG_AUTH__JWKS_URL": auth["jwks_url"],
        "MG_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "media_gateway.cli", "serve", "sync", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


async def _wait_ready(http: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"sync exited with {process.returncode}: {stderr[-2000:]}")
        try:
            if (await http.get("/health/live")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("sync did not start")


async def test_kill_9_after_acknowledged_writes_loses_nothing(
    migrated_settings: Settings, token_issuer: TestTokenIssuer
) -> None:
    user_id = uuid.uuid4()
    headers = {"Authorization": f"Bearer {token_issuer.mint(user_id)}", "X-Device-ID": "phone"}
    port = free_port()
    acknowledged: list[str] = []
    progress_acked: dict[str, float] = {}

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as http:
        with sync_process(migrated_settings, token_issuer, port) as process:
            await _wait_ready(http, process)
            stop = asyncio.Event()

            async def writer(lane: int) -> None:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    content = f"k{lane}-{i}"
                    try:
                        if i % 4 == 3:
                            body = {
                                "content_id": f"p{lane}",
                                "position_seconds": float(5_000 + i),
                                "duration_seconds": 100_000.0,
                                "state": "playing",
                            }
                            response = await http.post("/api/v1/sync/progress", json=body)
                            if response.status_code == 200:
                                assert response.json()["recorded"] is True
                                progress_acked[f"p{lane}"] = float(5_000 + i)
                        else:
                            response = await http.put(f"/api/v1/sync/watchlist/{content}")
                            if response.status_code == 200:
                                acknowledged.append(content)
                    except httpx.TransportError:
                        return  # the process died under this request: not acknowledged
                    if len(acknowledged) >= 60 and not stop.is_set():
                        # SIGKILL the moment an acknowledgement arrives, while other writes are in flight.
                        stop.set()
                        os.kill(process.pid, signal.SIGKILL)
                        return

            await asyncio.gather(*(writer(lane) for lane in range(8)))
            process.wait(timeout=10)
            assert process.returncode == -signal.SIGKILL

    # A fresh app on the same database sees every acknowledged write.
    restarted = make_settings(
        database_url=migrated_settings.database_url,
        redis=migrated_settings.redis.model_dump(),
        auth=token_issuer.auth_settings(),
    )
    async with (
        serving(create_app(restarted)) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http,
    ):
        listed = (await http.get("/api/v1/sync/watchlist")).json()
        present = {item["content_id"] for item in listed["items"]}
        assert len(acknowledged) >= 60
        assert set(acknowledged) <= present
        for content_id, position in progress_acked.items():
            stored = (await http.get("/api/v1/sync/progress", params={"content_id": content_id})).json()
            assert stored["position_seconds"] >= position
