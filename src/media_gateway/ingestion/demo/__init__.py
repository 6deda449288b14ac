"""The demo catalog: TMDB 5000 movies with generated availability, as raw per-platform feed files."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from media_gateway.core.settings import Settings
from media_gateway.ingestion.datasets import TMDB_ATTRIBUTION, load_tmdb5000, tmdb5000_dir
from media_gateway.ingestion.demo.generator import generate_demo_feeds
from media_gateway.ingestion.demo.platforms import DEMO_PLATFORMS, FREE_PLATFORM

FEED_SUFFIX = ".jsonl"
README_NAME = "README.txt"
DEMO_NOTICE = (
    "Demo data. Titles and their metadata come from TMDB 5000; which services carry them, where, at what "
    "price and for how long is generated and does not describe any real service's catalogue."
)
DEMO_README = f"""Media Gateway demo catalog feeds
================================

{DEMO_NOTICE}

{TMDB_ATTRIBUTION}

Each <platform>.jsonl file holds one raw catalog record per line, in the shape that platform's
normalizer reads (documented in media_gateway/ingestion/normalizers/<platform>.py; {FREE_PLATFORM}.jsonl
uses the generic aggregator shape). The files are generated deterministically by
media_gateway.ingestion.demo; availability windows are placed relative to the day they were generated.
"""


def write_feed_files(directory: Path, feeds: Mapping[str, list[dict[str, Any]]]) -> dict[str, Path]:
    """Write `<platform>.jsonl` per feed, then README.txt last: its presence means the set is complete."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for platform, records in sorted(feeds.items()):
        target = directory / f"{platform}{FEED_SUFFIX}"
        staged = target.with_name(f".{target.name}.tmp")
        with staged.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                handle.write("\n")
        os.replace(staged, target)
        written[platform] = target
    readme = directory / README_NAME
    staged = readme.with_name(f".{README_NAME}.tmp")
    staged.write_text(DEMO_README, encoding="utf-8")
    os.replace(staged, readme)
    return written


async def write_demo_feeds(
    settings: Settings, directory: Path, reference_date: date | None = None
) -> dict[str, int]:
    """Obtain TMDB 5000 (cached under the data dir), generate the feeds and write them to `directory`.

    Returns the number of records per platform."""
    movies = await load_tmdb5000(tmdb5000_dir(settings))
    if settings.ingestion.demo_titles:
        movies = movies[: settings.ingestion.demo_titles]

    def build() -> dict[str, int]:
        feeds = generate_demo_feeds(movies, reference_date)
        write_feed_files(directory, feeds)
        return {platform: len(records) for platform, records in feeds.items()}

    return await asyncio.to_thread(build)


__all__ = [
    "DEMO_NOTICE",
    "DEMO_PLATFORMS",
    "DEMO_README",
    "FREE_PLATFORM",
    "generate_demo_feeds",
    "write_demo_feeds",
    "write_feed_files",
]
