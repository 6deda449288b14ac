"""A read-only `VectorIndex` that any number of processes can hold: each keeps a private qdrant-edge
shard, loaded at `open()` from a table of vectors in PostgreSQL and kept current by polling it.

The table (for the catalog: `catalog.content_vectors`, written by ingestion) gives every write a new,
commit-ordered `seq`; a replica asks for rows after the last `seq` it applied. A row carries the
vector and payload, or no vector when the item was deleted or its vector was made by another model
than this replica embeds queries with (such a vector would be compared with queries of another
space): either way the point leaves the replica. Queries never reach PostgreSQL, only the local shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as MetricCounter

from media_gateway.core.process_dirs import claim_private_dir, release_private_dir
from media_gateway.core.settings import VectorSettings
from media_gateway.core.vectors.base import (
    CONTENT_PAYLOAD_INDEXES,
    PayloadFieldType,
    VectorFilter,
    VectorHit,
    VectorIndexError,
    VectorPoint,
)
from media_gateway.core.vectors.edge import EdgeVectorIndex

log = logging.getLogger("media_gateway.core.vectors.replica")

# Rows per read: ~1.5 MB of 384-d vectors, a few ms of engine writes.
PAGE_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class VectorChange:
    seq: int
    id: uuid.UUID
    # What the row holds, whether or not it is this reader's.
    model: str
    dimension: int
    # float32 little-endian; None when the item is deleted or the vector is not of the reader's model.
    vector: bytes | None
    payload: dict[str, Any] | None
    # The item has no vector at all (a tombstone).
    deleted: bool
    # Seconds since the row was written, by the database's clock.
    age_sec: float


class VectorChangeSource(Protocol):
    async def changes_since(self, after: int, limit: int, model: str, dimension: int) -> list[VectorChange]:
        """Rows written after `after`, oldest first; vectors only for `model` and `dimension`."""
        ...


@dataclass(frozen=True)
class SyncStats:
    upserted: int = 0
    deleted: int = 0
    seconds: float = 0.0


class _ReplicaMetrics:
    def __init__(self, registry: CollectorRegistry, replica: ReplicaVectorIndex) -> None:
        self.seq = Gauge("mg_vector_replica_seq", "Last change sequence applied.", registry=registry)
        staleness = Gauge(
            "mg_vector_replica_staleness_seconds",
            "Seconds since the replica last found it had every change.",
            registry=registry,
        )
        staleness.set_function(replica.staleness_sec)
        self.delay = Gauge(
            "mg_vector_replica_apply_delay_seconds",
            "How long after its write the last applied change reached this process.",
            registry=registry,
        )
        self.foreign = Gauge(
            "mg_vector_replica_foreign_vectors",
            "Items whose stored vector another model made, so this replica leaves them out.",
            registry=registry,
        )
        self.errors = MetricCounter(
            "mg_vector_replica_poll_errors", "Polls of the change table that failed.", registry=registry
        )


def _decode(change: VectorChange, dimension: int) -> NDArray[np.float32] | None:
    """The change's vector if it can go into the shard; None means the point must leave it."""
    if change.vector is None:
        return None
    if len(change.vector) != 4 * dimension:
        log.error("stored vector has the wrong size; left out", extra={"id": str(change.id)})
        return None
    vector = np.frombuffer(change.vector, dtype="<f4")
    if not np.isfinite(vector).all() or not np.any(vector):
        log.error("stored vector is zero or not finite; left out", extra={"id": str(change.id)})
        return None
    return vector


