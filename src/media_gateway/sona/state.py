"""What SONA holds in memory: the catalog as the models see it, the trained models, and per-user state.

Everything here is built off the event loop (`asyncio.to_thread`) and then only read; a new training
run builds a new `ModelState` and swaps it in whole.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import scipy.sparse as sp

from media_gateway.sona.models import (
    EaseRecommender,
    GraphHit,
    GraphRecommender,
    Interaction,
    ItemFeatures,
    LoraAdapter,
    personalize,
    preference_vector,
)
from media_gateway.sona.repository.artifacts import AdapterRow
from media_gateway.sona.repository.catalog import CatalogRow
from media_gateway.sona.signals import UserItem

# Seeds the graph walk starts from: the user's strongest and most recent titles.
GRAPH_MAX_SEEDS = 50
GRAPH_HITS = 2000
# Titles whose vectors stand for a cold-start user's favourite genres.
GENRE_CENTROID_TITLES = 20


@dataclass
class CatalogState:
    rows: list[CatalogRow]
    vectors: np.ndarray  # N x d, unit rows; zero rows for titles without a vector
    has_vector: np.ndarray  # N bools
    availability: list[frozenset[tuple[str, str]]]  # per title: (region, platform) watchable today
    loaded_on: date
    index: dict[str, int] = field(init=False)
    popularity: np.ndarray = field(init=False)  # N, log-scaled to [0, 1]
    genres: list[frozenset[str]] = field(init=False)
    _masks: dict[tuple[str | None, tuple[str, ...] | None], np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self._masks = {}
        self.index = {row.id: i for i, row in enumerate(self.rows)}
        raw = np.array([math.log1p(max(row.popularity, 0.0)) for row in self.rows], dtype=np.float32)
        top = float(raw.max()) if raw.size else 0.0
        self.popularity = raw / top if top > 0 else raw
        self.genres = [frozenset(g.casefold() for g in row.genres) for row in self.rows]

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def features(self) -> list[ItemFeatures]:
        return [ItemFeatures(r.id, r.genres, r.cast, r.directors, r.keywords) for r in self.rows]

    def vector(self, content_id: str) -> np.ndarray | None:
        i = self.index.get(content_id)
        if i is None or not self.has_vector[i]:
            return None
        vector: np.ndarray = self.vectors[i]
        return vector

    def available(self, i: int, region: str | None, platforms: Iterable[str] | None) -> bool:
        offers = self.availability[i]
        wanted = set(platforms) if platforms else None
        for offer_region, platform in offers:
            if (region is None or offer_region == region) and (wanted is None or platform in wanted):
                return True
        return False

    def mask(self, region: str | None, platforms: Iterable[str] | None) -> np.ndarray:
        """N bools: watchable today in `region` (any if None) on one of `platforms` (any if None)."""
        key = (region, tuple(sorted(set(platforms))) if platforms else None)
        found = self._masks.get(key)
        if found is None:
            found = np.array([self.available(i, region, key[1]) for i in range(self.size)], dtype=bool)
            if len(self._masks) > 256:
                self._masks.clear()
            self._masks[key] = found
        return found

    @classmethod
    def empty(cls, dimension: int) -> CatalogState:
        return cls([], np.zeros((0, dimension), np.float32), np.zeros(0, bool), [], date.min)


@dataclass
class ModelState:
    catalog: CatalogState
    ease: EaseRecommender | None
    graph: GraphRecommender | None
    version: int
    watermark: int
    # Catalog position of each EASE item (-1: no longer in the catalog).
    ease_positions: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.ease is None:
            self.ease_positions = np.zeros(0, dtype=np.int64)
        else:
            self.ease_positions = np.array(
                [self.catalog.index.get(item, -1) for item in self.ease.item_ids], dtype=np.int64
            )


@dataclass
class UserState:
    user_id: str
    model_version: int
    catalog: CatalogState
    items: dict[str, UserItem]
    history: dict[str, float]  # content id -> affinity (-1..1), non-zero only
    seen: frozenset[str]  # titles never recommended again (watched, dismissed, on the watchlist)
    engaged: int
    adapter: LoraAdapter | None
    adapter_row: AdapterRow | None
    favourite_genres: tuple[str, ...]
    preference: np.ndarray | None  # personalized (adapter applied), unit norm
    collaborative: np.ndarray  # N, [0, 1]
    content: np.ndarray  # N, [0, 1]
    graph: np.ndarray  # N, [0, 1]
    graph_hits: dict[str, GraphHit]
    built_at: float

    @property
    def positives(self) -> dict[str, float]:
        return {cid: w for cid, w in self.history.items() if w > 0}


def _scale_to_unit(values: np.ndarray) -> np.ndarray:
    """Negative → 0, the maximum → 1."""
    clipped: np.ndarray = np.clip(values, 0.0, None).astype(np.float32)
    top = float(clipped.max()) if clipped.size else 0.0
    if top > 0:
        clipped /= top
    return clipped


def _min_max(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.zeros_like(values, dtype=np.float32)
    if not mask.any():
        return out
    low, high = float(values[mask].min()), float(values[mask].max())
    if high - low < 1e-9:
        out[mask] = 1.0
        return out
    out[mask] = (values[mask] - low) / (high - low)
    return out


def genre_centroid(catalog: CatalogState, genres: Iterable[str]) -> np.ndarray | None:
    """The mean vector of the most popular titles in `genres`: a cold-start user's taste stand-in."""
    wanted = {g.casefold() for g in genres}
    if not wanted or catalog.size == 0:
        return None
    matching = np.array([bool(g & wanted) for g in catalog.genres]) & catalog.has_vector
    positions = np.flatnonzero(matching)
    if positions.size == 0:
        return None
    top = positions[np.argsort(-catalog.popularity[positions], kind="stable")[:GENRE_CENTROID_TITLES]]
    centroid = catalog.vectors[top].mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    return (centroid / norm).astype(np.float32) if norm > 0 else None


