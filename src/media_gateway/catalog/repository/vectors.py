"""`catalog.content_vectors`: ingestion writes each title's vector here, in the transaction that stamps
the title as embedded; every process that searches by vector reads what changed since a `seq`.

Ordering: every writer takes `SEQ_LOCK` (a transaction-scoped advisory lock) before it draws a `seq`,
so transactions that write the table commit in `seq` order. A reader that has seen `seq = n` can never
later find a committed row with a smaller `seq`, which is what makes `seq > n` lossless. The delete
trigger on `catalog.content` (migration catalog_0004) takes the same lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import and_, case, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.catalog.models import content_vectors
from media_gateway.core.vectors.replica import VectorChange

SEQ_LOCK: Final = "mg-catalog-content-vectors"

_UPSERT = text(
    """
    INSERT INTO catalog.content_vectors AS v (content_id, seq, model, dimension, vector, payload, updated_at)
    SELECT u.id, nextval('catalog.content_vectors_seq'), :model, :dimension, u.vector, u.payload::jsonb,
           clock_timestamp()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:vectors AS bytea[]), CAST(:payloads AS text[]))
         AS u(id, vector, payload)
    ON CONFLICT (content_id) DO UPDATE
    SET seq = EXCLUDED.seq, model = EXCLUDED.model, dimension = EXCLUDED.dimension,
        vector = EXCLUDED.vector, payload = EXCLUDED.payload, updated_at = EXCLUDED.updated_at
    """
)

_UPDATE_PAYLOADS = text(
    """
    UPDATE catalog.content_vectors AS v
    SET payload = u.payload::jsonb, seq = nextval('catalog.content_vectors_seq'),
        updated_at = clock_timestamp()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:payloads AS text[])) AS u(id, payload)
    WHERE v.content_id = u.id AND v.vector IS NOT NULL AND v.model = :model
    RETURNING v.content_id
    """
)


async def _lock_seq(conn: AsyncConnection) -> None:
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(SEQ_LOCK))))


def vector_bytes(vector: NDArray[np.floating[Any]] | Sequence[float]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


async def store_vectors(
    conn: AsyncConnection,
    items: Mapping[uuid.UUID, tuple[NDArray[np.floating[Any]] | Sequence[float], Mapping[str, Any]]],
    model: str,
    dimension: int,
) -> None:
    """Write each title's (vector, payload), made by `model`; one statement, one new `seq` per title."""
    if not items:
        return
    vectors = [vector_bytes(vector) for vector, _ in items.values()]
    if any(len(v) != 4 * dimension for v in vectors):
        raise ValueError(f"every vector must have {dimension} dimensions")
    await _lock_seq(conn)
    await conn.execute(
        _UPSERT,
        {
            "ids": list(items),
            "vectors": vectors,
            "payloads": [orjson.dumps(dict(payload)).decode() for _, payload in items.values()],
            "model": model,
            "dimension": dimension,
        },
    )


async def store_vector_payloads(
    conn: AsyncConnection, payloads: Mapping[uuid.UUID, Mapping[str, Any]], model: str
) -> set[uuid.UUID]:
    """Replace the payloads of titles that have a vector of `model`, keeping the vector; returns the
    ids updated (the others need embedding)."""
    if not payloads:
        return set()
    await _lock_seq(conn)
    rows = await conn.execute(
        _UPDATE_PAYLOADS,
        {
            "ids": list(payloads),
            "payloads": [orjson.dumps(dict(p)).decode() for p in payloads.values()],
            "model": model,
        },
    )
    return {row.content_id for row in rows}


async def count_vectors(conn: AsyncConnection, model: str) -> int:
    """Titles with a vector made by `model`."""
    query = (
        select(func.count())
        .select_from(content_vectors)
        .where(content_vectors.c.vector.is_not(None), content_vectors.c.model == model)
    )
    return int((await conn.execute(query)).scalar_one())


async def vector_changes(
    conn: AsyncConnection, after: int, limit: int, model: str, dimension: int
) -> list[VectorChange]:
    """Rows written after `after`, in `seq` order. Only rows of `model` and `dimension` carry their
    vector: for a reader on that model, any other row is as good as deleted."""
    cv = content_vectors
    own = and_(cv.c.model == model, cv.c.dimension == dimension)
    rows = await conn.execute(
        select(
            cv.c.content_id,
            cv.c.seq,
            cv.c.model,
            cv.c.dimension,
            case((own, cv.c.vector), else_=None).label("vector"),
            case((own, cv.c.payload), else_=None).label("payload"),
            cv.c.vector.is_(None).label("deleted"),
            func.extract("epoch", func.clock_timestamp() - cv.c.updated_at).label("age_sec"),
        )
        .where(cv.c.seq > after)
        .order_by(cv.c.seq)
        .limit(limit)
    )
    return [
        VectorChange(
            seq=row.seq,
            id=row.content_id,
            model=row.model,
            dimension=row.dimension,
            vector=row.vector,
            payload=row.payload,
            deleted=row.deleted,
            age_sec=float(row.age_sec),
        )
        for row in rows
    ]
