"""The qdrant-edge implementation of `VectorIndex`: in-process shards, one worker thread each."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import qdrant_edge as qe
from numpy.typing import NDArray

from media_gateway.core.settings import VectorSettings
from media_gateway.core.vectors.base import (
    CONTENT_PAYLOAD_INDEXES,
    KeywordMatch,
    PayloadFieldType,
    VectorDimensionMismatchError,
    VectorFilter,
    VectorHit,
    VectorIndexError,
    VectorPoint,
)

log = logging.getLogger("media_gateway.core.vectors")

T = TypeVar("T")

_SCHEMA_TYPES: Mapping[PayloadFieldType, qe.PayloadSchemaType] = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
    "bool": qe.PayloadSchemaType.Bool,
}

# Points per engine call: small enough that one call holds the GIL for only a few ms.
WRITE_BATCH = 256
# Up to this many points are converted on the caller's thread: a thread hop would cost more.
_INLINE_POINTS = 32


def _match_condition(key: str, wanted: KeywordMatch) -> qe.FieldCondition:
    if isinstance(wanted, list):
        return qe.FieldCondition(key, match=qe.MatchAny(wanted))
    return qe.FieldCondition(key, match=qe.MatchValue(wanted))


def to_qdrant_filter(flt: VectorFilter | None) -> qe.Filter | None:
    if flt is None or flt.is_empty():
        return None
    must: list[qe.ConditionType] = [_match_condition(k, v) for k, v in flt.match.items()]
    must += [
        qe.FieldCondition(k, range=qe.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt))
        for k, r in flt.ranges.items()
    ]
    must_not: list[qe.ConditionType] = [_match_condition(k, v) for k, v in flt.exclude.items()]
    if flt.exclude_ids:
        must_not.append(qe.HasIdCondition(set(flt.exclude_ids)))
    return qe.Filter(must=must or None, must_not=must_not or None)


class _Shard:
    """One open shard directory, shared by every `EdgeVectorIndex` of the process at that path.

    The engine takes an exclusive lock on its WAL, so a second `EdgeShard.load` of the same
    directory fails; sharing is what lets the services running in one process use one index.
    """

    def __init__(self, path: Path, dimension: int, shard: qe.EdgeShard) -> None:
        self.path = path
        self.dimension = dimension
        self.shard = shard
        self.refs = 0
        # One thread per shard serializes engine calls; the engine holds the GIL while it works,
        # so more threads would not add throughput.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mg-vectors-{path.name}")


_SHARDS: dict[Path, _Shard] = {}
_SHARDS_LOCK = threading.Lock()


def _persisted_dimension(path: Path) -> int | None:
    """The vector size recorded in the shard's config file, when it can be read."""
    try:
        config = json.loads((path / "edge_config.json").read_text())
        return int(config["vectors"][""]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _edge_config(dimension: int, cfg: VectorSettings) -> qe.EdgeConfig:
    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine),
        hnsw_config=qe.HnswIndexConfig(
            m=cfg.hnsw_m,
            ef_construct=cfg.hnsw_ef_construct,
            full_scan_threshold=cfg.full_scan_threshold,
        ),
    )


def _open_shard(path: Path, dimension: int, cfg: VectorSettings) -> qe.EdgeShard:
    config = _edge_config(dimension, cfg)
    has_data = path.is_dir() and any(path.iterdir())
    if not has_data:
        try:
            path.mkdir(parents=True, exist_ok=True)
            return qe.EdgeShard.create(str(path), config)
        except Exception as exc:
            raise VectorIndexError(f"cannot create vector index at {path}: {exc}") from exc
    stored = _persisted_dimension(path)
    if stored is not None and stored != dimension:
        raise VectorDimensionMismatchError(
            f"vector index at {path} stores {stored}-d vectors but the configured embedder makes "
            f"{dimension}-d ones; delete the directory to rebuild it, or configure a matching embedder"
        )
    try:
        # Passing the config makes the engine check it against the segments (the backstop when
        # the config file was unreadable) and applies changed HNSW settings.
        return qe.EdgeShard.load(str(path), config)
    except Exception as exc:
        if "dimension" in str(exc) or "vector size" in str(exc):
            raise VectorDimensionMismatchError(
                f"vector index at {path} does not hold {dimension}-d vectors: {exc}"
            ) from exc
        raise VectorIndexError(f"cannot open vector index at {path}: {exc}") from exc


