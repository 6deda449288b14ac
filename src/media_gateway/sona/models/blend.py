"""Blend the per-source scores into one ranking, then diversify it with MMR."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

SOURCE_WEIGHTS: dict[str, float] = {"collaborative": 0.35, "content": 0.25, "graph": 0.30, "context": 0.10}
MMR_LAMBDA = 0.7


@dataclass(slots=True)
class BlendedItem:
    content_id: str
    score: float
    # source → weight x normalized score, so the values add up to `score` (before any boost).
    sources: dict[str, float] = field(default_factory=dict)


def normalize(scores: Mapping[str, float]) -> dict[str, float]:
    """Min-max to [0, 1] within one source; a source whose scores are all equal maps them to 1.0."""
    if not scores:
        return {}
    values = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    low, high = float(values.min()), float(values.max())
    if not np.isfinite(low) or not np.isfinite(high):
        raise ValueError("scores must be finite")
    if high - low < 1e-12:
        return dict.fromkeys(scores, 1.0)
    return {key: (float(value) - low) / (high - low) for key, value in scores.items()}


def blend(
    per_source: Mapping[str, Mapping[str, float]], weights: Mapping[str, float] = SOURCE_WEIGHTS
) -> list[BlendedItem]:
    """Σ_source weight x normalized score per item, best first (ties by content id).

    A source without a weight counts with weight 0 (it is still listed in `sources`, at 0).
    """
    items: dict[str, BlendedItem] = {}
    for source, scores in per_source.items():
        weight = float(weights.get(source, 0.0))
        for content_id, value in normalize(scores).items():
            item = items.get(content_id)
            if item is None:
                item = items[content_id] = BlendedItem(content_id, 0.0, {})
            contribution = weight * value
            item.sources[source] = contribution
            item.score += contribution
    return sorted(items.values(), key=lambda item: (-item.score, item.content_id))


def apply_boost(items: Sequence[BlendedItem], boosts: Mapping[str, float]) -> list[BlendedItem]:
    """Multiply scores by a per-item factor (e.g. the LoRA affinity boost) and re-rank."""
    boosted = [replace(item, score=item.score * boosts.get(item.content_id, 1.0)) for item in items]
    return sorted(boosted, key=lambda item: (-item.score, item.content_id))


def mmr(
    items: Sequence[BlendedItem],
    vectors: Mapping[str, np.ndarray],
    *,
    lam: float = MMR_LAMBDA,
    limit: int,
) -> list[BlendedItem]:
    """Maximal marginal relevance: pick argmax λ·rel - (1-λ)·max cosine to what is already picked.

    Relevance is the score divided by the best score, so λ trades like against like. Items without a
    vector are treated as dissimilar to everything.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be within [0, 1], got {lam}")
    n = len(items)
    if n == 0 or limit <= 0:
        return []
    scores = np.array([item.score for item in items], dtype=np.float64)
    top = float(np.max(np.abs(scores)))
    relevance = scores / top if top > 0 else scores
    dimension = next((np.asarray(v).shape[-1] for v in vectors.values()), 0)
    matrix = np.zeros((n, dimension), dtype=np.float32)
    for i, item in enumerate(items):
        vector = vectors.get(item.content_id)
        if vector is not None:
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                matrix[i] = np.asarray(vector, dtype=np.float32) / norm
    similarity = matrix @ matrix.T
    # Starts at 0: dissimilar (or opposite) items are never penalized, nor rewarded.
    max_similarity = np.zeros(n, dtype=np.float64)
    available = np.ones(n, dtype=bool)
    chosen: list[BlendedItem] = []
    for _ in range(min(limit, n)):
        objective = lam * relevance - (1.0 - lam) * max_similarity
        objective[~available] = -np.inf
        pick = int(np.argmax(objective))
        available[pick] = False
        chosen.append(items[pick])
        max_similarity = np.maximum(max_similarity, similarity[pick])
    return chosen
