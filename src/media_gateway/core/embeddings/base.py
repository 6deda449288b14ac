"""What every embedder shares: the `Embedder` protocol, its error, and unit-norm rows."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

FloatMatrix = NDArray[np.float32]


class EmbeddingError(RuntimeError):
    """The embedder could not produce vectors (backend down, bad response, closed embedder)."""


@runtime_checkable
class Embedder(Protocol):
    dimension: int

    @property
    def model_id(self) -> str:
        """Which model makes the vectors; stored with each title's vector, so that a different
        model (an upgrade, a configuration change) makes every stored vector due again."""
        ...

    async def embed(self, texts: list[str]) -> FloatMatrix:
        """One L2-normalized float32 row per text, shape [len(texts), dimension]."""
        ...

    async def embed_one(self, text: str) -> NDArray[np.float32]:
        """The L2-normalized float32 vector of one text, shape [dimension]."""
        ...

    async def aclose(self) -> None: ...


def _empty(dimension: int) -> FloatMatrix:
    return np.zeros((0, dimension), dtype=np.float32)


def _normalize_rows(matrix: FloatMatrix) -> FloatMatrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    # A zero row (possible only for degenerate model output) stays zero instead of becoming NaN.
    normalized: FloatMatrix = (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return normalized