def _ensure_payload_indexes(shard: qe.EdgeShard, wanted: Mapping[str, PayloadFieldType]) -> None:
    existing = shard.info().payload_schema
    for name, kind in wanted.items():
        current = existing.get(name)
        if current is None:
            shard.update(qe.UpdateOperation.create_field_index(name, _SCHEMA_TYPES[kind]))
        elif current.data_type != _SCHEMA_TYPES[kind]:
            log.warning(
                "payload index type differs from the configured one",
                extra={"field": name, "existing": str(current.data_type), "configured": kind},
            )


def _acquire(
    path: Path, dimension: int, cfg: VectorSettings, payload_indexes: Mapping[str, PayloadFieldType]
) -> _Shard:
    with _SHARDS_LOCK:
        handle = _SHARDS.get(path)
        if handle is None:
            engine = _open_shard(path, dimension, cfg)
            try:
                _ensure_payload_indexes(engine, payload_indexes)
            except Exception as exc:
                engine.close()
                raise VectorIndexError(f"cannot create payload indexes at {path}: {exc}") from exc
            handle = _Shard(path, dimension, engine)
            _SHARDS[path] = handle
        elif handle.dimension != dimension:
            raise VectorDimensionMismatchError(
                f"vector index at {path} is open with {handle.dimension}-d vectors, requested {dimension}-d"
            )
        handle.refs += 1
        return handle


def _release(handle: _Shard) -> None:
    def close() -> None:
        handle.shard.flush()
        handle.shard.close()

    # The registry lock is held until the engine is closed: an open of the same path racing
    # this close would otherwise hit the WAL lock the closing engine still holds.
    with _SHARDS_LOCK:
        handle.refs -= 1
        if handle.refs > 0:
            return
        del _SHARDS[handle.path]
        # Queued behind any in-flight call of another owner, so the shard closes when idle.
        try:
            handle.executor.submit(close).result()
        finally:
            handle.executor.shutdown(wait=True)


def _hit_id(value: qe.PointId) -> uuid.UUID:
    # Integer ids are never written by this module, but a shard restored from elsewhere may hold them.
    return uuid.UUID(int=value) if isinstance(value, int) else _point_id(value)


def _point_id(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"point id must be a UUID, got {value!r}") from None


