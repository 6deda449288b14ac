"""The discovery catalog read API over HTTP, on a catalog filled through the real ingestion service.

Expectations come from the raw demo feeds run through the platforms' normalizers (what ingestion was
given), joined to entities through the ingestion admin API; nothing reads the catalog tables directly."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from media_gateway.catalog.genres import CANONICAL_GENRES
from media_gateway.catalog.schemas import NormalizedContent, platform_id_type
from media_gateway.core.settings import Settings
from media_gateway.discovery.app import create_app as create_discovery
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.datasets import load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from media_gateway.ingestion.normalizers import get_normalizer
from tests.conftest import scratch_database
from tests.ingestion.tmdb_data import cache_dir
from tests.support import serving, world_traversable_dir

ADMIN = {"Authorization": "Bearer test-admin-token"}
TITLES = 40
PROBLEM = "application/problem+json"
Json = dict[str, Any]


@dataclass
class World:
    client: httpx.AsyncClient
    # Every entity's details as the API returns them, by id.
    details: dict[str, Json]
    # What ingestion was fed: per entity, its normalized record per platform.
    records: dict[str, dict[str, NormalizedContent]]


def offer_key(o: Json) -> tuple[Any, ...]:
    return (o["platform"], o["region"], o["monetization"], o["available_since"], o["expires_on"])


def iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def watchable(o: Json, day: date) -> bool:
    since, until = o["available_since"], o["expires_on"]
    return (since is None or date.fromisoformat(since) <= day) and (
        until is None or date.fromisoformat(until) >= day
    )


def offers_where(world: World, pred: Callable[[Json], bool]) -> dict[str, list[Json]]:
    """Offers of every entity matching `pred`, by entity id (entities without any left out)."""
    found = {cid: [o for o in d["offers"] if pred(o)] for cid, d in world.details.items()}
    return {cid: offers for cid, offers in found.items() if offers}


def assert_problem(response: httpx.Response, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, response.text
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    assert body["type"]


@pytest.fixture(scope="module")
async def catalog_settings() -> AsyncIterator[Settings]:
    """A migrated database of this module's own, so one ingest serves all its tests."""
    async with scratch_database() as settings:
        yield settings


async def ingest(client: httpx.AsyncClient, path: str) -> None:
    started = await client.post("/api/v1/admin/ingest", json={"source": "file", "path": path}, headers=ADMIN)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = (await client.get(f"/api/v1/admin/jobs/{started.json()['id']}", headers=ADMIN)).json()
        if job["status"] in ("succeeded", "failed"):
            assert job["status"] == "succeeded", job
            return
        await asyncio.sleep(0.1)
    raise AssertionError("ingest did not finish")


@pytest.fixture(scope="module")
async def world(catalog_settings: Settings) -> AsyncIterator[World]:
    data_dir = world_traversable_dir("mg-discovery-")
    settings = catalog_settings.model_copy(
        update={
            "data_dir": data_dir,
            "admin_token": "test-admin-token",
            "ingestion": catalog_settings.ingestion.model_copy(update={"enrichment_interval_sec": 0}),
        }
    )
    # Windows are generated around the server's notion of today (UTC), which the API reports as as_of.
    today = datetime.now(UTC).date()
    feeds = generate_demo_feeds((await load_tmdb5000(cache_dir()))[:TITLES], today)
    write_feed_files(data_dir / "feeds" / "demo", feeds)
    records: dict[str, dict[str, NormalizedContent]] = {}
    try:
        async with serving(create_ingestion(settings)) as url, httpx.AsyncClient(base_url=url) as client:
            await ingest(client, "demo")
            for platform, raws in feeds.items():
                for raw in raws:
                    record = get_normalizer(platform).normalize(raw)
                    mapped = await client.get(
                        "/api/v1/admin/entity-mappings",
                        params={"id_type": platform_id_type(platform), "external_id": record.source_id},
                        headers=ADMIN,
                    )
                    [mapping] = mapped.json()
                    records.setdefault(mapping["entity_id"], {})[platform] = record
        async with serving(create_discovery(settings)) as url, httpx.AsyncClient(base_url=url) as client:
            details = {}
            for cid in records:
                response = await client.get(f"/api/v1/content/{cid}")
                assert response.status_code == 200, response.text
                details[cid] = response.json()
            yield World(client=client, details=details, records=records)
    finally:
        shutil.rmtree(Path(data_dir), ignore_errors=True)


