"""`KeywordIndex`: the catalog's keyword index (tantivy, on disk, in-process).

A full build writes a new generation directory and swaps it in only once committed, so a reader
never sees a half-built index. Incremental upserts and deletes go to the live generation through
its single writer (tantivy allows one per index) and are visible as soon as they return. All
tantivy work runs in worker threads; writes are serialized by one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tantivy

from media_gateway.discovery.search.analysis import (
    PERSON_KEY_SEPARATOR,
    build_schema,
    register_analyzers,
    to_json,
    words,
)
from media_gateway.discovery.search.documents import (
    BuildStats,
    KeywordDoc,
    KeywordFilters,
    KeywordPage,
    OfferKey,
    Suggestion,
)
from media_gateway.discovery.search.metadata import TitleMeta, title_meta
from media_gateway.discovery.search.queries import prefix_tokens, search_query
from media_gateway.discovery.search.suggest import autocomplete

__all__ = [
    "BuildStats",
    "KeywordDoc",
    "KeywordFilters",
    "KeywordIndex",
    "KeywordPage",
    "OfferKey",
    "Suggestion",
]

logger = logging.getLogger(__name__)

GENERATION_PREFIX = "gen-"
CURRENT_LINK = "current"
# Documents handed to a worker thread at a time while building from an async source.
BUILD_CHUNK = 2_000
MAX_LIMIT = 1_000
MAX_OFFSET = 10_000
# Inputs this short match a large part of the term dictionary on every keystroke, and are few:
# their suggestions are kept until the next write.
CACHED_PREFIX_CHARS = 3
CACHE_ENTRIES = 4_096
MIN_HEAP_PER_THREAD = 16_000_000
# More threads help a full build little past this (the catalog read and JSON are one thread).
MAX_WRITER_THREADS = 4
MAX_NAME_WORDS = 5
MAX_NAMESAKES = 8


@dataclass(frozen=True, slots=True)
class _Generation:
    index: tantivy.Index
    writer: tantivy.IndexWriter
    directory: Path
    # Every indexed document's metadata, by id; changed only together with the index.
    meta: dict[uuid.UUID, TitleMeta]
    # The same by id as text (as indexed, and canonical): search ranks ids as the engines return
    # them, and a str key hashes and compares in C where a UUID does both in Python.
    by_key: dict[str, TitleMeta]
    # Document id <-> the `ordinal` fast field. An id keeps its number for the generation's life; a
    # number is never reused, so a search on a searcher older than a delete finds no id, not a wrong one.
    ordinals: dict[str, int] = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def ordinal(self, doc_id: str) -> int:
        """`doc_id`'s number, assigned now if it has none (writer thread only)."""
        number = self.ordinals.get(doc_id)
        if number is None:
            number = next(self.numbers)
            self.ordinals[doc_id] = number
            self.ids[number] = doc_id
        return number

    def forget(self, doc_id: str) -> None:
        number = self.ordinals.pop(doc_id, None)
        if number is not None:
            self.ids.pop(number, None)


