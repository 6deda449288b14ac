"""What training produces: model snapshots, graph edges and per-user LoRA adapters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.sona.tables import graph_edges, lora_adapters, model_snapshots

Edge = tuple[str, str, float]


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    payload: bytes
    watermark: int
    stats: dict[str, Any]
    trained_at: datetime


async def save_snapshot(
    conn: AsyncConnection, kind: str, payload: bytes, watermark: int, stats: dict[str, Any], keep: int = 2
) -> int:
    version = (
        await conn.execute(
            model_snapshots.insert()
            .values(kind=kind, payload=payload, watermark=watermark, stats=stats)
            .returning(model_snapshots.c.version)
        )
    ).scalar_one()
    # Older snapshots are only a fallback; a few are enough.
    keep_from = (
        select(model_snapshots.c.version)
        .where(model_snapshots.c.kind == kind)
        .order_by(model_snapshots.c.version.desc())
        .offset(keep - 1)
        .limit(1)
        .scalar_subquery()
    )
    await conn.execute(
        delete(model_snapshots).where(model_snapshots.c.kind == kind, model_snapshots.c.version < keep_from)
    )
    return int(version)


async def latest_snapshot_version(conn: AsyncConnection, kind: str) -> int | None:
    value = (
        await conn.execute(select(func.max(model_snapshots.c.version)).where(model_snapshots.c.kind == kind))
    ).scalar_one()
    return int(value) if value is not None else None


async def latest_snapshot(conn: AsyncConnection, kind: str) -> Snapshot | None:
    row = (
        await conn.execute(
            select(model_snapshots)
            .where(model_snapshots.c.kind == kind)
            .order_by(model_snapshots.c.version.desc())
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        return None
    return Snapshot(int(row.version), bytes(row.payload), int(row.watermark), dict(row.stats), row.trained_at)


_INSERT_EDGES = text(
    """
INSERT INTO sona.graph_edges (relation, src, dst, weight)
SELECT :relation, src, dst, weight
FROM unnest(CAST(:srcs AS uuid[]), CAST(:dsts AS uuid[]), CAST(:weights AS float8[])) AS t(src, dst, weight)
ON CONFLICT (relation, src, dst) DO UPDATE SET weight = excluded.weight
"""
)


async def replace_edges(conn: AsyncConnection, relation: str, edges: Sequence[Edge]) -> None:
    """Swap the stored edges of one relation for `edges` (call inside a transaction)."""
    await conn.execute(delete(graph_edges).where(graph_edges.c.relation == relation))
    if edges:
        await conn.execute(
            _INSERT_EDGES,
            {
                "relation": relation,
                "srcs": [uuid.UUID(s) for s, _, _ in edges],
                "dsts": [uuid.UUID(d) for _, d, _ in edges],
                "weights": [w for _, _, w in edges],
            },
        )


async def load_edges(conn: AsyncConnection) -> dict[str, list[Edge]]:
    """Every stored edge, by relation, in one statement."""
    out: dict[str, list[Edge]] = {"content": [], "coview": []}
    result = await conn.execute(
        select(graph_edges.c.relation, graph_edges.c.src, graph_edges.c.dst, graph_edges.c.weight)
    )
    for relation, src, dst, weight in result:
        out.setdefault(relation, []).append((str(src), str(dst), float(weight)))
    return out


@dataclass(frozen=True, slots=True)
class AdapterRow:
    id: uuid.UUID
    user_id: uuid.UUID
    version: int
    rank: int
    alpha: float
    dimension: int
    weights: bytes
    watermark: int
    metrics: dict[str, Any]
    active: bool
    trained_at: datetime


def _adapter(row: Any) -> AdapterRow:
    return AdapterRow(
        id=row.id,
        user_id=row.user_id,
        version=int(row.version),
        rank=int(row.rank),
        alpha=float(row.alpha),
        dimension=int(row.dimension),
        weights=bytes(row.weights),
        watermark=int(row.watermark),
        metrics=dict(row.metrics),
        active=bool(row.active),
        trained_at=row.trained_at,
    )


async def active_adapter(conn: AsyncConnection, user_id: uuid.UUID) -> AdapterRow | None:
    row = (
        await conn.execute(
            select(lora_adapters).where(lora_adapters.c.user_id == user_id, lora_adapters.c.active)
        )
    ).one_or_none()
    return _adapter(row) if row is not None else None


async def adapter_by_id(
    conn: AsyncConnection, user_id: uuid.UUID, adapter_id: uuid.UUID
) -> AdapterRow | None:
    row = (
        await conn.execute(
            select(lora_adapters).where(lora_adapters.c.id == adapter_id, lora_adapters.c.user_id == user_id)
        )
    ).one_or_none()
    return _adapter(row) if row is not None else None


async def adapter_watermarks(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(lora_adapters.c.user_id, func.max(lora_adapters.c.watermark)).group_by(lora_adapters.c.user_id)
    )
    return {str(user_id): int(mark) for user_id, mark in rows}


async def save_adapter(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    *,
    rank: int,
    alpha: float,
    dimension: int,
    weights: bytes,
    watermark: int,
    metrics: dict[str, Any],
    keep: int,
) -> AdapterRow:
    """A new active version for the user; the previous ones stay as history (the oldest pruned)."""
    # Serializes concurrent trainers of the same user so versions stay unique and one stays active.
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"sona-lora:{user_id}"})
    current = (
        await conn.execute(
            select(func.max(lora_adapters.c.version)).where(lora_adapters.c.user_id == user_id)
        )
    ).scalar_one()
    version = int(current or 0) + 1
    await conn.execute(
        update(lora_adapters)
        .where(lora_adapters.c.user_id == user_id, lora_adapters.c.active)
        .values(active=False)
    )
    row = (
        await conn.execute(
            lora_adapters.insert()
            .values(
                id=uuid.uuid4(),
                user_id=user_id,
                version=version,
                rank=rank,
                alpha=alpha,
                dimension=dimension,
                weights=weights,
                watermark=watermark,
                metrics=metrics,
                active=True,
            )
            .returning(lora_adapters)
        )
    ).one()
    await conn.execute(
        delete(lora_adapters).where(
            and_(lora_adapters.c.user_id == user_id, lora_adapters.c.version <= version - keep)
        )
    )
    return _adapter(row)
