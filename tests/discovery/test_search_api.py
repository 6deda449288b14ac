"""`/api/v1/search` over HTTP, in the real discovery app, on titles the real ingestion app ingested
(so the vector index holds their embeddings)."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings
from media_gateway.discovery.app import create_app as create_discovery
from media_gateway.ingestion.app import create_app as create_ingestion
from media_gateway.ingestion.datasets import TmdbMovie, load_tmdb5000
from media_gateway.ingestion.demo import generate_demo_feeds, write_feed_files
from tests.discovery.test_search_index_live import start_ingest, wait_for_job
from tests.ingestion.tmdb_data import cache_dir
from tests.support import serving, world_traversable_dir

TITLES = 40
LATER = 3
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Title:
    id: str
    title: str
    overview: str | None
    year: int | None
    genres: list[str]


@dataclass
class Stack:
    ingestion: httpx.AsyncClient
    discovery: httpx.AsyncClient
    titles: list[Title]


@pytest.fixture
async def stack(scratch_settings: Settings) -> AsyncIterator[Stack]:
    data_dir = world_traversable_dir("mg-search-")
    settings = scratch_settings.model_copy(
        update={
            "data_dir": data_dir,
            "admin_token": "test-admin-token",
            "ingestion": scratch_settings.ingestion.model_copy(update={"enrichment_interval_sec": 0}),
        }
    )
    movies: list[TmdbMovie] = list(await load_tmdb5000(cache_dir()))
    today = datetime.now(UTC).date()
    write_feed_files(data_dir / "feeds" / "first", generate_demo_feeds(movies[:TITLES], today))
    write_feed_files(
        data_dir / "feeds" / "later", generate_demo_feeds(movies[TITLES : TITLES + LATER], today)
    )
    engine = make_engine(settings)
    try:
        async with (
            serving(create_ingestion(settings)) as ingestion_url,
            httpx.AsyncClient(base_url=ingestion_url, timeout=30) as ingestion,
        ):
            await wait_for_job(ingestion, await start_ingest(ingestion, "first"))
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT id, title, overview, year, genres FROM catalog.content ORDER BY title, id"
                        )
                    )
                ).all()
            titles = [Title(str(r.id), r.title, r.overview, r.year, list(r.genres)) for r in rows]
            assert len(titles) == TITLES
            async with (
                serving(create_discovery(settings)) as discovery_url,
                httpx.AsyncClient(base_url=discovery_url, timeout=30) as discovery,
            ):
                yield Stack(ingestion, discovery, titles)
    finally:
        await engine.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


async def search(client: httpx.AsyncClient, query: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/search", json={"query": query, **body})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def ids(response: dict[str, Any]) -> list[str]:
    return [r["id"] for r in response["results"]]


def typo(title: str) -> str:
    """The title with the second letter of its longest word dropped."""
    longest = max(title.split(), key=len)
    return title.replace(longest, longest[0] + longest[2:], 1)


def facet(response: dict[str, Any], name: str) -> dict[str, int]:
    return {f["value"]: f["count"] for f in response["facets"][name]}


async def test_exact_and_misspelled_titles_rank_first(stack: Stack) -> None:
    for item in stack.titles:
        found = await search(stack.discovery, item.title, page_size=5)
        assert ids(found)[:1] == [item.id], (item.title, [r["title"] for r in found["results"]])
        assert "title match" in found["results"][0]["match_reasons"]
        assert found["results"][0]["score"] == 1.0
    typed = [t for t in stack.titles if max(len(w) for w in t.title.split()) >= 6]
    assert len(typed) >= 10
    for item in typed:
        query = typo(item.title)
        found = await search(stack.discovery, query, page_size=5)
        assert ids(found)[:1] == [item.id], (query, item.title, [r["title"] for r in found["results"]])
    scores = [r["score"] for r in found["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


async def test_filters_restrict_results_and_facets_count_them(stack: Stack) -> None:
    broad = await search(stack.discovery, "the", page_size=100)
    platform = max(facet(broad, "platforms").items(), key=lambda kv: kv[1])[0]
    found = await search(stack.discovery, "the", filters={"platforms": [platform]}, page_size=100)
    assert 0 < found["total"] < TITLES
    for result in found["results"]:
        assert platform in {o["platform"] for o in result["offers"]}, result
        assert f"on {platform}" in result["match_reasons"]
    assert facet(found, "platforms")[platform] == found["total"]

    genre = max(facet(broad, "genres").items(), key=lambda kv: kv[1])[0]
    found = await search(stack.discovery, "love", filters={"genres": [genre.lower()]}, page_size=100)
    assert found["total"] > 0
    assert all(genre in r["genres"] for r in found["results"])
    assert facet(found, "genres")[genre] == found["total"]

    years = sorted(t.year for t in stack.titles if t.year)
    low, high = years[len(years) // 4], years[len(years) // 2]
    found = await search(
        stack.discovery, "the world", filters={"year_from": low, "year_to": high}, page_size=100
    )
    expected = {t.id for t in stack.titles if t.year is not None and low <= t.year <= high}
    assert set(ids(found)) <= expected
    assert found["total"] == len(found["results"]) > 0
    assert sum(facet(found, "decades").values()) == found["total"]
    assert all(low // 10 * 10 <= int(d[:-1]) <= high for d in facet(found, "decades"))


# How people describe a film they cannot name: no title words, no character names. Hand-written, because
# an overview with its names cut out is not a paraphrase (it keeps the overview's words and loses its
# meaning), and which such fragments an embedding still places is luck.
PLOT_PARAPHRASES = {
    "Titanic": "a poor artist falls in love with a rich young woman aboard a luxury liner that sinks",
    "Avatar": "a paralyzed marine on an alien moon sides with the natives against the company mining it",
    "Jurassic World": "a theme park full of cloned dinosaurs where a genetically engineered hybrid escapes",
    "Tangled": "a girl with magical long hair locked away in a tower runs off with a charming thief",
    "Monsters University": "two creatures who will be best friends meet at college learning to scare kids",
    "King Kong": "a film crew sails to a remote island and captures a giant gorilla to show off in the city",
    "Man of Steel": "a boy sent to earth from a dying planet grows up hiding his powers until he must act",
}


async def test_plot_paraphrase_is_found_semantically(stack: Stack) -> None:
    for name, query in PLOT_PARAPHRASES.items():
        # The catalog's title is a platform's spelling of it ("TITANIC (1997)").
        [item] = [t for t in stack.titles if name.casefold() in t.title.casefold()]
        found = await search(stack.discovery, query, page_size=3)
        top = {r["id"]: r for r in found["results"]}
        assert item.id in top, (query, item.title, [r["title"] for r in found["results"]])
        assert "semantic" in top[item.id]["match_reasons"], (query, top[item.id])


async def test_get_and_post_agree(stack: Stack) -> None:
    item = stack.titles[0]
    filters = {"genres": item.genres[:1]}
    post = await search(stack.discovery, "a story of", filters=filters, page_size=7, page=1)
    get = await stack.discovery.get(
        "/api/v1/search", params={"q": "a story of", "genres": item.genres[:1], "page_size": 7}
    )
    assert get.status_code == 200, get.text
    assert ids(get.json()) == ids(post)
    assert get.json()["facets"] == post["facets"]
    assert get.json()["total"] == post["total"]


async def test_validation_and_paging(stack: Stack) -> None:
    bad_bodies: list[dict[str, Any]] = [
        {"query": ""},
        {"query": "   "},
        {"query": "x" * 501},
        {"query": "ok", "page_size": 101},
        {"query": "ok", "page": 0},
        {"query": "ok", "filters": {"genres": ["Telenovela-noir"]}},
        {"query": "ok", "filters": {"platforms": ["myspace"]}},
        {"query": "ok", "filters": {"monetization": ["barter"]}},
        {"query": "ok", "filters": {"kind": "opera"}},
    ]
    for body in bad_bodies:
        response = await stack.discovery.post("/api/v1/search", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
    bad_params: list[dict[str, Any]] = [
        {"q": ""},
        {"q": "x" * 501},
        {"q": "ok", "page_size": 101},
        {"q": "ok", "page": 0},
        {"q": "ok", "genres": "Telenovela-noir"},
        {"q": "ok", "platforms": "myspace"},
        {"q": "ok", "monetization": "barter"},
        {"q": "ok", "kind": "opera"},
    ]
    for params in bad_params:
        response = await stack.discovery.get("/api/v1/search", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.json()["errors"]

    first = await search(stack.discovery, "the", page_size=10)
    assert first["total"] > 0
    past = await search(stack.discovery, "the", page_size=10, page=first["total"] // 10 + 2)
    assert past["results"] == []
    assert past["total"] == first["total"]


async def metric(client: httpx.AsyncClient, name: str) -> float:
    body = (await client.get("/metrics")).text
    match = re.search(rf"^{name} ([0-9.e+]+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_repeated_search_is_cached_until_the_catalog_changes(stack: Stack) -> None:
    item = stack.titles[1]
    hits = await metric(stack.discovery, "mg_search_cache_hits_total")
    first = await search(stack.discovery, item.title)
    assert first["cached"] is False
    # Spelled differently, asked for the same: one entry.
    second = await search(stack.discovery, f"  {item.title.upper()} ")
    assert second["cached"] is True
    assert ids(second) == ids(first)
    assert await metric(stack.discovery, "mg_search_cache_hits_total") == hits + 1
    other_region = await search(stack.discovery, item.title, region="GB")
    assert other_region["cached"] is False

    # New titles arrive: catalog events bump the generation and the entry stops being served.
    await wait_for_job(stack.ingestion, await start_ingest(stack.ingestion, "later"))
    deadline = time.monotonic() + 10
    while (await search(stack.discovery, item.title))["cached"]:
        assert time.monotonic() < deadline, "the cached search outlived a catalog change"
        await asyncio.sleep(0.2)


async def test_result_cards_show_the_catalog_entry_in_the_region(stack: Stack) -> None:
    found = await search(stack.discovery, "the", page_size=20, region="US")
    assert found["results"]
    for card in found["results"]:
        details = (await stack.discovery.get(f"/api/v1/content/{card['id']}")).json()
        for name in ("kind", "title", "original_title", "year", "genres", "runtime_minutes", "rating"):
            assert card[name] == details[name], name
        assert card["vote_count"] == details["vote_count"]
        assert card["is_original"] == details["is_original"]
        assert card["certification"] == details["certifications"].get("US")
        assert card["poster"] == details["images"].get("poster")
        assert card["region"] == "US"
        watchable = (await stack.discovery.get(f"/api/v1/content/{card['id']}/availability?region=US")).json()
        assert {(o["platform"], o["monetization"]) for o in card["offers"]} == {
            (o["platform"], o["monetization"]) for group in watchable["groups"] for o in group["offers"]
        }
