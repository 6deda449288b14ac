"""Search result cards come from the keyword index's memory (`HybridSearch.summaries`), not from SQL.

On a catalog filled through the real ingestion app, they equal in JSON, byte for byte, the cards the
catalog's own reads give (`ContentSummary.from_catalog` of its rows with `region_offers`), directly and
through the search endpoint; and a catalog change made through ingestion reaches the card together with
the index, an offer that starts tomorrow included (on tomorrow's card, not on today's).
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.catalog import repository as catalog
from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings
from media_gateway.discovery.app import create_app as create_discovery
from media_gateway.discovery.schemas import ContentSummary
from media_gateway.discovery.search.hybrid import HybridSearch
from media_gateway.discovery.search.hybrid_runtime import CachedSearch
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.datasets import load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from tests.conftest import scratch_database
from tests.discovery.test_search_index_live import start_ingest, wait_for_job
from tests.ingestion.tmdb_data import cache_dir
from tests.support import serving, world_traversable_dir

TITLES = 30
# The demo's regions, and one where nothing is offered.
REGIONS = ("US", "GB", "CA", "DE", "ES", "FR")
# What the demo feeds leave out; set on the first Netflix records so cards show them.
DRESSED = 3
# The index applies catalog events in batches of a fraction of a second; the search cache in front of
# the endpoint drops its answers a little after the index settles.
INDEX_WITHIN_SEC = 5.0
ENDPOINT_WITHIN_SEC = 15.0
Json = dict[str, Any]


@dataclass(frozen=True)
class NetflixTitle:
    content_id: uuid.UUID
    title: str
    # The raw record ingestion was given, in the Netflix feed's shape.
    record: Json


@dataclass
class World:
    settings: Settings
    engine: AsyncEngine
    ingestion: httpx.AsyncClient
    discovery: httpx.AsyncClient
    search: HybridSearch
    netflix: list[NetflixTitle]


def today() -> date:
    """As the search and its index feed take it."""
    return datetime.now(UTC).date()


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    async with scratch_database() as base:
        data_dir = world_traversable_dir("mg-cards-")
        settings = base.model_copy(
            update={
                "data_dir": data_dir,
                "admin_token": "test-admin-token",
                "ingestion": base.ingestion.model_copy(update={"enrichment_interval_sec": 0}),
            }
        )
        feeds = generate_demo_feeds((await load_tmdb5000(cache_dir()))[:TITLES], today())
        for n, record in enumerate(feeds["netflix"][:DRESSED]):
            record["boxArt"] = f"https://images.example.test/netflix/{record['netflixId']}/poster.jpg"
            record["maturity"] = {"US": "PG-13", "GB": "12A"} if n % 2 == 0 else {"DE": "FSK 12"}
            record["netflixOriginal"] = n == 0
        write_feed_files(data_dir / "feeds" / "demo", feeds)
        engine = make_engine(settings)
        try:
            async with (
                serving(create_ingestion(settings)) as ingestion_url,
                httpx.AsyncClient(base_url=ingestion_url, timeout=30) as ingestion,
            ):
                await wait_for_job(ingestion, await start_ingest(ingestion, "demo"))
                netflix = [await netflix_title(engine, r) for r in feeds["netflix"]]
                app = create_discovery(settings)
                async with (
                    serving(app) as discovery_url,
                    httpx.AsyncClient(base_url=discovery_url, timeout=30) as discovery,
                ):
                    cached = app.state.ctx.extras["hybrid_search"]
                    assert isinstance(cached, CachedSearch)
                    yield World(settings, engine, ingestion, discovery, cached.engine, netflix)
        finally:
            await engine.dispose()
            shutil.rmtree(data_dir, ignore_errors=True)


async def netflix_title(engine: AsyncEngine, record: Json) -> NetflixTitle:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT c.id, c.title FROM catalog.entity_mappings m JOIN catalog.content c"
                    " ON c.id = m.entity_id WHERE m.id_type = 'platform:netflix' AND m.external_id = :id"
                ),
                {"id": str(record["netflixId"])},
            )
        ).one()
    return NetflixTitle(row.id, row.title, record)


async def catalog_ids(engine: AsyncEngine) -> list[uuid.UUID]:
    async with engine.connect() as conn:
        return [r.id for r in await conn.execute(text("SELECT id FROM catalog.content ORDER BY id"))]


async def catalog_cards(
    engine: AsyncEngine, ids: Sequence[uuid.UUID], region: str, day: date
) -> dict[uuid.UUID, ContentSummary]:
    """The cards as the catalog's reads make them (what search read before its cards came from memory)."""
    async with engine.connect() as conn:
        items = await catalog.list_content(conn, ids)
        offers = await catalog.region_offers(conn, ids, region, day)
    return {item.id: ContentSummary.from_catalog(item, region, offers[item.id]) for item in items}