async def test_details_carry_metadata_every_offer_and_external_ids(world: World) -> None:
    assert len(world.details) == TITLES
    for cid, details in world.details.items():
        assert details["id"] == cid
        records = world.records[cid]
        expected = {
            (
                o.platform,
                o.region,
                o.monetization.value,
                iso(o.available_since),
                iso(o.expires_on),
                o.deep_links.web,
            )
            for r in records.values()
            for o in r.offers
        }
        got = {(*offer_key(o), o["deep_links"]["web"]) for o in details["offers"]}
        assert got == expected
        ids = {(i["id_type"], i["value"]) for i in details["external_ids"]}
        for record in records.values():
            assert (platform_id_type(record.source_platform), record.source_id) in ids
        assert set(details["genres"]) == set().union(*(set(r.genres) for r in records.values()))
        assert details["title"]
        assert details["cast"]
        assert details["overview"]
    avatar = next(
        d
        for d in world.details.values()
        if ("tmdb", "19995") in {(i["id_type"], i["value"]) for i in d["external_ids"]}
    )
    assert (avatar["title"], avatar["year"], avatar["runtime_minutes"]) == ("Avatar", 2009, 162)


async def test_unknown_content_is_a_404_problem(world: World) -> None:
    missing = uuid.uuid4()
    for path in (f"/api/v1/content/{missing}", f"/api/v1/content/{missing}/availability"):
        response = await world.client.get(path)
        assert_problem(response, 404)
        assert str(missing) in response.json()["detail"]


async def test_availability_lists_the_region_offers_grouped_by_monetization(world: World) -> None:
    order = ["free", "ads", "subscription", "addon", "rent", "buy"]
    # The title with the most regions and kinds of offer exercises grouping best.
    cid, details = max(
        world.details.items(), key=lambda kv: len({(o["region"], o["monetization"]) for o in kv[1]["offers"]})
    )
    regions = {o["region"] for o in details["offers"]}
    assert len(regions) >= 2
    for region in [*regions, "JP"]:
        response = await world.client.get(
            f"/api/v1/content/{cid}/availability", params={"region": region.lower()}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["content_id"], body["region"], body["title"]) == (cid, region, details["title"])
        day = date.fromisoformat(body["as_of"])
        expected = sorted(
            offer_key(o) for o in details["offers"] if o["region"] == region and watchable(o, day)
        )
        kinds = [g["monetization"] for g in body["groups"]]
        assert kinds == sorted(set(kinds), key=order.index)
        for group in body["groups"]:
            assert group["offers"]
            assert {o["monetization"] for o in group["offers"]} == {group["monetization"]}
            assert all(o["deep_links"]["web"] or o["deep_links"]["app"] for o in group["offers"])
        got = sorted(offer_key(o) for g in body["groups"] for o in g["offers"])
        assert got == expected
        assert body["total"] == len(expected)
    default = (await world.client.get(f"/api/v1/content/{cid}/availability")).json()
    assert default["region"] == "US"


async def test_genres_are_the_canonical_taxonomy_with_title_counts(world: World) -> None:
    response = await world.client.get("/api/v1/genres")
    assert response.status_code == 200
    genres = response.json()["genres"]
    assert [g["name"] for g in genres] == list(CANONICAL_GENRES)
    expected = {g: sum(g in d["genres"] for d in world.details.values()) for g in CANONICAL_GENRES}
    assert {g["name"]: g["title_count"] for g in genres} == expected
    assert sum(expected.values()) > TITLES


