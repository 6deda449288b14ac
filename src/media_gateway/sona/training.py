"""The background training job: EASE, graph edges and LoRA adapters from every interaction.

CPU work runs in a thread; the database sees a few set-based statements per run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.core.settings import SonaSettings
from media_gateway.core.vectors import VectorIndex
from media_gateway.sona.models import (
    EaseRecommender,
    GraphRecommender,
    Interaction,
    InteractionMatrix,
    content_edges,
    coview_edges,
    train_adapter,
)
from media_gateway.sona.repository import artifacts, catalog, interactions
from media_gateway.sona.signals import UserItem
from media_gateway.sona.state import CatalogState, ModelState

logger = logging.getLogger(__name__)

SNAPSHOT_KIND = "models"
# Items x top-k per item: enough neighbours for a 2-hop walk without storing the whole similarity.
EDGES_PER_ITEM = 50
COVIEW_MIN_SUPPORT = 2
# Vector index reads per call.
_VECTOR_BATCH = 1024


@dataclass
class TrainingOutcome:
    model: ModelState | None
    reason: str
    snapshot_version: int | None = None
    interactions: int = 0
    users: int = 0
    items: int = 0
    content_edges: int = 0
    coview_edges: int = 0
    adapters_trained: int = 0
    adapter_users: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


async def load_catalog(engine: AsyncEngine, vectors: VectorIndex) -> CatalogState:
    """Titles, today's availability and every title's vector, in three reads."""
    today = datetime.now(UTC).date()
    async with engine.connect() as conn:
        rows = await catalog.catalog_rows(conn)
        offers = await catalog.watchable_offers(conn, today)
    by_title: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for content_id, region, platform in offers:
        by_title[content_id].add((region, platform))
    found: dict[uuid.UUID, np.ndarray] = {}
    ids = [uuid.UUID(r.id) for r in rows]
    for start in range(0, len(ids), _VECTOR_BATCH):
        for point_id, values in (await vectors.vectors(ids[start : start + _VECTOR_BATCH])).items():
            found[point_id] = np.asarray(values, dtype=np.float32)
    matrix = np.zeros((len(rows), vectors.dimension), dtype=np.float32)
    has_vector = np.zeros(len(rows), dtype=bool)
    for i, point_id in enumerate(ids):
        vector = found.get(point_id)
        if vector is not None and vector.shape == (vectors.dimension,):
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                matrix[i] = vector / norm
                has_vector[i] = True
    return CatalogState(
        rows=rows,
        vectors=matrix,
        has_vector=has_vector,
        availability=[frozenset(by_title.get(r.id, ())) for r in rows],
        loaded_on=today,
    )


def _timeline(users: list[str], items: list[UserItem]) -> list[Interaction]:
    return [
        Interaction(user, item.content_id, item.affinity, item.last_at.timestamp())
        for user, item in zip(users, items, strict=True)
        if item.affinity != 0
    ]


def _fit(
    timeline: list[Interaction], cat: CatalogState, l2: float
) -> tuple[
    EaseRecommender | None, list[tuple[str, str, float]], list[tuple[str, str, float]], InteractionMatrix
]:
    known = [i for i in timeline if i.content_id in cat.index]
    matrix = InteractionMatrix.build(known)
    ease = None
    if len(matrix.item_ids) >= 2 and matrix.nnz:
        ease = EaseRecommender().fit(matrix, l2=l2)
    content = content_edges(cat.features(), top_k=EDGES_PER_ITEM)
    coview = coview_edges(matrix, min_support=COVIEW_MIN_SUPPORT, top_k=EDGES_PER_ITEM) if matrix.nnz else []
    return ease, content, coview, matrix


def _seed(user_id: str) -> int:
    return int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:4], "big")


async def train(
    engine: AsyncEngine,
    vectors: VectorIndex,
    cfg: SonaSettings,
    *,
    train_all_adapters: bool = False,
) -> TrainingOutcome:
    """One full run; the caller swaps in `outcome.model` and holds the training lock."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    cat = await load_catalog(engine, vectors)
    seconds["catalog"] = time.perf_counter() - started

    mark = time.perf_counter()
    async with engine.connect() as conn:
        watermark = await interactions.latest_interaction_id(conn)
        everything = await interactions.all_user_items(conn)
        adapter_marks = await artifacts.adapter_watermarks(conn)
        due = await interactions.users_with_events_after(conn, {} if train_all_adapters else adapter_marks, 0)
    seconds["load"] = time.perf_counter() - mark

    mark = time.perf_counter()
    timeline = _timeline(everything.user_ids, everything.items)
    ease, content, coview, matrix = await asyncio.to_thread(_fit, timeline, cat, cfg.ease_l2)
    graph = await asyncio.to_thread(GraphRecommender.from_edges, content, coview)
    seconds["fit"] = time.perf_counter() - mark

    mark = time.perf_counter()
    stats = {
        "interactions": len(timeline),
        "users": len(matrix.user_ids),
        "items": len(matrix.item_ids),
        "content_edges": len(content),
        "coview_edges": len(coview),
    }
    async with engine.begin() as conn:
        await artifacts.replace_edges(conn, "content", content)
        await artifacts.replace_edges(conn, "coview", coview)
        payload = ease.to_bytes() if ease is not None else b""
        version = await artifacts.save_snapshot(conn, SNAPSHOT_KIND, payload, watermark, stats)
    seconds["store"] = time.perf_counter() - mark

    mark = time.perf_counter()
    per_user: dict[str, list[UserItem]] = defaultdict(list)
    for user, item in zip(everything.user_ids, everything.items, strict=True):
        if user in due:
            per_user[user].append(item)
    trained: list[str] = []
    for user, items in per_user.items():
        if await _train_adapter(engine, cat, cfg, user, items, due[user]):
            trained.append(user)
    seconds["adapters"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started

    model = ModelState(catalog=cat, ease=ease, graph=graph, version=version, watermark=watermark)
    return TrainingOutcome(
        model=model,
        reason="trained",
        snapshot_version=version,
        interactions=len(timeline),
        users=len(matrix.user_ids),
        items=len(matrix.item_ids),
        content_edges=len(content),
        coview_edges=len(coview),
        adapters_trained=len(trained),
        adapter_users=trained,
        seconds={k: round(v, 3) for k, v in seconds.items()},
    )


async def _train_adapter(
    engine: AsyncEngine,
    cat: CatalogState,
    cfg: SonaSettings,
    user: str,
    items: list[UserItem],
    watermark: int,
) -> bool:
    rated = [(item, cat.vector(item.content_id)) for item in items if item.affinity != 0]
    usable = [(item.affinity, v) for item, v in rated if v is not None]
    if len(usable) < cfg.lora_min_interactions or not any(w > 0 for w, _ in usable):
        return False
    weights = np.array([w for w, _ in usable], dtype=np.float32)
    matrix = np.stack([v for _, v in usable]).astype(np.float32)

    def fit() -> tuple[bytes, dict[str, float]]:
        adapter = train_adapter(matrix, weights, rank=cfg.lora_rank, alpha=cfg.lora_alpha, seed=_seed(user))
        positives = matrix[weights > 0]
        centroid = (weights[weights > 0, None] * positives).sum(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        before = float((positives @ centroid).mean())
        adapted = adapter.apply(positives)
        target = adapter.apply(centroid)
        after = float((adapted @ target).mean())
        metrics = {
            "interactions": float(len(usable)),
            "positives": float((weights > 0).sum()),
            "negatives": float((weights < 0).sum()),
            "alignment_before": round(before, 4),
            "alignment_after": round(after, 4),
        }
        return adapter.to_bytes(), metrics

    blob, metrics = await asyncio.to_thread(fit)
    async with engine.begin() as conn:
        await artifacts.save_adapter(
            conn,
            uuid.UUID(user),
            rank=cfg.lora_rank,
            alpha=cfg.lora_alpha,
            dimension=cat.dimension,
            weights=blob,
            watermark=watermark,
            metrics=metrics,
            keep=cfg.lora_keep_versions,
        )
    return True


async def load_latest(engine: AsyncEngine, vectors: VectorIndex, current: int) -> ModelState | None:
    """The newest stored models if newer than `current` (another replica may have trained them)."""
    async with engine.connect() as conn:
        newest = await artifacts.latest_snapshot_version(conn, SNAPSHOT_KIND)
        if newest is None or newest <= current:
            return None
        snapshot = await artifacts.latest_snapshot(conn, SNAPSHOT_KIND)
        edges = await artifacts.load_edges(conn)
    if snapshot is None:
        return None
    cat = await load_catalog(engine, vectors)

    def build() -> tuple[EaseRecommender | None, GraphRecommender]:
        ease = EaseRecommender.from_bytes(snapshot.payload) if snapshot.payload else None
        graph = GraphRecommender.from_edges(edges.get("content", []), edges.get("coview", []))
        return ease, graph

    ease, graph = await asyncio.to_thread(build)
    return ModelState(
        catalog=cat, ease=ease, graph=graph, version=snapshot.version, watermark=snapshot.watermark
    )