async def endpoint_card(client: httpx.AsyncClient, title: str, content_id: uuid.UUID, region: str) -> Json:
    """The title's card on the first page of a search for it, without what the search adds."""
    response = await client.get("/api/v1/search", params={"q": title, "region": region, "page_size": 10})
    assert response.status_code == 200, response.text
    results: list[Json] = response.json()["results"]
    card = next(r for r in results if r["id"] == str(content_id))
    del card["score"], card["match_reasons"]
    return card


def as_json(card: Json | ContentSummary) -> bytes:
    return orjson.dumps(card.model_dump(mode="json") if isinstance(card, ContentSummary) else card)


async def ingest_netflix(world: World, name: str, records: list[Json]) -> None:
    write_feed_files(world.settings.data_dir / "feeds" / name, {"netflix": records})
    await wait_for_job(world.ingestion, await start_ingest(world.ingestion, name))


async def until(check: Callable[[], Awaitable[bool]], within_sec: float, what: str) -> None:
    deadline = time.monotonic() + within_sec
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def memory_card(
    world: World, content_id: uuid.UUID, region: str, day: date | None = None
) -> ContentSummary:
    return (await world.search.summaries([content_id], region, day))[content_id]


def netflix_offers(card: ContentSummary | Json) -> list[Json]:
    offers = card.model_dump(mode="json")["offers"] if isinstance(card, ContentSummary) else card["offers"]
    return [o for o in offers if o["platform"] == "netflix"]


async def test_cards_from_memory_are_the_catalogs_byte_for_byte(world: World) -> None:
    ids = await catalog_ids(world.engine)
    assert len(ids) >= TITLES
    day = today()
    for region in REGIONS:
        for on in (day, day + timedelta(days=1), day + timedelta(days=15), day + timedelta(days=400)):
            expected = await catalog_cards(world.engine, ids, region, on)
            found = await world.search.summaries(ids, region, on)
            assert found.keys() == expected.keys() == set(ids)
            for content_id, card in expected.items():
                assert found[content_id].model_dump_json() == card.model_dump_json(), (region, on)
                assert found[content_id] == card
        # Without a day, the card is today's.
        assert await world.search.summaries(ids, region) == await world.search.summaries(ids, region, day)

    # What the comparison covered: every field of a card and its offers, and windows that end.
    cards = [c for r in REGIONS for c in (await world.search.summaries(ids, r)).values()]
    offers = [o for c in cards for o in c.offers]
    assert any(c.poster for c in cards)
    assert {c.certification for c in cards} >= {"PG-13", "12A", "FSK 12", None}
    assert any(c.is_original for c in cards)
    assert any(o.price is not None for o in offers)
    assert any(o.tier for o in offers)
    assert any(o.deep_links.app and o.deep_links.web for o in offers)
    assert any(o.expires_on is not None for o in offers)
    assert len({o.monetization for o in offers}) >= 3
    assert not any(c.offers for c in cards if c.region == "FR")
    # A title the index does not hold (deleted) has no card.
    assert await world.search.summaries([uuid.uuid4(), ids[0]], "US") == await world.search.summaries(
        [ids[0]], "US"
    )


async def test_the_search_endpoint_returns_the_catalogs_cards(world: World) -> None:
    day = today()
    for item in world.netflix[:DRESSED]:
        for region in ("US", "GB", "DE"):
            card = await endpoint_card(world.discovery, item.title, item.content_id, region)
            expected = (await catalog_cards(world.engine, [item.content_id], region, day))[item.content_id]
            assert as_json(card) == as_json(expected), (item.title, region)


