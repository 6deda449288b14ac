"""Raw platform feeds on disk: a directory of `<platform>.jsonl` files, or one such file.

Each line holds one record in the platform's own raw shape. Files are read in name order, in batches
of `batch_size` records that never span two files (a batch has one platform). The cursor
`"<file name>:<line>"` says every line up to and including `line` of that file, and every file whose
name sorts before it, has been ingested; a re-run resumes right after it. So a feed may grow by
appending lines to its last file or adding files whose names sort later; rewriting lines that were
already committed, or adding a file that sorts earlier, is not picked up until the cursor is reset
(`repository.delete_cursor`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.core.settings import Settings
from media_gateway.ingestion.schemas import RawBatch
from media_gateway.ingestion.sources.base import SourceStats
from media_gateway.ingestion.sources.repository import get_cursor, set_cursor

logger = logging.getLogger(__name__)

FEED_SUFFIX = ".jsonl"
# `ingestion.source_cursors.source` is VARCHAR(120).
MAX_SOURCE_NAME = 120


@dataclass
class _Chunk:
    records: list[dict[str, Any]] = field(default_factory=list)
    # The last line consumed (1-based); the batch's cursor points here.
    last_line: int = 0
    problems: list[str] = field(default_factory=list)
    eof: bool = False


def parse_file_cursor(cursor: str) -> tuple[str, int]:
    file_name, sep, line = cursor.rpartition(":")
    if not sep or not file_name or not line.isdigit():
        raise ValueError(f"not a file feed cursor (expected '<file>:<line>'): {cursor!r}")
    return file_name, int(line)


def default_source_name(path: Path) -> str:
    # Two feeds in different directories with the same base name must not share a cursor.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    return f"file:{path.name[: MAX_SOURCE_NAME - 18]}:{digest}"


class FileFeedSource:
    """A `CatalogSource` over JSON-lines files; the platform is the file name without `.jsonl`."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        path: str | Path,
        *,
        name: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        """`name` keys the persisted cursor (default: derived from the absolute path);
        `batch_size` defaults to `ingestion.batch_size`."""
        batch_size = settings.ingestion.batch_size if batch_size is None else batch_size
        if not 1 <= batch_size <= 10_000:
            raise ValueError("batch_size must be between 1 and 10,000 (the RawBatch limit)")
        self.path = Path(path)
        self.name = name or default_source_name(self.path)
        if len(self.name) > MAX_SOURCE_NAME:
            raise ValueError(f"source name longer than {MAX_SOURCE_NAME} characters")
        self.batch_size = batch_size
        self.stats = SourceStats()
        self._engine = engine

    async def fetch(self) -> AsyncIterator[RawBatch]:
        self.stats = SourceStats()
        async with self._engine.connect() as conn:
            stored = await get_cursor(conn, self.name)
        resume_file, resume_line = parse_file_cursor(stored) if stored else (None, 0)
        files = await asyncio.to_thread(self._feed_files)
        for feed in files:
            if resume_file is not None and feed.name < resume_file:
                continue
            skip = resume_line if feed.name == resume_file else 0
            async for batch in self._read_feed(feed, skip):
                yield batch
        self._report()

    async def commit(self, batch: RawBatch) -> None:
        if batch.cursor is None:
            return
        parse_file_cursor(batch.cursor)  # refuse to persist something the next run cannot resume from
        async with self._engine.begin() as conn:
            await set_cursor(conn, self.name, batch.cursor)

    def _feed_files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise FileNotFoundError(f"feed path does not exist: {self.path}")
        return sorted(
            (p for p in self.path.iterdir() if p.name.endswith(FEED_SUFFIX) and p.is_file()),
            key=lambda p: p.name,
        )

    async def _read_feed(self, feed: Path, skip: int) -> AsyncIterator[RawBatch]:
        platform = feed.name.removesuffix(FEED_SUFFIX)
        if not platform:
            self.stats.skip(f"{feed.name}: no platform in the file name")
            return
        handle = await asyncio.to_thread(feed.open, "rb")
        try:
            line = await asyncio.to_thread(_skip_lines, handle, skip)
            while True:
                # File reads and JSON parsing happen off the event loop: a feed file can be large.
                chunk = await asyncio.to_thread(_read_chunk, handle, feed.name, line, self.batch_size)
                for problem in chunk.problems:
                    self.stats.skip(problem)
                line = chunk.last_line
                if chunk.records:
                    self.stats.batches += 1
                    self.stats.records += len(chunk.records)
                    yield RawBatch(
                        source=self.name,
                        platform=platform,
                        records=chunk.records,
                        cursor=f"{feed.name}:{line}",
                    )
                if chunk.eof:
                    return
        finally:
            await asyncio.to_thread(handle.close)

    def _report(self) -> None:
        counts = self.stats.as_counts()
        if self.stats.skipped:
            logger.warning(
                "file feed had unusable lines",
                extra={"source": self.name, **counts, "problems": self.stats.problems[:10]},
            )
        else:
            logger.info("file feed read", extra={"source": self.name, **counts})


def _skip_lines(handle: BinaryIO, count: int) -> int:
    skipped = 0
    while skipped < count and handle.readline():
        skipped += 1
    return skipped


def _read_chunk(handle: BinaryIO, file_name: str, last_line: int, want: int) -> _Chunk:
    chunk = _Chunk(last_line=last_line)
    while len(chunk.records) < want:
        raw = handle.readline()
        if not raw:
            chunk.eof = True
            break
        text = raw.strip()
        if not text:
            chunk.last_line += 1
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if not raw.endswith(b"\n"):
                # A last line without its newline may still be being written: leave it (and the
                # cursor) where it is, so the next run reads it whole instead of skipping it.
                chunk.problems.append(f"{file_name}:{chunk.last_line + 1}: incomplete last line, left")
                chunk.eof = True
                break
            chunk.last_line += 1
            chunk.problems.append(f"{file_name}:{chunk.last_line}: invalid JSON ({exc})")
            continue
        chunk.last_line += 1
        if isinstance(value, dict):
            chunk.records.append(value)
        else:
            chunk.problems.append(f"{file_name}:{chunk.last_line}: not a JSON object")
    return chunk
