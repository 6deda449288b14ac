"""A/B experiments: deterministic assignment, exposures, conversions and per-variant statistics."""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections import OrderedDict
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.core.errors import ProblemError
from media_gateway.core.settings import SonaSettings
from media_gateway.sona.repository import experiments as repo
from media_gateway.sona.repository.experiments import ExperimentRow
from media_gateway.sona.schemas import (
    Assignment,
    ConversionIn,
    ConversionResult,
    Experiment,
    ExperimentCreate,
    ExperimentMetrics,
    ExperimentStatus,
    Variant,
    VariantMetrics,
)

# Which status may follow which; `completed` is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"running", "completed"}),
    "running": frozenset({"paused", "completed"}),
    "paused": frozenset({"running", "completed"}),
    "completed": frozenset(),
}
_EXPOSED_MEMORY = 100_000


def unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) from the parts: the same parts always give the same number."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_variant(experiment: ExperimentRow, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The user's variant, or None when traffic allocation leaves them out.

    Two independent hashes of (experiment id, user id): one decides whether the user takes part, the
    other picks the variant by weight, so changing the allocation never moves anyone between variants.
    """
    if unit_hash(str(experiment.id), str(user_id), "traffic") >= experiment.traffic_allocation:
        return None
    variants = experiment.variants
    total = sum(float(v["weight"]) for v in variants)
    point = unit_hash(str(experiment.id), str(user_id), "variant") * total
    cumulative = 0.0
    for variant in variants:
        cumulative += float(variant["weight"])
        if point < cumulative:
            return variant
    return variants[-1]


def two_proportion_z(x1: int, n1: int, x0: int, n0: int) -> tuple[float | None, float | None]:
    """(z, two-sided p) for H0: both proportions equal, with the pooled standard error."""
    if n1 == 0 or n0 == 0:
        return None, None
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    diff = x1 / n1 - x0 / n0
    if se == 0:
        # Every user converted, or none did, in both groups: no evidence of a difference.
        return (0.0, 1.0) if diff == 0 else (None, None)
    z = diff / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def control_of(experiment: ExperimentRow) -> str:
    for variant in experiment.variants:
        if variant.get("control"):
            return str(variant["name"])
    return str(experiment.variants[0]["name"])


def to_schema(row: ExperimentRow) -> Experiment:
    return Experiment(
        id=row.id,
        key=row.key,
        name=row.name,
        description=row.description,
        status=row.status,
        traffic_allocation=row.traffic_allocation,
        variants=[
            Variant(
                name=v["name"], weight=v["weight"], config=v.get("config", {}), control=bool(v.get("control"))
            )
            for v in row.variants
        ],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class ExperimentService:
    def __init__(self, engine: AsyncEngine, cfg: SonaSettings) -> None:
        self._engine = engine
        self._cfg = cfg
        self._running: dict[str, tuple[float, ExperimentRow | None]] = {}
        # (experiment, user) pairs whose exposure is already stored: the hot path writes once.
        self._exposed: OrderedDict[tuple[uuid.UUID, uuid.UUID], None] = OrderedDict()

    async def create(self, body: ExperimentCreate) -> Experiment:
        control = body.control or ("control" if any(v.name == "control" for v in body.variants) else None)
        control = control or body.variants[0].name
        variants = [
            {"name": v.name, "weight": v.weight, "config": v.config, "control": v.name == control}
            for v in body.variants
        ]
        async with self._engine.begin() as conn:
            row = await repo.create_experiment(
                conn,
                key=body.key,
                name=body.name,
                description=body.description,
                status="draft",
                traffic_allocation=body.traffic_allocation,
                variants=variants,
            )
        return to_schema(row)

    async def list_all(self, status: ExperimentStatus | None) -> list[Experiment]:
        async with self._engine.connect() as conn:
            return [to_schema(r) for r in await repo.list_experiments(conn, status)]

    async def _get(self, experiment_id: uuid.UUID) -> ExperimentRow:
        async with self._engine.connect() as conn:
            row = await repo.get_experiment(conn, experiment_id)
        if row is None:
            raise ProblemError(404, f"no experiment {experiment_id}")
        return row

    async def get(self, experiment_id: uuid.UUID) -> Experiment:
        return to_schema(await self._get(experiment_id))

    async def change_status(self, experiment_id: uuid.UUID, status: ExperimentStatus) -> Experiment:
        row = await self._get(experiment_id)
        if row.status == status:
            return to_schema(row)
        if status not in TRANSITIONS[row.status]:
            raise ProblemError(409, f"an experiment that is {row.status} cannot become {status}")
        try:
            async with self._engine.begin() as conn:
                updated = await repo.set_status(conn, experiment_id, row.status, status)
        except IntegrityError:
            raise ProblemError(409, f"another experiment with key {row.key!r} is already running") from None
        if updated is None:
            raise ProblemError(409, "the experiment changed status meanwhile; read it again")
        self._running.pop(row.key, None)
        return to_schema(updated)

    async def _expose(self, experiment_id: uuid.UUID, user_id: uuid.UUID, variant: str) -> None:
        key = (experiment_id, user_id)
        if key in self._exposed:
            return
        async with self._engine.begin() as conn:
            await repo.record_exposure(conn, experiment_id, user_id, variant)
        self._exposed[key] = None
        while len(self._exposed) > _EXPOSED_MEMORY:
            self._exposed.popitem(last=False)

    async def assignment(self, experiment_id: uuid.UUID, user_id: uuid.UUID) -> Assignment:
        """The user's variant; while the experiment runs, asking is the exposure."""
        row = await self._get(experiment_id)
        variant = assign_variant(row, user_id)
        if variant is not None and row.status == "running":
            await self._expose(row.id, user_id, str(variant["name"]))
        return Assignment(
            experiment_id=row.id,
            key=row.key,
            status=row.status,
            in_experiment=variant is not None,
            variant=str(variant["name"]) if variant is not None else None,
            config=dict(variant.get("config", {})) if variant is not None else None,
        )

    async def convert(
        self, experiment_id: uuid.UUID, user_id: uuid.UUID, body: ConversionIn
    ) -> ConversionResult:
        row = await self._get(experiment_id)
        if row.status != "running":
            raise ProblemError(
                409, f"conversions are recorded only while the experiment runs (it is {row.status})"
            )
        variant = assign_variant(row, user_id)
        if variant is None:
            raise ProblemError(409, "you are not part of this experiment")
        name = str(variant["name"])
        # A conversion implies the user saw the variant; the exposure keeps rates within [0, 1].
        await self._expose(row.id, user_id, name)
        async with self._engine.begin() as conn:
            recorded = await repo.record_conversion(
                conn, row.id, user_id, name, body.value, body.idempotency_key
            )
        return ConversionResult(recorded=recorded, variant=name)

    async def metrics(self, experiment_id: uuid.UUID) -> ExperimentMetrics:
        row = await self._get(experiment_id)
        async with self._engine.connect() as conn:
            counts = await repo.variant_counts(conn, experiment_id)
        control = control_of(row)
        base = counts.get(control, repo.VariantCounts())
        base_rate = base.converted_users / base.exposures if base.exposures else 0.0
        out = []
        for variant in row.variants:
            name = str(variant["name"])
            c = counts.get(name, repo.VariantCounts())
            rate = c.converted_users / c.exposures if c.exposures else 0.0
            is_control = name == control
            z, p = (
                (None, None)
                if is_control
                else two_proportion_z(c.converted_users, c.exposures, base.converted_users, base.exposures)
            )
            comparable = not is_control and c.exposures > 0 and base.exposures > 0
            out.append(
                VariantMetrics(
                    variant=name,
                    control=is_control,
                    exposures=c.exposures,
                    conversions=c.converted_users,
                    conversion_events=c.conversions,
                    rate=rate,
                    mean_value=c.total_value / c.conversions if c.conversions else 0.0,
                    difference=rate - base_rate if comparable else None,
                    relative_lift=(rate - base_rate) / base_rate if comparable and base_rate > 0 else None,
                    z=z,
                    p_value=p,
                )
            )
        return ExperimentMetrics(
            experiment_id=row.id,
            status=row.status,
            control=control,
            variants=out,
        )

    async def running(self, key: str) -> ExperimentRow | None:
        cached = self._running.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._engine.connect() as conn:
            row = await repo.running_by_key(conn, key)
        self._running[key] = (now + self._cfg.experiment_cache_ttl_sec, row)
        return row

    async def variant_for(self, key: str, user_id: uuid.UUID) -> tuple[ExperimentRow, dict[str, Any]] | None:
        """The user's variant in the running experiment with `key` (recording the exposure)."""
        row = await self.running(key)
        if row is None:
            return None
        variant = assign_variant(row, user_id)
        if variant is None:
            return None
        await self._expose(row.id, user_id, str(variant["name"]))
        return row, variant