def build_user_state(
    model: ModelState,
    user_id: str,
    items: list[UserItem],
    adapter_row: AdapterRow | None,
    favourite_genres: tuple[str, ...],
    now: float,
) -> UserState:
    """Everything a request needs about one user, scored against the whole catalog once."""
    catalog = model.catalog
    n = catalog.size
    by_id = {item.content_id: item for item in items}
    history = {item.content_id: item.affinity for item in items if item.affinity != 0}
    seen = frozenset(item.content_id for item in items if item.watched or item.dismissed or item.in_watchlist)
    engaged = sum(1 for item in items if item.engaged)

    adapter: LoraAdapter | None = None
    if adapter_row is not None and adapter_row.dimension == catalog.dimension:
        adapter = LoraAdapter.from_bytes(adapter_row.weights)

    vectors = {cid: v for cid in history if (v := catalog.vector(cid)) is not None}
    timeline = [
        Interaction(user_id, cid, weight, by_id[cid].last_at.timestamp()) for cid, weight in history.items()
    ]
    base = preference_vector(vectors, timeline, now=now) if vectors else None
    if base is None:
        base = genre_centroid(catalog, favourite_genres)
    preference = personalize(base, adapter) if base is not None else None

    content = np.zeros(n, dtype=np.float32)
    if preference is not None and n:
        similarity = catalog.vectors @ preference
        content = _min_max(similarity, catalog.has_vector)

    collaborative = np.zeros(n, dtype=np.float32)
    if model.ease is not None and history:
        row = np.zeros(len(model.ease.item_ids), dtype=np.float32)
        for cid, weight in history.items():
            j = model.ease.item_index.get(cid)
            if j is not None:
                row[j] = weight
        if row.any():
            scores = model.ease.score_rows(sp.csr_matrix(row[None, :]))[0]
            keep = model.ease_positions >= 0
            collaborative[model.ease_positions[keep]] = scores[keep]
            for cid in history:
                i = catalog.index.get(cid)
                if i is not None:
                    # EASE says nothing useful about an item from itself.
                    collaborative[i] = min(collaborative[i], 0.0)
            collaborative = _scale_to_unit(collaborative)

    graph = np.zeros(n, dtype=np.float32)
    hits: dict[str, GraphHit] = {}
    positives = sorted(((w, by_id[c].last_at, c) for c, w in history.items() if w > 0), reverse=True)
    if model.graph is not None and positives:
        seeds = {c: w for w, _, c in positives[:GRAPH_MAX_SEEDS]}
        for hit in model.graph.recommend(seeds, hops=2, limit=GRAPH_HITS, exclude=seen):
            i = catalog.index.get(hit.content_id)
            if i is not None:
                graph[i] = hit.score
                hits[hit.content_id] = hit
        graph = _scale_to_unit(graph)

    return UserState(
        user_id=user_id,
        model_version=model.version,
        catalog=catalog,
        items=by_id,
        history=history,
        seen=seen,
        engaged=engaged,
        adapter=adapter,
        adapter_row=adapter_row if adapter is not None else None,
        favourite_genres=favourite_genres,
        preference=preference,
        collaborative=collaborative,
        content=content,
        graph=graph,
        graph_hits=hits,
        built_at=now,
    )


def catalog_vectors(catalog: CatalogState, ids: Iterable[str]) -> Mapping[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for cid in ids:
        vector = catalog.vector(cid)
        if vector is not None:
            out[cid] = vector
    return out
