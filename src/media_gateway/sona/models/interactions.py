"""User-item interactions as a sparse matrix, the input of every SONA model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, slots=True)
class Interaction:
    """One signal of interest: `weight` > 0 for engagement (a view, a like), < 0 for dislike."""

    user_id: str
    content_id: str
    weight: float
    occurred_at: float  # epoch seconds


class InteractionMatrix:
    """Users x items, float32 CSR; repeated (user, item) pairs are summed.

    Ids are sorted, so the same interactions always give the same row and column order.
    """

    def __init__(self, matrix: sp.csr_matrix, user_ids: list[str], item_ids: list[str]) -> None:
        if matrix.shape != (len(user_ids), len(item_ids)):
            raise ValueError(f"matrix shape {matrix.shape} does not match {len(user_ids)} x {len(item_ids)}")
        self.matrix: sp.csr_matrix = matrix
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.user_index = {user: i for i, user in enumerate(user_ids)}
        self.item_index = {item: i for i, item in enumerate(item_ids)}

    def __repr__(self) -> str:
        return f"InteractionMatrix(users={len(self.user_ids)}, items={len(self.item_ids)}, nnz={self.nnz})"

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    @classmethod
    def build(cls, interactions: Iterable[Interaction]) -> InteractionMatrix:
        users: list[str] = []
        items: list[str] = []
        weights: list[float] = []
        for interaction in interactions:
            users.append(interaction.user_id)
            items.append(interaction.content_id)
            weights.append(interaction.weight)
        user_ids = sorted(set(users))
        item_ids = sorted(set(items))
        user_index = {user: i for i, user in enumerate(user_ids)}
        item_index = {item: i for i, item in enumerate(item_ids)}
        rows = np.fromiter((user_index[u] for u in users), dtype=np.int64, count=len(users))
        cols = np.fromiter((item_index[c] for c in items), dtype=np.int64, count=len(items))
        return cls.from_coo(rows, cols, np.asarray(weights, dtype=np.float32), user_ids, item_ids)

    @classmethod
    def from_coo(
        cls,
        rows: np.ndarray,
        cols: np.ndarray,
        weights: np.ndarray,
        user_ids: list[str],
        item_ids: list[str],
    ) -> InteractionMatrix:
        """From index arrays (duplicates summed); for bulk loads that already hold integer ids."""
        matrix = sp.csr_matrix(
            (np.asarray(weights, dtype=np.float32), (rows, cols)),
            shape=(len(user_ids), len(item_ids)),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        return cls(matrix, user_ids, item_ids)

    def user_row(self, user_id: str) -> sp.csr_matrix | None:
        """The user's 1 x items row, or None for a user never seen."""
        index = self.user_index.get(user_id)
        if index is None:
            return None
        row: sp.csr_matrix = self.matrix[index]
        return row

    def history(self, user_id: str) -> dict[str, float]:
        """content_id → summed weight for one user (empty for an unknown user)."""
        row = self.user_row(user_id)
        if row is None:
            return {}
        return {self.item_ids[int(j)]: float(w) for j, w in zip(row.indices, row.data, strict=True)}

    def item_counts(self) -> np.ndarray:
        """How many users interacted (any non-zero weight) with each item."""
        counts: np.ndarray = np.diff(self.matrix.tocsc().indptr)
        return counts


def history_vector(history: dict[str, float], item_index: dict[str, int]) -> np.ndarray:
    """A dense float32 row over `item_index`; unknown content ids are ignored."""
    vector = np.zeros(len(item_index), dtype=np.float32)
    for content_id, weight in history.items():
        index = item_index.get(content_id)
        if index is not None:
            vector[index] += weight
    return vector