class EdgeVectorIndex:
    """A qdrant-edge shard at `path` with cosine distance and `dimension`-d vectors."""

    def __init__(
        self,
        path: Path,
        dimension: int,
        settings: VectorSettings | None = None,
        *,
        payload_indexes: Mapping[str, PayloadFieldType] = CONTENT_PAYLOAD_INDEXES,
    ) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension}")
        self.path = Path(path).resolve()
        self.dimension = dimension
        self._settings = settings or VectorSettings()
        self._payload_indexes = dict(payload_indexes)
        self._handle: _Shard | None = None
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:
        return f"EdgeVectorIndex(path={str(self.path)!r}, dimension={self.dimension}, open={self.is_open})"

    @property
    def is_open(self) -> bool:
        return self._handle is not None

    async def open(self) -> None:
        """Create the shard (with its payload indexes) or load it; a no-op when already open."""
        async with self._opening:
            if self._handle is None:
                self._handle = await asyncio.to_thread(
                    _acquire, self.path, self.dimension, self._settings, self._payload_indexes
                )

    async def _call(self, fn: Callable[[qe.EdgeShard], T]) -> T:
        handle = self._handle
        if handle is None:
            raise VectorIndexError(f"vector index at {self.path} is not open; call open() first")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(handle.executor, fn, handle.shard)
        except (VectorIndexError, ValueError):
            raise
        except Exception as exc:
            raise VectorIndexError(f"vector index at {self.path}: {exc}") from exc

    async def _update(self, operation: qe.UpdateOperation) -> None:
        await self._call(lambda shard: shard.update(operation))

    def _vector(self, values: Sequence[float] | NDArray[np.floating[Any]]) -> list[float]:
        array = np.asarray(values, dtype=np.float32)
        if array.shape != (self.dimension,):
            raise ValueError(f"vector must have shape ({self.dimension},), got {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("vector contains NaN or infinite values")
        if not np.any(array):
            # Cosine distance is undefined for a zero vector.
            raise ValueError("vector must not be all zeros")
        return array.tolist()  # type: ignore[no-any-return]

    def _point(self, point: VectorPoint) -> qe.Point:
        point_id = _point_id(point.id)
        vector = self._vector(point.vector)
        try:
            return qe.Point(point_id, vector, dict(point.payload))
        except (TypeError, ValueError) as exc:
            # The engine's own message lists every JSON variant it tried; the first line says why.
            reason = str(exc).splitlines()[0]
            raise ValueError(f"payload of point {point_id} is not JSON-like: {reason}") from None

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        # Validate everything before writing anything, so bad input never leaves a partial write.
        # Converting a replica's page of vectors takes milliseconds: not on the event loop.
        if len(points) > _INLINE_POINTS:
            prepared = await asyncio.to_thread(lambda: [self._point(p) for p in points])
        else:
            prepared = [self._point(p) for p in points]
        for start in range(0, len(prepared), WRITE_BATCH):
            batch = prepared[start : start + WRITE_BATCH]
            await self._update(qe.UpdateOperation.upsert_points(batch))

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
        """The `limit` nearest points by cosine similarity (higher score = closer)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        request = qe.QueryRequest(
            limit=limit,
            offset=offset or None,
            query=qe.Query.Nearest(self._vector(vector)),
            filter=to_qdrant_filter(filter),
            with_payload=with_payload,
            score_threshold=score_threshold,
        )
        scored = await self._call(lambda shard: shard.query(request))
        if not with_payload:
            # Ids and scores only: copying every payload into Python dominated a 200-hit query.
            return [VectorHit(id=_hit_id(p.id), score=float(p.score), payload={}) for p in scored]
        return [
            VectorHit(id=_hit_id(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in scored
        ]

    async def nearest_ids(
        self,
        vector: Sequence[float] | NDArray[np.floating[Any]],
        limit: int = 10,
        filter: VectorFilter | None = None,
        *,
        score_threshold: float | None = None,
    ) -> list[str]:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(self._vector(vector)),
            filter=to_qdrant_filter(filter),
            with_payload=False,
            score_threshold=score_threshold,
        )
        scored = await self._call(lambda shard: shard.query(request))
        return [str(_hit_id(p.id)) if isinstance(p.id, int) else str(p.id) for p in scored]

    async def vectors(self, ids: Iterable[uuid.UUID | str]) -> dict[uuid.UUID, list[float]]:
        """The stored vectors of those of `ids` that are in the index."""
        point_ids: list[qe.PointId] = [_point_id(i) for i in ids]
        if not point_ids:
            return {}
        records = await self._call(lambda shard: shard.retrieve(point_ids, False, True))
        found: dict[uuid.UUID, list[float]] = {}
        for record in records:
            vector = record.vector
            if isinstance(vector, list) and vector and isinstance(vector[0], float):
                found[_hit_id(record.id)] = [float(v) for v in vector]
        return found

    async def replace_payloads(self, payloads: Mapping[uuid.UUID | str, Mapping[str, Any]]) -> None:
        """Overwrite the payload of existing points, keeping their vectors (no re-embedding)."""
        operations = [
            qe.UpdateOperation.overwrite_payload([_point_id(point_id)], dict(payload))
            for point_id, payload in payloads.items()
        ]

        def apply(chunk: list[qe.UpdateOperation]) -> Callable[[qe.EdgeShard], None]:
            def run(shard: qe.EdgeShard) -> None:
                for operation in chunk:
                    shard.update(operation)

            return run

        # Chunked like upserts: the engine holds the GIL while it works.
        for start in range(0, len(operations), WRITE_BATCH):
            await self._call(apply(operations[start : start + WRITE_BATCH]))

    async def delete(self, ids: Iterable[uuid.UUID | str]) -> None:
        """Delete points by id; ids that are not in the index are ignored."""
        point_ids: list[qe.PointId] = [_point_id(i) for i in ids]
        for start in range(0, len(point_ids), WRITE_BATCH):
            batch = point_ids[start : start + WRITE_BATCH]
            await self._update(qe.UpdateOperation.delete_points(batch))

    async def count(self, filter: VectorFilter | None = None) -> int:
        request = qe.CountRequest(exact=True, filter=to_qdrant_filter(filter))
        return await self._call(lambda shard: shard.count(request))

    async def flush(self) -> None:
        await self._call(lambda shard: shard.flush())

    async def optimize(self) -> bool:
        """Merge segments and build the HNSW graph; returns whether anything changed.

        Offline use only (after a bulk load, before serving): the engine keeps the GIL for the
        whole run, which freezes every thread of the process (11.5 s measured at 20k points,
        70-90 s at 100k). Below ~20k points exact search is already ~1 ms, so small catalogs
        never need it.
        """
        return await self._call(lambda shard: shard.optimize())

    async def aclose(self) -> None:
        """Flush and release the shard; the last owner in the process closes it."""
        async with self._opening:
            handle, self._handle = self._handle, None
            if handle is not None:
                await asyncio.to_thread(_release, handle)