def indexing_threads(heap_bytes: int, wanted: int | None = None) -> int:
    """Indexing threads for a writer of `heap_bytes`: tantivy refuses under 15 MB per thread, and
    lets 0 mean one per CPU, which a many-core machine would turn into exactly that refusal."""
    most = max(1, heap_bytes // MIN_HEAP_PER_THREAD)
    return max(1, min(wanted or os.cpu_count() or 1, most, MAX_WRITER_THREADS))


class KeywordIndex:
    def __init__(
        self, path: Path | str, *, writer_heap_bytes: int = 64_000_000, writer_threads: int | None = None
    ) -> None:
        """`path` holds the index generations and a `current` link to the live one.

        One process per `path`: a build removes the generations it does not serve."""
        self._root = Path(path)
        self._schema = build_schema()
        self._heap = writer_heap_bytes
        self._threads = indexing_threads(writer_heap_bytes, writer_threads)
        self._live: _Generation | None = None
        self._write_lock = asyncio.Lock()
        # Bumped after every commit is visible; cached suggestions from older versions are stale.
        self._version = 0
        self._short_prefixes: dict[tuple[str, int], tuple[int, tuple[Suggestion, ...]]] = {}
        self._listeners: list[Callable[[Sequence[str] | None], None]] = []

    def add_listener(self, listener: Callable[[Sequence[str] | None], None]) -> None:
        """Call `listener` (on the event loop) after every write with the ids it rewrote, or with None
        after a full build."""
        self._listeners.append(listener)

    def _notify(self, ids: Sequence[str] | None) -> None:
        for listener in self._listeners:
            listener(ids)

    @property
    def schema(self) -> tantivy.Schema:
        return self._schema

    @property
    def ready(self) -> bool:
        return self._live is not None

    @property
    def tantivy_index(self) -> tantivy.Index | None:
        """The live tantivy index, for diagnostics and benchmarks; None before the first build."""
        live = self._live
        return live.index if live else None

    def metadata(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, TitleMeta]:
        """The metadata of those of `ids` that are indexed, read from memory."""
        live = self._live
        if live is None:
            return {}
        meta = live.meta
        return {i: m for i in ids if (m := meta.get(i)) is not None}

    def metadata_by_key(self, keys: Iterable[str]) -> dict[str, TitleMeta]:
        """`metadata` by id as text (as indexed, or canonical UUID text)."""
        live = self._live
        if live is None:
            return {}
        by_key = live.by_key
        return {k: m for k in keys if (m := by_key.get(k)) is not None}

    def all_metadata(self) -> Iterable[TitleMeta]:
        live = self._live
        return () if live is None else live.meta.values()

    @property
    def directory(self) -> Path | None:
        live = self._live
        return live.directory if live else None

    # -- writing ----------------------------------------------------------------------------------

    async def build(self, docs: Iterable[KeywordDoc] | AsyncIterable[KeywordDoc]) -> BuildStats:
        """Index `docs` from scratch into a new generation and make it the live one."""
        started = time.perf_counter()
        async with self._write_lock:
            fresh = await asyncio.to_thread(self._new_generation)
            try:
                count = await self._fill(fresh, docs)
                await asyncio.to_thread(_commit, fresh)
            except BaseException:
                await asyncio.to_thread(_discard, fresh)
                raise
            previous, self._live = self._live, fresh
            self._version += 1
            self._notify(None)
            await asyncio.to_thread(self._retire, previous, fresh)
        stats = BuildStats(documents=count, seconds=time.perf_counter() - started, path=str(fresh.directory))
        logger.info("keyword index built", extra={"documents": count, "seconds": round(stats.seconds, 3)})
        return stats

    async def upsert(self, docs: Iterable[KeywordDoc]) -> int:
        """Add or replace `docs` (by id); visible to searches when this returns."""
        return await self.apply(upserts=docs)

    async def delete(self, ids: Iterable[str]) -> int:
        return await self.apply(deletes=ids)

    async def apply(self, upserts: Iterable[KeywordDoc] = (), deletes: Iterable[str] = ()) -> int:
        """Upserts and deletes in one commit; returns how many operations were applied."""
        added = list(upserts)
        removed = [i for i in dict.fromkeys(deletes) if i]
        if not added and not removed:
            return 0
        async with self._write_lock:
            if self._live is None:
                self._live = await asyncio.to_thread(self._new_generation)
            try:
                await asyncio.to_thread(_write, self._live, added, removed)
            finally:
                self._version += 1
                self._notify([*(doc.id for doc in added), *removed])
        return len(added) + len(removed)

    async def aclose(self) -> None:
        async with self._write_lock:
            live, self._live = self._live, None
            if live is not None:
                await asyncio.to_thread(live.writer.wait_merging_threads)

    def _new_generation(self) -> _Generation:
        self._root.mkdir(parents=True, exist_ok=True)
        directory = self._root / f"{GENERATION_PREFIX}{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        directory.mkdir()
        index = tantivy.Index(self._schema, str(directory), reuse=False)
        register_analyzers(index)
        # Reloaded explicitly after each commit, so a write is searchable the moment it returns.
        index.config_reader("manual")
        writer = index.writer(self._heap, self._threads)
        generation = _Generation(index=index, writer=writer, directory=directory, meta={}, by_key={})
        _commit(generation)
        return generation

    async def _fill(
        self, generation: _Generation, docs: Iterable[KeywordDoc] | AsyncIterable[KeywordDoc]
    ) -> int:
        if not isinstance(docs, AsyncIterable):
            return await asyncio.to_thread(_add_all, generation, docs)
        count = 0
        chunk: list[KeywordDoc] = []
        async for doc in docs:
            chunk.append(doc)
            if len(chunk) >= BUILD_CHUNK:
                count += await asyncio.to_thread(_add_all, generation, chunk)
                chunk = []
        return count + await asyncio.to_thread(_add_all, generation, chunk)

    def _retire(self, previous: _Generation | None, live: _Generation) -> None:
        """Point `current` at the live generation, then drop the old ones.

        Searches still running on the previous generation keep working: its segment files stay
        mapped until their searcher is gone, even once unlinked."""
        link = self._root / CURRENT_LINK
        temporary = self._root / f".{CURRENT_LINK}-{uuid.uuid4().hex[:8]}"
        os.symlink(live.directory.name, temporary)
        os.replace(temporary, link)
        if previous is not None:
            with contextlib.suppress(Exception):
                previous.writer.wait_merging_threads()
        for entry in self._root.iterdir():
            if entry.name.startswith(GENERATION_PREFIX) and entry != live.directory:
                shutil.rmtree(entry, ignore_errors=True)

    # -- reading ----------------------------------------------------------------------------------

    async def search(
        self, text: str, filters: KeywordFilters | None = None, limit: int = 20, offset: int = 0
    ) -> KeywordPage:
        """Best matches of `text` (BM25 over the boosted fields, typo tolerant, whole-title tiers,
        lifted by popularity at most twofold) that pass `filters`. Blank text browses: everything
        passing the filters, most popular first."""
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, min(offset, MAX_OFFSET))
        return await asyncio.to_thread(self.search_sync, text, filters, limit, offset)

    def search_sync(self, text: str, filters: KeywordFilters | None, limit: int, offset: int) -> KeywordPage:
        """`search` on the calling thread (for benchmarks and thread pools that are already off the loop)."""
        live = self._live
        if live is None:
            return KeywordPage([], 0)
        searcher = live.index.searcher()
        query = search_query(self._schema, searcher, text, filters)
        result = searcher.search(query, limit, count=True, offset=offset, weight_by_field="prior")
        found = result.hits
        ordinals = searcher.fast_field_values("ordinal", [address for _, address in found]) if found else []
        ids = live.ids
        hits = [
            (doc_id, float(score))
            for (score, _), number in zip(found, ordinals, strict=True)
            if (doc_id := ids.get(number)) is not None  # type: ignore[arg-type]
        ]
        # `count` exists at runtime; the 0.27 type stub leaves it out.
        total = result.count  # type: ignore[attr-defined]
        return KeywordPage(hits, int(total or 0))

    def person_terms(self, name: str) -> list[str]:
        """The `people_key` terms of the people whose whole name is `name` (case, accents and
        punctuation aside): several when namesakes are spelled differently, none for a non-name.
        A dictionary walk over one prefix; cheap enough for the event loop."""
        live = self._live
        tokens = words(name)
        if live is None or not tokens or len(tokens) > MAX_NAME_WORDS:
            return []
        prefix = f"{' '.join(tokens)}{PERSON_KEY_SEPARATOR}0"
        searcher = live.index.searcher()
        return [term for term, _ in searcher.terms_with_prefix("people_key", prefix, limit=MAX_NAMESAKES)]

    async def autocomplete(self, prefix: str, limit: int = 10) -> list[Suggestion]:
        """Titles and people matching what was typed so far: every word, the last as a prefix, one
        typo allowed in words of four characters or more. Best first: whole title or name equal to
        the input, then starting with it, then containing its words; popularity lifts at most twofold."""
        limit = max(1, min(limit, MAX_LIMIT))
        return await asyncio.to_thread(self.autocomplete_sync, prefix, limit)

    def autocomplete_sync(self, prefix: str, limit: int) -> list[Suggestion]:
        typed = prefix_tokens(prefix)
        # Read before the searcher: an entry is only ever stored under a version no newer than
        # the searcher that computed it, so no write can hide behind a cached answer.
        version = self._version
        live = self._live
        if live is None or not typed:
            return []
        key = (" ".join(typed), limit)
        cacheable = len(key[0]) <= CACHED_PREFIX_CHARS
        if cacheable:
            cached = self._short_prefixes.get(key)
            if cached is not None and cached[0] == version:
                return list(cached[1])
        found = autocomplete(live.index.searcher(), self._schema, typed, limit)
        if cacheable:
            if len(self._short_prefixes) >= CACHE_ENTRIES:
                self._short_prefixes.clear()
            self._short_prefixes[key] = (version, tuple(found))
        return found

    async def count(self) -> int:
        live = self._live
        return 0 if live is None else int(live.index.searcher().num_docs)