def offer_changed_title(world: World) -> NetflixTitle:
    return next(t for t in world.netflix[DRESSED:] if len(t.record["countries"]) >= 2)


def offer_tomorrow_title(world: World) -> NetflixTitle:
    other = offer_changed_title(world)
    return next(
        t
        for t in world.netflix[DRESSED:]
        if t is not other and t.record["countries"][0]["availableUntil"] is None
    )


async def test_a_changed_offer_reaches_the_card_with_the_index(world: World) -> None:
    item = offer_changed_title(world)
    kept, dropped = item.record["countries"][0], item.record["countries"][1]
    day = today()
    new_end = day + timedelta(days=123)
    before = await memory_card(world, item.content_id, kept["country"])
    assert [o["expires_on"] for o in netflix_offers(before)] != [new_end.isoformat()]
    assert netflix_offers(await memory_card(world, item.content_id, dropped["country"]))

    changed = copy.deepcopy(item.record)
    changed["countries"] = [{**kept, "availableUntil": new_end.isoformat()}]
    await ingest_netflix(world, "changed-offer", [changed])

    async def index_has_it() -> bool:
        card = await memory_card(world, item.content_id, kept["country"])
        return [o["expires_on"] for o in netflix_offers(card)] == [new_end.isoformat()]

    await until(index_has_it, INDEX_WITHIN_SEC, "the changed offer did not reach the card")
    assert netflix_offers(await memory_card(world, item.content_id, dropped["country"])) == []
    for region in (kept["country"], dropped["country"]):
        expected = await catalog_cards(world.engine, [item.content_id], region, day)
        found = await memory_card(world, item.content_id, region)
        assert found.model_dump_json() == expected[item.content_id].model_dump_json()

    async def endpoint_has_it() -> bool:
        card = await endpoint_card(world.discovery, item.title, item.content_id, kept["country"])
        return [o["expires_on"] for o in netflix_offers(card)] == [new_end.isoformat()]

    await until(endpoint_has_it, ENDPOINT_WITHIN_SEC, "the search endpoint still shows the old offer")


async def test_an_offer_starting_tomorrow_is_on_tomorrows_card_not_todays(world: World) -> None:
    day = today()
    tomorrow = day + timedelta(days=1)
    item = offer_tomorrow_title(world)
    region = item.record["countries"][0]["country"]

    async def netflix_filtered() -> bool:
        response = await world.discovery.get(
            "/api/v1/search",
            params={"q": item.title, "region": region, "platforms": "netflix", "page_size": 50},
        )
        assert response.status_code == 200, response.text
        return str(item.content_id) in [r["id"] for r in response.json()["results"]]

    assert netflix_offers(await memory_card(world, item.content_id, region))
    assert await netflix_filtered()

    changed = copy.deepcopy(item.record)
    changed["countries"][0]["availableFrom"] = tomorrow.isoformat()
    await ingest_netflix(world, "offer-tomorrow", [changed])

    async def tomorrows_card_has_it() -> bool:
        card = await memory_card(world, item.content_id, region, tomorrow)
        return [o["available_since"] for o in netflix_offers(card)] == [tomorrow.isoformat()]

    await until(tomorrows_card_has_it, INDEX_WITHIN_SEC, "the offer starting tomorrow is not in the index")
    assert netflix_offers(await memory_card(world, item.content_id, region)) == []
    for on in (day, tomorrow):
        expected = (await catalog_cards(world.engine, [item.content_id], region, on))[item.content_id]
        found = await memory_card(world, item.content_id, region, on)
        assert found.model_dump_json() == expected.model_dump_json(), on

    # Filters keep meaning "watchable today", and the endpoint's card follows the index.
    async def endpoint_has_it() -> bool:
        card = await endpoint_card(world.discovery, item.title, item.content_id, region)
        return not netflix_offers(card) and not await netflix_filtered()

    await until(endpoint_has_it, ENDPOINT_WITHIN_SEC, "the search endpoint still shows today's Netflix offer")