@pytest.mark.parametrize("region", [None, "US", "GB"])
async def test_platforms_count_titles_watchable_today(world: World, region: str | None) -> None:
    params: Json = {"region": region} if region else {}
    response = await world.client.get("/api/v1/platforms", params=params)
    assert response.status_code == 200
    body = response.json()
    day = date.fromisoformat(body["as_of"])
    assert body["region"] == region
    expected: dict[str, set[str]] = {}
    for cid, offers in offers_where(
        world, lambda o: watchable(o, day) and region in (None, o["region"])
    ).items():
        for o in offers:
            expected.setdefault(o["platform"], set()).add(cid)
    platforms = body["platforms"]
    assert {p["id"]: p["title_count"] for p in platforms} == {p: len(ids) for p, ids in expected.items()}
    assert [p["title_count"] for p in platforms] == sorted(
        (p["title_count"] for p in platforms), reverse=True
    )
    netflix = next(p for p in platforms if p["id"] == "netflix")
    assert netflix["name"] == "Netflix"
    assert region is None or netflix["regions"] == [region]


@pytest.mark.parametrize(
    ("region", "platform"), [("US", None), ("gb", None), ("US", "netflix"), ("DE", "prime_video")]
)
async def test_trending_orders_by_popularity_within_the_region_and_platform(
    world: World, region: str, platform: str | None
) -> None:
    params: Json = {"region": region, "limit": 100} | ({"platform": platform} if platform else {})
    body = (await world.client.get("/api/v1/content/trending", params=params)).json()
    day, upper = date.fromisoformat(body["as_of"]), region.upper()
    eligible = offers_where(
        world, lambda o: o["region"] == upper and watchable(o, day) and platform in (None, o["platform"])
    )
    expected = sorted(eligible, key=lambda cid: (-(world.details[cid]["popularity"] or 0), uuid.UUID(cid)))
    assert len(expected) >= 3
    assert [i["id"] for i in body["items"]] == expected
    for item in body["items"]:
        region_offers = [
            o for o in world.details[item["id"]]["offers"] if o["region"] == upper and watchable(o, day)
        ]
        assert sorted(map(offer_key, item["offers"])) == sorted(map(offer_key, region_offers))
        assert item["year"]
        assert item["genres"]
        assert item["region"] == upper
    top = (await world.client.get("/api/v1/content/trending", params=params | {"limit": 2})).json()
    assert [i["id"] for i in top["items"]] == expected[:2]


def expected_changes(
    world: World, kind: str, region: str, platform: str | None, as_of: date, start: date, end: date
) -> list[tuple[str, str, str]]:
    """(date, content id, platform) per title and platform with an offer whose window edge is in range."""
    edge = "expires_on" if kind == "leaving" else "available_since"
    days: dict[tuple[str, str], list[date]] = {}
    for cid, details in world.details.items():
        for o in details["offers"]:
            if o["region"] != region or o[edge] is None or platform not in (None, o["platform"]):
                continue
            if start <= date.fromisoformat(o[edge]) <= end and watchable(o, as_of):
                days.setdefault((cid, o["platform"]), []).append(date.fromisoformat(o[edge]))
    picked = [((min if kind == "leaving" else max)(ds).isoformat(), cid, p) for (cid, p), ds in days.items()]
    picked.sort(key=lambda x: (x[0], uuid.UUID(x[1]), x[2]))
    if kind == "new":
        picked.sort(key=lambda x: x[0], reverse=True)
    return picked


async def read_feed(world: World, params: dict[str, Any]) -> tuple[list[Json], list[Json]]:
    pages, items, cursor = [], [], None
    while True:
        response = await world.client.get(
            "/api/v1/changes", params=params | ({"cursor": cursor} if cursor else {})
        )
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages, items
        assert len(page["items"]) == params["limit"]
        assert len(pages) < 100