def _first(doc: tantivy.Document, field: str) -> str:
    value = doc.get_first(field)
    return "" if value is None else str(value)


def _add_all(generation: _Generation, docs: Iterable[KeywordDoc]) -> int:
    # The generation is not live yet: nobody reads its metadata while it fills.
    count = 0
    for doc in docs:
        generation.writer.add_json(to_json(doc, generation.ordinal(doc.id)))
        meta = title_meta(doc)
        if meta is not None:
            _remember(generation, doc.id, meta)
        count += 1
    return count


def _commit(generation: _Generation) -> None:
    generation.writer.commit()
    generation.index.reload()


def _write(generation: _Generation, upserts: Sequence[KeywordDoc], deletes: Sequence[str]) -> None:
    writer = generation.writer
    bodies = [(doc.id, to_json(doc, generation.ordinal(doc.id))) for doc in upserts]
    metas = [(doc.id, m) for doc in upserts if (m := title_meta(doc)) is not None]
    try:
        # A delete applies to documents added before it, so delete-then-add replaces.
        for doc_id in deletes:
            writer.delete_documents_by_term("id", doc_id)
        for doc_id, body in bodies:
            writer.delete_documents_by_term("id", doc_id)
            writer.add_json(body)
        _commit(generation)
    except BaseException:
        # Leave the writer clean for the next batch rather than commit half of this one with it.
        with contextlib.suppress(Exception):
            writer.rollback()
        raise
    # Single dict operations, atomic for readers on other threads; right after the commit that
    # made the documents searchable.
    for doc_id in deletes:
        generation.forget(doc_id)
        with contextlib.suppress(ValueError):
            gone = generation.meta.pop(uuid.UUID(doc_id), None)
            generation.by_key.pop(doc_id, None)
            if gone is not None:
                generation.by_key.pop(str(gone.id), None)
    for doc_id, meta in metas:
        _remember(generation, doc_id, meta)


def _remember(generation: _Generation, doc_id: str, meta: TitleMeta) -> None:
    generation.meta[meta.id] = meta
    generation.by_key[doc_id] = meta
    generation.by_key[str(meta.id)] = meta


def _discard(generation: _Generation) -> None:
    with contextlib.suppress(Exception):
        generation.writer.rollback()
        generation.writer.wait_merging_threads()
    shutil.rmtree(generation.directory, ignore_errors=True)
