"""Content-based signal: the user's preference vector in the item embedding space."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from media_gateway.sona.models.interactions import Interaction

_DAY_SEC = 86_400.0


def interaction_weight(interaction: Interaction, *, now: float, half_life_days: float) -> float:
    """Engagement x recency: the weight halves every `half_life_days` (future events count as now)."""
    age_days = max(0.0, now - interaction.occurred_at) / _DAY_SEC
    return float(interaction.weight * 0.5 ** (age_days / half_life_days))


def preference_vector(
    item_vectors: Mapping[str, np.ndarray],
    history: Sequence[Interaction],
    *,
    half_life_days: float = 30.0,
    now: float | None = None,
) -> np.ndarray | None:
    """The recency- and engagement-weighted mean of the history's item vectors, L2-normalized.

    Negative weights (dislikes) pull the vector away from those items. None when no history item has
    a vector or the weighted sum cancels out. Query the vector index with the result.
    """
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
    reference = time.time() if now is None else now
    total: np.ndarray | None = None
    for interaction in history:
        vector = item_vectors.get(interaction.content_id)
        if vector is None:
            continue
        weight = interaction_weight(interaction, now=reference, half_life_days=half_life_days)
        contribution = weight * np.asarray(vector, dtype=np.float32)
        total = contribution if total is None else total + contribution
    if total is None:
        return None
    norm = float(np.linalg.norm(total))
    if not np.isfinite(norm) or norm < 1e-9:
        return None
    result: np.ndarray = (total / norm).astype(np.float32)
    return result