@pytest.mark.parametrize("kind", ["new", "leaving"])
@pytest.mark.parametrize(
    ("region", "platform", "days"),
    [("US", None, 90), ("GB", None, 90), ("US", None, 7), ("GB", "netflix", 90)],
)
async def test_changes_return_only_offers_in_the_window_and_page_without_gaps(
    world: World, kind: str, region: str, platform: str | None, days: int
) -> None:
    params: Json = {"type": kind, "region": region, "days": days, "limit": 2} | (
        {"platform": platform} if platform else {}
    )
    pages, items = await read_feed(world, params)
    first = pages[0]
    as_of = date.fromisoformat(first["as_of"])
    start, end = (
        (as_of, as_of + timedelta(days=days)) if kind == "leaving" else (as_of - timedelta(days=days), as_of)
    )
    assert (first["window_start"], first["window_end"]) == (start.isoformat(), end.isoformat())
    edge = "expires_on" if kind == "leaving" else "available_since"
    for item in items:
        assert start <= date.fromisoformat(item["date"]) <= end
        assert item["offers"]
        assert item["date"] == (min if kind == "leaving" else max)(o[edge] for o in item["offers"])
        for offer in item["offers"]:
            assert (offer["platform"], offer["region"]) == (item["platform"], region)
            assert start <= date.fromisoformat(offer[edge]) <= end
        assert item["content"]["id"] in world.details
    got = [(i["date"], i["content"]["id"], i["platform"]) for i in items]
    assert len(set(got)) == len(got)
    assert got == expected_changes(world, kind, region, platform, as_of, start, end)
    assert got or days == 7
    # Fetching one more than `limit` tells a last page from a full one: no trailing empty page.
    assert len(pages) == max(1, -(-len(got) // params["limit"]))
    assert all(len(page["items"]) <= params["limit"] for page in pages)
    if (region, days, platform) == ("US", 90, None):
        assert len(pages) >= 2
    whole = (await world.client.get("/api/v1/changes", params=params | {"limit": 100})).json()
    assert [(i["date"], i["content"]["id"], i["platform"]) for i in whole["items"]] == got
    assert whole["next_cursor"] is None


async def test_a_cursor_only_continues_the_query_it_came_from(world: World) -> None:
    params: Json = {"type": "new", "region": "US", "days": 90, "limit": 1}
    page = (await world.client.get("/api/v1/changes", params=params)).json()
    cursor = page["next_cursor"]
    assert cursor
    ok = await world.client.get("/api/v1/changes", params=params | {"cursor": cursor})
    assert ok.status_code == 200
    for other in ({"type": "leaving"}, {"region": "GB"}, {"days": 30}, {"platform": "netflix"}):
        assert_problem(
            await world.client.get("/api/v1/changes", params=params | other | {"cursor": cursor}), 422
        )
    for garbage in ("garbage", cursor[:-4], "eyJ2IjoxfQ"):
        assert_problem(await world.client.get("/api/v1/changes", params=params | {"cursor": garbage}), 422)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/content/trending", {"region": "USA"}),
        ("/api/v1/content/trending", {"region": "1A"}),
        ("/api/v1/content/trending", {"platform": "nosuchplatform"}),
        ("/api/v1/content/trending", {"platform": "Netflix!"}),
        ("/api/v1/content/trending", {"limit": 101}),
        ("/api/v1/content/trending", {"limit": 0}),
        ("/api/v1/content/not-a-uuid", {}),
        ("/api/v1/content/not-a-uuid/availability", {}),
        (f"/api/v1/content/{uuid.UUID(int=1)}/availability", {"region": "U5"}),
        ("/api/v1/platforms", {"region": "U"}),
        ("/api/v1/changes", {}),
        ("/api/v1/changes", {"type": "soon"}),
        ("/api/v1/changes", {"type": "new", "days": 0}),
        ("/api/v1/changes", {"type": "leaving", "days": 91}),
        ("/api/v1/changes", {"type": "new", "limit": 101}),
        ("/api/v1/changes", {"type": "new", "region": "usa"}),
        ("/api/v1/changes", {"type": "new", "platform": "nosuchplatform"}),
    ],
)
async def test_bad_requests_are_4xx_problems(world: World, path: str, params: dict[str, Any]) -> None:
    assert_problem(await world.client.get(path, params=params))
