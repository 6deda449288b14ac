"""Search for a signed-in user and the remaining filters, over HTTP, in the real discovery app on titles
the real ingestion app ingested: personalization against a fake SONA speaking its contract (issue 4
allows it until SONA lands), "only my services" against the real auth service, maximum
certification, bare person names, and "like <title>".

One stack for the whole module (ingesting is the slow part); every test uses fresh user ids, so the
affinity cache of one cannot leak into another."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from media_gateway.auth.app import create_app as create_auth
from media_gateway.core.db import make_engine
from media_gateway.core.events import Event, make_event_bus
from media_gateway.core.redis import make_redis
from media_gateway.core.settings import Settings
from media_gateway.discovery.app import create_app as create_discovery
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.datasets import TmdbMovie, load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from tests.conftest import scratch_database
from tests.discovery.test_search_index_live import start_ingest, wait_for_job
from tests.fakes.sona_server import FakeSonaServer
from tests.fakes.token_issuer import TestTokenIssuer
from tests.ingestion.tmdb_data import cache_dir
from tests.support import free_port, serving, world_traversable_dir

TITLES = 24
PROBLEM_JSON = "application/problem+json"
BUDGET_MS = 1000
PAGE = 5
RATINGS = ("G", "PG", "PG-13", "R", "TV-MA", None)
# The auth service's own keys and issuer (unset: its URL), and cheap password hashing.
AUTH_SETTINGS = {
    "issuer": "",
    "jwks_url": "",
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 64,
    "password_hash_parallelism": 1,
}


@dataclass
class Stack:
    settings: Settings
    discovery: httpx.AsyncClient
    sona: FakeSonaServer
    issuer: TestTokenIssuer
    # content id -> US rating given to it (None: unrated).
    ratings: dict[str, str | None]
    titles: dict[str, str]


@pytest.fixture(scope="module")
async def stack(token_issuer: TestTokenIssuer) -> AsyncIterator[Stack]:
    data_dir = world_traversable_dir("mg-personal-")
    sona = FakeSonaServer().start()
    async with scratch_database(
        data_dir=data_dir,
        admin_token="test-admin-token",
        auth=token_issuer.auth_settings(),
        ingestion={"enrichment_interval_sec": 0},
        # Far above the 50 ms default: a loaded test machine must not turn the happy path into a
        # timeout. The slow-SONA case sleeps past it.
        discovery={"personalization_budget_ms": BUDGET_MS},
    ) as settings:
        movies: list[TmdbMovie] = list(await load_tmdb5000(cache_dir()))
        write_feed_files(
            data_dir / "feeds" / "first", generate_demo_feeds(movies[:TITLES], datetime.now(UTC).date())
        )
        engine = make_engine(settings)
        try:
            async with (
                serving(create_ingestion(settings)) as ingestion_url,
                httpx.AsyncClient(base_url=ingestion_url, timeout=30) as ingestion,
            ):
                await wait_for_job(ingestion, await start_ingest(ingestion, "first"))
            ratings: dict[str, str | None] = {}
            async with engine.begin() as conn:
                rows = (await conn.execute(text("SELECT id, title FROM catalog.content ORDER BY id"))).all()
                titles = {str(r.id): r.title for r in rows}
                for i, row in enumerate(rows):
                    rating = RATINGS[i % len(RATINGS)]
                    ratings[str(row.id)] = rating
                    # The demo feeds carry no ratings; discovery reads these at its start-up build.
                    await conn.execute(
                        text("UPDATE catalog.content SET certifications = CAST(:c AS jsonb) WHERE id = :id"),
                        {"c": f'{{"US": "{rating}"}}' if rating else "{}", "id": row.id},
                    )
            # Tokens here come from the test issuer; auth is nowhere (see the only-my-services test).
            urls = settings.service_urls.model_copy(
                update={"sona": sona.url, "auth": f"http://127.0.0.1:{free_port()}"}
            )
            discovery_settings = settings.model_copy(update={"service_urls": urls})
            async with (
                serving(create_discovery(discovery_settings)) as discovery_url,
                httpx.AsyncClient(base_url=discovery_url, timeout=30) as discovery,
            ):
                yield Stack(discovery_settings, discovery, sona, token_issuer, ratings, titles)
        finally:
            sona.stop()
            await engine.dispose()
            shutil.rmtree(data_dir, ignore_errors=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def search(
    stack: Stack, query: str, token: str | None = None, expect: int = 200, **body: Any
) -> dict[str, Any]:
    response = await stack.discovery.post(
        "/api/v1/search", json={"query": query, **body}, headers=bearer(token) if token else {}
    )
    assert response.status_code == expect, response.text
    found: dict[str, Any] = response.json()
    return found


def ids(response: dict[str, Any]) -> list[str]:
    return [r["id"] for r in response["results"]]


async def fallbacks(stack: Stack, reason: str) -> float:
    body = (await stack.discovery.get("/metrics")).text
    match = re.search(
        rf'^discovery_personalization_fallbacks_total\{{reason="{reason}"\}} ([0-9.e+]+)$', body, re.MULTILINE
    )
    return float(match.group(1)) if match else 0.0


async def test_personalization_reranks_for_the_user_within_its_budget(stack: Stack) -> None:
    sona = stack.sona
    sona.reset()
    anonymous = await search(stack, "the", page_size=PAGE)
    page_two = await search(stack, "the", page_size=PAGE, page=2)
    assert anonymous["personalized"] is False
    assert page_two["results"], "the query must match more than one page"
    assert sona.calls == []

    # The user loves a title from page 2: with a high-variant weight it climbs onto page 1.
    loved = page_two["results"][-1]["id"]
    sona.affinities = {loved: 1.0}
    sona.weight = 0.4
    sona.experiment = {"id": "search-personalization", "variant": "high"}
    token = stack.issuer.mint(uuid.uuid4())
    mine = await search(stack, "the", token, page_size=PAGE)
    assert mine["personalized"] is True
    assert mine["experiment"] == {"id": "search-personalization", "variant": "high"}
    assert loved in ids(mine)
    assert ids(mine) != ids(anonymous)
    scores = [r["score"] for r in mine["results"]]
    assert scores == sorted(scores, reverse=True)
    assert len(sona.calls) == 1
    call = sona.calls[0]
    assert call.authorization == f"Bearer {token}"
    assert loved in call.content_ids
    assert len(call.content_ids) <= stack.settings.discovery.personalization_candidates

    # Within the TTL the affinities come from Redis: no second call.
    again = await search(stack, "the", token, page_size=PAGE)
    assert ids(again) == ids(mine)
    assert len(sona.calls) == 1

    # The control variant (weight 0) leaves the relevance order alone.
    sona.weight = 0.0
    sona.experiment = {"id": "search-personalization", "variant": "control"}
    control = await search(stack, "the", stack.issuer.mint(uuid.uuid4()), page_size=PAGE)
    assert ids(control) == ids(anonymous)
    assert control["personalized"] is False
    assert control["experiment"]["variant"] == "control"

    # Slow or failing SONA: the anonymous answer, still 200, and the fallback is counted.
    sona.weight = 0.4
    sona.delay_sec = BUDGET_MS / 1000 + 0.3
    before = await fallbacks(stack, "timeout")
    slow = await search(stack, "the", stack.issuer.mint(uuid.uuid4()), page_size=PAGE)
    assert ids(slow) == ids(anonymous)
    assert slow["personalized"] is False
    assert await fallbacks(stack, "timeout") == before + 1
    sona.delay_sec = 0.0
    sona.status = 503
    before = await fallbacks(stack, "error")
    down = await search(stack, "the", stack.issuer.mint(uuid.uuid4()), page_size=PAGE)
    assert ids(down) == ids(anonymous)
    assert await fallbacks(stack, "error") == before + 1
    sona.status = 200

    # An invalid token is refused, not treated as anonymous.
    calls = len(sona.calls)
    await search(stack, "the", "not-a-token", expect=401)
    assert len(sona.calls) == calls


async def test_maximum_certification_excludes_unknown_and_stronger_ratings(stack: Stack) -> None:
    broad = await search(stack, "the", page_size=100)
    assert broad["total"] > 5
    found = await search(stack, "the", page_size=100, filters={"max_certification": "PG-13"})
    allowed = {i for i, r in stack.ratings.items() if r in ("G", "PG", "PG-13")}
    assert found["results"]
    assert set(ids(found)) == allowed & set(ids(broad))
    assert all(r["certification"] in ("G", "PG", "PG-13") for r in found["results"])
    response = await stack.discovery.post(
        "/api/v1/search", json={"query": "the", "filters": {"max_certification": "X-rated"}}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    response = await stack.discovery.get("/api/v1/search", params={"q": "the", "max_certification": "R"})
    assert response.status_code == 200
    assert {r["certification"] for r in response.json()["results"]} <= {"G", "PG", "PG-13", "R", "TV-MA"}


async def test_only_my_services_uses_the_users_profile(stack: Stack) -> None:
    response = await stack.discovery.post(
        "/api/v1/search", json={"query": "the", "filters": {"only_my_services": True}}
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    # Auth unreachable: the filter cannot be honoured.
    response = await stack.discovery.post(
        "/api/v1/search",
        json={"query": "the", "filters": {"only_my_services": True}},
        headers=bearer(stack.issuer.mint(uuid.uuid4())),
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)

    # The real auth service issues the token and holds the profile; discovery trusts its keys.
    auth_url = f"http://127.0.0.1:{free_port()}"
    urls = stack.settings.service_urls.model_copy(update={"auth": auth_url})
    # Its own data dir: two discovery processes never share a keyword index directory.
    own_dir = world_traversable_dir("mg-with-auth-")
    with_auth = stack.settings.model_copy(
        update={
            "service_urls": urls,
            "auth": stack.settings.auth.model_copy(update=AUTH_SETTINGS),
            "data_dir": own_dir,
        }
    )
    broad = await search(stack, "the", page_size=100)
    mild = Counter(
        o["platform"] for r in broad["results"] if r["certification"] in ("G", "PG") for o in r["offers"]
    )
    # Auth lists the services one subscribes to (free ones such as Tubi are not among them).
    subscribable = [p for p, _ in mild.most_common() if p != "tubi"]
    assert subscribable
    mine = subscribable[:1]
    async with (
        serving(create_auth(with_auth), port=int(auth_url.rsplit(":", 1)[1])),
        httpx.AsyncClient(base_url=auth_url, timeout=30) as auth,
        serving(create_discovery(with_auth)) as discovery_url,
        httpx.AsyncClient(base_url=discovery_url, timeout=30) as discovery,
    ):
        email, password = f"viewer-{uuid.uuid4().hex[:8]}@example.test", "correct horse battery staple"
        registered = await auth.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert registered.status_code == 202, registered.text
        login = await auth.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        updated = await auth.patch(
            "/api/v1/users/me", json={"platforms": mine, "max_certification": "PG"}, headers=bearer(token)
        )
        assert updated.status_code == 200, updated.text

        response = await discovery.post(
            "/api/v1/search",
            json={"query": "the", "page_size": 100, "filters": {"only_my_services": True}},
            headers=bearer(token),
        )
        assert response.status_code == 200, response.text
        found = response.json()
    shutil.rmtree(own_dir, ignore_errors=True)
    assert found["results"]
    for result in found["results"]:
        assert {o["platform"] for o in result["offers"]} & set(mine), result
        assert result["certification"] in ("G", "PG"), result
    assert set(ids(found)) < set(ids(broad))


async def test_a_bare_person_name_finds_their_titles(stack: Stack) -> None:
    engine = make_engine(stack.settings)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        """SELECT m->>'name' AS name, array_agg(c.id::text) AS ids
                           FROM catalog.content c, jsonb_array_elements(c."cast") m
                           WHERE (m->>'order')::int < 5 AND m->>'name' LIKE '% %'
                           GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"""
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    name, theirs = rows[0].name, set(rows[0].ids)
    found = await search(stack, name, page_size=20)
    assert theirs <= set(ids(found)), (name, found["results"])
    for result in found["results"]:
        assert f"with {name}" in result["match_reasons"], result
        assert "semantic" not in result["match_reasons"]


async def test_like_a_title_excludes_it_and_follows_its_vector(stack: Stack) -> None:
    seed_id, seed_title = next(
        (i, t) for i, t in sorted(stack.titles.items(), key=lambda kv: kv[1]) if len(t.split()) <= 3
    )
    found = await search(stack, f"movies like {seed_title}", page_size=10)
    referenced = found["intent"]["referenced_titles"]
    assert [r["content_id"] for r in referenced] == [seed_id], referenced
    assert found["results"]
    assert seed_id not in ids(found)
    assert all("semantic" in r["match_reasons"] for r in found["results"])
    other_id, other_title = next(
        (i, t) for i, t in sorted(stack.titles.items(), key=lambda kv: kv[1], reverse=True) if i != seed_id
    )
    other = await search(stack, f"movies like {other_title}", page_size=10)
    assert other_id not in ids(other)
    assert ids(other) != ids(found)


async def test_every_replica_applies_every_catalog_event(stack: Stack) -> None:
    """Each replica keeps its own index, so each must see each event (a consumer group apiece)."""
    content_id = sorted(stack.titles)[len(stack.titles) // 2]
    # A replica of its own: its own disk (index generations), shared database and Redis.
    replica_dir = world_traversable_dir("mg-replica-")
    replica_settings = stack.settings.model_copy(update={"data_dir": replica_dir})
    async with (
        serving(create_discovery(replica_settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as replica,
    ):
        engine = make_engine(stack.settings)
        redis = make_redis(stack.settings)
        bus = make_event_bus(stack.settings, redis)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE catalog.content SET title = 'Zyzzyva Quokka Parade' WHERE id = :id"),
                    {"id": uuid.UUID(content_id)},
                )
            await bus.publish("content.updated", Event(type="content.updated", key=content_id))
        finally:
            await bus.aclose()
            await redis.aclose()
            await engine.dispose()
        for client in (stack.discovery, replica):
            deadline = time.monotonic() + 5
            while True:
                response = await client.get("/api/v1/search/autocomplete", params={"q": "zyzzyva quok"})
                if content_id in [s["id"] for s in response.json()["suggestions"]]:
                    break
                assert time.monotonic() < deadline, "a replica missed the catalog event"
                await asyncio.sleep(0.05)
    shutil.rmtree(replica_dir, ignore_errors=True)
