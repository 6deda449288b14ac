"""Experiments, exposures and conversions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.sona.tables import experiment_conversions, experiment_exposures, experiments


@dataclass(frozen=True, slots=True)
class ExperimentRow:
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    status: str
    traffic_allocation: float
    variants: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


def _experiment(row: Any) -> ExperimentRow:
    return ExperimentRow(
        id=row.id,
        key=row.key,
        name=row.name,
        description=row.description,
        status=row.status,
        traffic_allocation=float(row.traffic_allocation),
        variants=list(row.variants),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def create_experiment(
    conn: AsyncConnection,
    *,
    key: str,
    name: str,
    description: str | None,
    status: str,
    traffic_allocation: float,
    variants: list[dict[str, Any]],
) -> ExperimentRow:
    row = (
        await conn.execute(
            experiments.insert()
            .values(
                id=uuid.uuid4(),
                key=key,
                name=name,
                description=description,
                status=status,
                traffic_allocation=traffic_allocation,
                variants=variants,
            )
            .returning(experiments)
        )
    ).one()
    return _experiment(row)


async def list_experiments(conn: AsyncConnection, status: str | None = None) -> list[ExperimentRow]:
    query = select(experiments).order_by(experiments.c.created_at.desc(), experiments.c.id)
    if status is not None:
        query = query.where(experiments.c.status == status)
    return [_experiment(row) for row in await conn.execute(query)]


async def get_experiment(conn: AsyncConnection, experiment_id: uuid.UUID) -> ExperimentRow | None:
    row = (await conn.execute(select(experiments).where(experiments.c.id == experiment_id))).one_or_none()
    return _experiment(row) if row is not None else None


async def running_by_key(conn: AsyncConnection, key: str) -> ExperimentRow | None:
    row = (
        await conn.execute(
            select(experiments).where(experiments.c.key == key, experiments.c.status == "running")
        )
    ).one_or_none()
    return _experiment(row) if row is not None else None


async def set_status(
    conn: AsyncConnection, experiment_id: uuid.UUID, expected: str, status: str
) -> ExperimentRow | None:
    """Move from `expected` to `status`; None when the experiment is no longer in `expected`."""
    row = (
        await conn.execute(
            update(experiments)
            .where(experiments.c.id == experiment_id, experiments.c.status == expected)
            .values(status=status, updated_at=func.now())
            .returning(experiments)
        )
    ).one_or_none()
    return _experiment(row) if row is not None else None


async def record_exposure(
    conn: AsyncConnection, experiment_id: uuid.UUID, user_id: uuid.UUID, variant: str
) -> None:
    await conn.execute(
        insert(experiment_exposures)
        .values(experiment_id=experiment_id, user_id=user_id, variant=variant)
        .on_conflict_do_nothing(index_elements=["experiment_id", "user_id"])
    )


async def record_conversion(
    conn: AsyncConnection,
    experiment_id: uuid.UUID,
    user_id: uuid.UUID,
    variant: str,
    value: float,
    idempotency_key: str | None,
) -> bool:
    """False when the idempotency key was already used by this user in this experiment."""
    result = await conn.execute(
        insert(experiment_conversions)
        .values(
            experiment_id=experiment_id,
            user_id=user_id,
            variant=variant,
            value=value,
            idempotency_key=idempotency_key,
        )
        .on_conflict_do_nothing(index_elements=["experiment_id", "user_id", "idempotency_key"])
        .returning(experiment_conversions.c.id)
    )
    return result.first() is not None


@dataclass(frozen=True, slots=True)
class VariantCounts:
    exposures: int = 0
    converted_users: int = 0
    conversions: int = 0
    total_value: float = 0.0


async def variant_counts(conn: AsyncConnection, experiment_id: uuid.UUID) -> dict[str, VariantCounts]:
    exposures: dict[str, int] = dict(
        (
            await conn.execute(
                select(experiment_exposures.c.variant, func.count())
                .where(experiment_exposures.c.experiment_id == experiment_id)
                .group_by(experiment_exposures.c.variant)
            )
        ).all()
    )
    conversions = await conn.execute(
        select(
            experiment_conversions.c.variant,
            func.count(func.distinct(experiment_conversions.c.user_id)),
            func.count(),
            func.coalesce(func.sum(experiment_conversions.c.value), 0.0),
        )
        .where(experiment_conversions.c.experiment_id == experiment_id)
        .group_by(experiment_conversions.c.variant)
    )
    out = {variant: VariantCounts(exposures=int(n)) for variant, n in exposures.items()}
    for variant, users, events, total in conversions:
        out[variant] = VariantCounts(
            exposures=out.get(variant, VariantCounts()).exposures,
            converted_users=int(users),
            conversions=int(events),
            total_value=float(total),
        )
    return out
