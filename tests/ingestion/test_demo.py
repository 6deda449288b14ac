"""The generated demo feeds: deterministic, every record ingestible, and real work for entity resolution."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from media_gateway.catalog.genres import CANONICAL_GENRES
from media_gateway.catalog.schemas import PLATFORMS, Monetization, NormalizedContent, normalize_title
from media_gateway.ingestion.datasets import TMDB_ATTRIBUTION, TmdbMovie
from media_gateway.ingestion.demo import DEMO_PLATFORMS, generate_demo_feeds, write_demo_feeds
from media_gateway.ingestion.normalizers import GenericNormalizer, get_normalizer
from tests.ingestion.tmdb_data import dataset_settings, tmdb_movies

REFERENCE = date(2026, 3, 15)
CURRENCY = {"US": "USD", "GB": "GBP", "CA": "CAD", "DE": "EUR", "ES": "EUR"}
Feeds = dict[str, list[dict[str, Any]]]


@functools.cache
def feeds() -> Feeds:
    return generate_demo_feeds(tmdb_movies(), REFERENCE)


@functools.cache
def normalized() -> dict[str, list[NormalizedContent]]:
    out = {}
    for platform, records in feeds().items():
        result = get_normalizer(platform).normalize_batch(records)
        assert result.rejected == [], (platform, result.rejected[:3])
        out[platform] = result.items
    return out


@functools.cache
def listings_by_movie() -> dict[int, list[NormalizedContent]]:
    """Normalized items grouped by the TMDB movie they were made from (original title and overview
    pass through unchanged and are unique in TMDB 5000)."""
    movie_of: dict[tuple[str | None, str | None], int] = {
        (m.original_title, m.overview): m.tmdb_id for m in tmdb_movies()
    }
    grouped: dict[int, list[NormalizedContent]] = defaultdict(list)
    for items in normalized().values():
        for item in items:
            grouped[movie_of[item.original_title, item.overview]].append(item)
    return grouped


def digest(data: Feeds) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def test_the_same_movies_and_date_give_the_same_feeds() -> None:
    again = generate_demo_feeds(list(reversed(tmdb_movies())), REFERENCE)

    assert json.dumps(again, ensure_ascii=False) == json.dumps(feeds(), ensure_ascii=False)


def test_the_feeds_do_not_depend_on_the_hash_seed() -> None:
    script = (
        "import datetime, hashlib, json\n"
        "from media_gateway.ingestion.demo import generate_demo_feeds\n"
        "from tests.ingestion.tmdb_data import tmdb_movies\n"
        f"data = generate_demo_feeds(tmdb_movies(), datetime.date.fromisoformat('{REFERENCE}'))\n"
        "print(hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[2]
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }

    assert digests == {digest(feeds())}


def test_a_later_reference_date_moves_only_the_windows() -> None:
    later = generate_demo_feeds(tmdb_movies(), REFERENCE + timedelta(days=30))

    assert {p: len(r) for p, r in later.items()} == {p: len(r) for p, r in feeds().items()}
    assert later["netflix"][0]["netflixId"] == feeds()["netflix"][0]["netflixId"]
    assert later["netflix"][0]["countries"] != feeds()["netflix"][0]["countries"]


def test_ten_platforms_each_in_its_own_shape() -> None:
    assert set(feeds()) == set(DEMO_PLATFORMS)
    assert len(DEMO_PLATFORMS) == 10
    assert set(PLATFORMS) < set(DEMO_PLATFORMS)
    (extra,) = set(DEMO_PLATFORMS) - set(PLATFORMS)
    assert isinstance(get_normalizer(extra), GenericNormalizer)
    assert all(len(records) > 200 for records in feeds().values())
    assert "netflixId" in feeds()["netflix"][0]
    assert "gti" in feeds()["prime_video"][0]
    assert "streamingOptions" in feeds()[extra][0]


def test_every_record_normalizes_and_has_offers() -> None:
    for platform, items in normalized().items():
        assert len(items) == len(feeds()[platform])
        assert all(item.offers for item in items), platform
        assert len({item.source_id for item in items}) == len(items), f"{platform} ids are unique"


def test_every_title_is_on_a_platform_and_about_a_third_on_several() -> None:
    grouped = listings_by_movie()
    counts = Counter(len(items) for items in grouped.values())

    assert len(grouped) == len(tmdb_movies()) == 4803
    assert 0.28 < (len(grouped) - counts[1]) / len(grouped) < 0.40
    for items in grouped.values():
        assert len({item.source_platform for item in items}) == len(items)


def test_other_platforms_list_the_same_title_differently() -> None:
    movies = {m.tmdb_id: m for m in tmdb_movies()}
    retitled = refolded = reyeared = without_tmdb = 0
    for tmdb_id, items in listings_by_movie().items():
        movie = movies[tmdb_id]
        for item in items[1:] if len(items) > 1 else []:
            retitled += item.title != movie.title
            refolded += normalize_title(item.title) != normalize_title(movie.title)
            reyeared += item.year is not None and movie.year is not None and item.year != movie.year
            without_tmdb += not any(e.id_type == "tmdb" for e in item.external_ids)
    assert retitled > 400
    assert refolded > 150  # not only case and punctuation: articles moved, subtitles dropped, years added
    assert reyeared > 150
    assert without_tmdb > 400


def test_windows_include_new_arrivals_and_titles_leaving_soon() -> None:
    offers = [o for items in normalized().values() for item in items for o in item.offers]
    since = [o.available_since for o in offers]
    expiring = [o.expires_on for o in offers if o.expires_on is not None]

    assert all(s is not None and s <= REFERENCE for s in since)
    assert all(e > REFERENCE for e in expiring)
    new = sum(1 for s in since if s is not None and s >= REFERENCE - timedelta(days=14))
    leaving = sum(1 for e in expiring if e <= REFERENCE + timedelta(days=14))
    assert 0.02 < new / len(offers) < 0.15
    assert 0.02 < leaving / len(offers) < 0.15


def test_prices_tiers_and_regions_are_plausible() -> None:
    tiers: dict[str, set[str | None]] = defaultdict(set)
    regions: dict[str, set[str]] = defaultdict(set)
    for platform, items in normalized().items():
        for offer in (o for item in items for o in item.offers):
            tiers[platform].add(offer.tier)
            regions[platform].add(offer.region)
            if offer.monetization in (Monetization.RENT, Monetization.BUY):
                assert platform in ("prime_video", "apple_tv_plus", "youtube")
                assert offer.currency == CURRENCY[offer.region]
                assert offer.price is not None
                assert Decimal("2") < offer.price < Decimal("30")
            elif offer.monetization is not Monetization.ADDON:
                assert (offer.price, offer.currency) == (None, None)
    assert tiers["hulu"] == {"ad-supported", "ad-free", "live-tv"}
    assert tiers["paramount_plus"] == {"essential", "premium", "showtime"}
    assert tiers["peacock"] == {"premium", "premium-plus", "free"}
    assert tiers["hbo_max"] == {"ad-supported", "ad-free"}
    assert tiers["apple_tv_plus"] == {"premium", None}
    assert tiers["prime_video"] == {"prime", "freevee", "mgmplus", None}
    assert all("US" in r for r in regions.values())
    assert set().union(*regions.values()) == set(CURRENCY)


def test_originals_exist_and_belong_to_one_platform() -> None:
    originals = [
        (platform, item) for platform, items in normalized().items() for item in items if item.is_original
    ]
    grouped = listings_by_movie()
    movie_of: dict[tuple[str | None, str | None], int] = {
        (m.original_title, m.overview): m.tmdb_id for m in tmdb_movies()
    }

    assert len({platform for platform, _ in originals}) >= 6
    assert 50 < len(originals) < 600
    for _, item in originals:
        assert len(grouped[movie_of[item.original_title, item.overview]]) == 1
    hulu = [item for platform, item in originals if platform == "hulu"]
    assert all("Drama" in item.genres for item in hulu)  # "Hulu Originals" is Drama


def test_metadata_survives_the_round_trip_through_each_shape() -> None:
    movies: dict[int, TmdbMovie] = {m.tmdb_id: m for m in tmdb_movies()}
    for tmdb_id, items in listings_by_movie().items():
        movie = movies[tmdb_id]
        for item in items:
            assert item.directors == list(movie.directors)
            assert [c.name for c in item.cast] == [c.name for c in movie.cast]
            if movie.runtime_minutes is not None:
                assert item.runtime_minutes is not None
                assert abs(item.runtime_minutes - movie.runtime_minutes) <= 2
            if item.rating is not None:
                assert abs(item.rating - movie.vote_average) <= 0.02
            canonical = set(movie.genres) & set(CANONICAL_GENRES)
            assert canonical <= set(item.genres), "no genre is lost"
            # Only labels that pair genres ("Action & Adventure", "Sci-Fi & Fantasy") or "Hulu Originals"
            # (Drama) add any.
            assert set(item.genres) - canonical <= {
                "Action",
                "Adventure",
                "Science Fiction",
                "Fantasy",
                "Drama",
            }


async def test_write_demo_feeds_writes_jsonl_per_platform_and_the_attribution(tmp_path: Path) -> None:
    target = tmp_path / "feeds"

    counts = await write_demo_feeds(dataset_settings(), target, REFERENCE)

    assert counts == {platform: len(records) for platform, records in feeds().items()}
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [f"{platform}.jsonl" for platform in DEMO_PLATFORMS] + ["README.txt"]
    )
    for platform, records in feeds().items():
        lines = (target / f"{platform}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(records)
        assert json.loads(lines[0]) == records[0]
    readme = (target / "README.txt").read_text(encoding="utf-8")
    assert TMDB_ATTRIBUTION in readme
    assert "not endorsed or certified by TMDB" in readme
    assert "Demo data" in readme
    assert "generated" in readme