class ReplicaVectorIndex:
    """Reads like any `VectorIndex`; refuses writes (the source's writer owns them).

    `root` is a directory for the private shards: each replica claims a subdirectory of its own
    (core.process_dirs) and deletes it when it closes."""

    def __init__(
        self,
        source: VectorChangeSource,
        *,
        model_id: str,
        dimension: int,
        root: Path,
        settings: VectorSettings | None = None,
        payload_indexes: Mapping[str, PayloadFieldType] = CONTENT_PAYLOAD_INDEXES,
        registry: CollectorRegistry | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension}")
        self.dimension = dimension
        self.model_id = model_id
        self._source = source
        self._root = Path(root)
        self._settings = settings or VectorSettings()
        self._payload_indexes = dict(payload_indexes)
        self._page_size = page_size
        self._registry = registry
        self._metrics: _ReplicaMetrics | None = None
        self._local: EdgeVectorIndex | None = None
        self._poller: asyncio.Task[None] | None = None
        self._syncing = asyncio.Lock()
        self._opening = asyncio.Lock()
        # The last `seq` applied: every change up to it is in the shard.
        self.seq = 0
        # Items left out because another model made their vector, by that model.
        self._foreign: dict[uuid.UUID, str] = {}
        self._synced_at = time.monotonic()

    def __repr__(self) -> str:
        return f"ReplicaVectorIndex(model={self.model_id!r}, dimension={self.dimension}, seq={self.seq})"

    @property
    def path(self) -> Path | None:
        return self._local.path if self._local is not None else None

    @property
    def is_open(self) -> bool:
        return self._local is not None

    def foreign_models(self) -> Counter[str]:
        """How many items are left out because another model made their stored vector."""
        return Counter(self._foreign.values())

    def staleness_sec(self) -> float:
        return time.monotonic() - self._synced_at

    async def open(self) -> None:
        """Load every vector of this model into a fresh private shard, then poll for changes."""
        async with self._opening:
            if self._local is not None:
                return
            path = await asyncio.to_thread(claim_private_dir, self._root)
            local = EdgeVectorIndex(
                path, self.dimension, self._settings, payload_indexes=self._payload_indexes
            )
            try:
                await local.open()
            except BaseException:
                await asyncio.to_thread(release_private_dir, path)
                raise
            self._local = local
            try:
                if self._registry is not None and self._metrics is None:
                    self._metrics = _ReplicaMetrics(self._registry, self)
                loaded = await self.sync()
            except BaseException:
                await self._close_local()
                raise
            log.info(
                "vector replica loaded",
                extra={
                    "model": self.model_id,
                    "points": loaded.upserted,
                    "seq": self.seq,
                    "seconds": round(loaded.seconds, 3),
                },
            )
            if self._foreign:
                log.warning(
                    "the catalog holds vectors of another embedding model than this process uses; "
                    "those titles are left out of vector search until ingestion re-embeds them with "
                    "this model (it does at its start, or on POST /api/v1/admin/enrichment/run)",
                    extra={
                        "model": self.model_id,
                        "dimension": self.dimension,
                        "others": self.foreign_models(),
                    },
                )
            self._poller = asyncio.create_task(self._poll(), name="vector-replica-poll")

    async def sync(self) -> SyncStats:
        """Apply every change written since the last one applied; what `open` and each poll do."""
        async with self._syncing:
            local = self._require_open()
            started = time.perf_counter()
            upserted = deleted = 0
            while True:
                page = await self._source.changes_since(
                    self.seq, self._page_size, self.model_id, self.dimension
                )
                if not page:
                    break
                up, down = await self._apply(local, page)
                upserted += up
                deleted += down
                self.seq = page[-1].seq
                if self._metrics is not None:
                    self._metrics.seq.set(self.seq)
                    self._metrics.delay.set(page[-1].age_sec)
                    self._metrics.foreign.set(len(self._foreign))
                if len(page) < self._page_size:
                    break
            self._synced_at = time.monotonic()
            return SyncStats(upserted, deleted, time.perf_counter() - started)

    async def _apply(self, local: EdgeVectorIndex, page: Sequence[VectorChange]) -> tuple[int, int]:
        # Decoding checks every vector; off the event loop like the engine's own work.
        decoded = await asyncio.to_thread(lambda: [(c, _decode(c, self.dimension)) for c in page])
        points: list[VectorPoint] = []
        gone: list[uuid.UUID] = []
        for change, vector in decoded:
            if vector is None:
                gone.append(change.id)
                if not change.deleted and (change.model, change.dimension) != (self.model_id, self.dimension):
                    self._foreign[change.id] = f"{change.model} ({change.dimension}-d)"
                else:
                    self._foreign.pop(change.id, None)
            else:
                points.append(VectorPoint(change.id, vector, change.payload or {}))
                self._foreign.pop(change.id, None)
        # One row per item in a page, so the order of the two does not matter.
        if gone:
            await local.delete(gone)
        if points:
            await local.upsert(points)
        return len(points), len(gone)

    async def _poll(self) -> None:
        interval = self._settings.replica_poll_sec
        failures = 0
        while True:
            await asyncio.sleep(interval if not failures else min(30.0, interval * 2**failures))
            try:
                await self.sync()
                failures = 0
            except Exception:
                failures += 1
                if self._metrics is not None:
                    self._metrics.errors.inc()
                # Queries go on against what the shard holds; the next poll picks up from `seq`.
                log.exception("vector replica poll failed (%d in a row)", failures)

    def _require_open(self) -> EdgeVectorIndex:
        if self._local is None:
            raise VectorIndexError("vector replica is not open; call open() first")
        return self._local

    def _refuse_write(self) -> NoReturn:
        raise VectorIndexError(
            "this vector index is a read-only replica; vectors are written by ingestion "
            "(catalog.content_vectors)"
        )

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        self._refuse_write()

    async def replace_payloads(self, payloads: Mapping[uuid.UUID | str, Mapping[str, Any]]) -> None:
        self._refuse_write()

    async def delete(self, ids: Iterable[uuid.UUID | str]) -> None:
        self._refuse_write()

    async def query(
        self,
        vector: Sequence[float] | NDArray[np.floating[Any]],
        limit: int = 10,
        filter: VectorFilter | None = None,
        *,
        offset: int = 0,
        score_threshold: float | None = None,
        with_payload: bool = True,
    ) -> list[VectorHit]:
        return await self._require_open().query(
            vector, limit, filter, offset=offset, score_threshold=score_threshold, with_payload=with_payload
        )

    async def nearest_ids(
        self,
        vector: Sequence[float] | NDArray[np.floating[Any]],
        limit: int = 10,
        filter: VectorFilter | None = None,
        *,
        score_threshold: float | None = None,
    ) -> list[str]:
        return await self._require_open().nearest_ids(vector, limit, filter, score_threshold=score_threshold)

    async def vectors(self, ids: Iterable[uuid.UUID | str]) -> dict[uuid.UUID, list[float]]:
        return await self._require_open().vectors(ids)

    async def count(self, filter: VectorFilter | None = None) -> int:
        return await self._require_open().count(filter)

    async def flush(self) -> None:
        """Nothing to persist: the shard is rebuilt from the source at every open."""

    async def optimize(self) -> bool:
        return await self._require_open().optimize()

    async def _close_local(self) -> None:
        local, self._local = self._local, None
        if local is None:
            return
        try:
            await local.aclose()
        finally:
            await asyncio.to_thread(release_private_dir, local.path)

    async def aclose(self) -> None:
        """Stop polling, close the shard and delete its directory."""
        async with self._opening:
            poller, self._poller = self._poller, None
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await self._close_local()
