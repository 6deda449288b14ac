"""Item-item collaborative models: EASE (SONA's own), plus popularity and ItemKNN baselines.

All three share one shape: `fit(matrix)`, then `score(history)` (content_id → raw score for every known
item not in the history) and `score_rows(rows)` (a dense users x items block, for offline evaluation).
Training is CPU-bound and synchronous: call it from a background task through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from media_gateway.sona.models.interactions import InteractionMatrix, history_vector

# Above this many items the dense EASE Gram matrix (items² floats) and its inverse get costly:
# 5,000 items is 100 MB of float32 and ~3 s to invert on 2 cores.
EASE_MAX_ITEMS = 5000


class ItemScorer(Protocol):
    item_ids: list[str]

    @property
    def is_fitted(self) -> bool: ...

    def score(self, history: dict[str, float], *, limit: int | None = None) -> dict[str, float]: ...

    def score_rows(self, rows: sp.csr_matrix) -> np.ndarray: ...


def _top_scores(
    scores: np.ndarray, item_ids: list[str], seen: np.ndarray, limit: int | None
) -> dict[str, float]:
    candidates = np.flatnonzero(~seen)
    if limit is not None and limit < candidates.size:
        part = np.argpartition(-scores[candidates], limit - 1)[:limit]
        candidates = candidates[part]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return {item_ids[int(j)]: float(scores[j]) for j in order}


class _Fitted:
    item_ids: list[str]
    item_index: dict[str, int]

    def __init__(self) -> None:
        self.item_ids = []
        self.item_index = {}

    @property
    def is_fitted(self) -> bool:
        return bool(self.item_ids)

    def _set_items(self, item_ids: list[str]) -> None:
        self.item_ids = list(item_ids)
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted")

    def _history(self, history: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        self._require_fitted()
        vector = history_vector(history, self.item_index)
        seen = np.zeros(len(self.item_ids), dtype=bool)
        for content_id in history:
            index = self.item_index.get(content_id)
            if index is not None:
                seen[index] = True
        return vector, seen

    def score_rows(self, rows: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def score(self, history: dict[str, float], *, limit: int | None = None) -> dict[str, float]:
        """content_id → raw score for known items not in `history`, best first (top `limit` if set)."""
        vector, seen = self._history(history)
        scores = self.score_rows(sp.csr_matrix(vector[None, :]))[0]
        return _top_scores(scores, self.item_ids, seen, limit)


class EaseRecommender(_Fitted):
    """EASE (Steck 2019): B = I - P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, with diag(B) = 0.

    A closed form, so training is one Gram matrix and one inverse. Beyond `max_items` only the most
    popular items are modelled; the rest can still be recommended by the other sources.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weights: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self.l2 = 0.0

    def fit(
        self, matrix: InteractionMatrix, *, l2: float = 500.0, max_items: int = EASE_MAX_ITEMS
    ) -> EaseRecommender:
        if l2 <= 0:
            raise ValueError(f"l2 must be > 0, got {l2}")
        x = matrix.matrix
        keep = np.arange(x.shape[1])
        if x.shape[1] > max_items:
            counts = matrix.item_counts()
            keep = np.sort(np.argsort(-counts, kind="stable")[:max_items])
            x = x[:, keep]
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += l2
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights = weights.astype(np.float32)
        self.l2 = l2
        self._set_items([matrix.item_ids[int(j)] for j in keep])
        return self

    def score_rows(self, rows: sp.csr_matrix) -> np.ndarray:
        self._require_fitted()
        scores: np.ndarray = np.asarray(rows @ self.weights, dtype=np.float32)
        return scores

    def similar(self, content_id: str, k: int) -> list[tuple[str, float]]:
        """The k items EASE predicts most strongly from `content_id` alone (positive weights only)."""
        self._require_fitted()
        index = self.item_index.get(content_id)
        if index is None or k <= 0:
            return []
        row = self.weights[index]
        order = np.argsort(-row, kind="stable")[:k]
        return [(self.item_ids[int(j)], float(row[j])) for j in order if j != index and row[j] > 0]

    def to_bytes(self) -> bytes:
        self._require_fitted()
        buffer = io.BytesIO()
        np.savez(
            buffer,
            weights=self.weights,
            item_ids=np.array(self.item_ids, dtype=np.str_),
            l2=np.array(self.l2, dtype=np.float64),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EaseRecommender:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            model = cls()
            model.weights = archive["weights"].astype(np.float32)
            model.l2 = float(archive["l2"])
            model._set_items([str(item) for item in archive["item_ids"]])
        if model.weights.shape != (len(model.item_ids), len(model.item_ids)):
            raise ValueError("corrupt EASE snapshot: weights do not match the item ids")
        return model


class PopularityRecommender(_Fitted):
    """Most-interacted items first, the same for everyone (baseline, and cold-start fallback)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: np.ndarray = np.zeros(0, dtype=np.float32)

    def fit(self, matrix: InteractionMatrix) -> PopularityRecommender:
        self.counts = matrix.item_counts().astype(np.float32)
        self._set_items(matrix.item_ids)
        return self

    def score_rows(self, rows: sp.csr_matrix) -> np.ndarray:
        self._require_fitted()
        return np.broadcast_to(self.counts, (rows.shape[0], self.counts.size)).copy()


class ItemKnnRecommender(_Fitted):
    """Cosine item-item similarity over binarized interactions, `neighbors` kept per item (baseline)."""

    def __init__(self) -> None:
        super().__init__()
        self.similarity: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(
        self, matrix: InteractionMatrix, *, neighbors: int = 100, shrink: float = 0.0
    ) -> ItemKnnRecommender:
        x = (matrix.matrix > 0).astype(np.float32).tocsc()
        norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel())
        co = (x.T @ x).toarray()
        np.fill_diagonal(co, 0.0)
        sim = co / (np.outer(norms, norms) + shrink + 1e-9)
        self.similarity = _keep_top_k(sim.astype(np.float32), neighbors)
        self._set_items(matrix.item_ids)
        return self

    def score_rows(self, rows: sp.csr_matrix) -> np.ndarray:
        self._require_fitted()
        scores: np.ndarray = np.asarray((rows @ self.similarity).toarray(), dtype=np.float32)
        return scores


def _keep_top_k(dense: np.ndarray, k: int) -> sp.csr_matrix:
    """The k largest positive entries of each row, as CSR."""
    n = dense.shape[1]
    if k < n:
        cols = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    else:
        cols = np.tile(np.arange(n), (dense.shape[0], 1))
    rows = np.repeat(np.arange(dense.shape[0]), cols.shape[1])
    values = dense[rows, cols.ravel()]
    positive = values > 0
    return sp.csr_matrix(
        (values[positive], (rows[positive], cols.ravel()[positive])), shape=dense.shape, dtype=np.float32
    )
