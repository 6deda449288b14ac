"""Per-user LoRA adapters over the base embedding space.

An adapter is a rank-r update of the identity, x ↦ normalize(x + (alpha/r)·x·A·B), applied to embedder
output (the user's query or preference vector and the candidates' vectors) so that similarity reflects
the user's taste. B starts at zero, as in LoRA, so an untrained adapter is the identity.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

LORA_RANK = 8
LORA_ALPHA = 16.0
_REGULARIZATION = 1e-3


def _normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    normalized: np.ndarray = (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalized


@dataclass(slots=True)
class LoraAdapter:
    a: np.ndarray  # d x r
    b: np.ndarray  # r x d
    rank: int = LORA_RANK
    alpha: float = LORA_ALPHA

    def __post_init__(self) -> None:
        self.a = np.asarray(self.a, dtype=np.float32)
        self.b = np.asarray(self.b, dtype=np.float32)
        if self.a.ndim != 2 or self.b.ndim != 2:
            raise ValueError("LoRA matrices must be 2-d")
        d, r = self.a.shape
        if self.b.shape != (r, d) or r != self.rank:
            raise ValueError(f"LoRA shapes a={self.a.shape}, b={self.b.shape} do not match rank {self.rank}")
        if not (np.all(np.isfinite(self.a)) and np.all(np.isfinite(self.b))):
            raise ValueError("LoRA matrices must be finite")

    @property
    def dimension(self) -> int:
        return int(self.a.shape[0])

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def is_zero(self) -> bool:
        """True when the update x·A·B vanishes for every x (the adapter is the identity)."""
        return not np.any(self.a) or not np.any(self.b)

    @classmethod
    def identity(cls, dimension: int, *, rank: int = LORA_RANK, alpha: float = LORA_ALPHA) -> LoraAdapter:
        return cls(
            np.zeros((dimension, rank), np.float32), np.zeros((rank, dimension), np.float32), rank, alpha
        )

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """x + (alpha/r)·x·A·B, rows L2-normalized; accepts one vector (d,) or a matrix (n, d)."""
        x = np.asarray(vectors, dtype=np.float32)
        if x.shape[-1] != self.dimension:
            raise ValueError(f"vectors of dimension {x.shape[-1]}, adapter of dimension {self.dimension}")
        return _normalize(x + self.scale * ((x @ self.a) @ self.b))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, a=self.a, b=self.b, rank=np.array(self.rank), alpha=np.array(self.alpha))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LoraAdapter:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return cls(archive["a"], archive["b"], int(archive["rank"]), float(archive["alpha"]))


def personalize(embedder_vectors: np.ndarray, adapter: LoraAdapter | None) -> np.ndarray:
    """The personalized, L2-normalized vectors; without an adapter, just normalized."""
    if adapter is None or adapter.is_zero:
        return _normalize(np.asarray(embedder_vectors, dtype=np.float32))
    return adapter.apply(embedder_vectors)


class _Adam:
    def __init__(self, shape: tuple[int, ...], lr: float) -> None:
        self.lr = lr
        self.m = np.zeros(shape, np.float64)
        self.v = np.zeros(shape, np.float64)
        self.t = 0

    def step(self, param: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad * grad
        m_hat = self.m / (1 - 0.9**self.t)
        v_hat = self.v / (1 - 0.999**self.t)
        param -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def train_adapter(
    item_vectors: np.ndarray,
    weights: np.ndarray,
    *,
    negatives: np.ndarray | None = None,
    rank: int = LORA_RANK,
    alpha: float = LORA_ALPHA,
    epochs: int = 50,
    lr: float = 0.01,
    seed: int = 0,
    keep: float = 1.0,
) -> LoraAdapter:
    """Fit an adapter to one user's interactions by full-batch Adam steps.

    Objective: maximize the weighted cosine between the adapted positive items (weight > 0) and their
    weighted centroid; minimize it for negatives (rows with weight < 0, plus `negatives`); plus `keep` x
    the mean (1 - cosine) between each adapted training row and its original, so the adapter bends the
    space towards the user's taste instead of collapsing it onto one direction (keep = 0 lets it
    collapse); and a small L2 penalty on A and B. A is drawn from N(0, 1/d) with `seed`, B starts at
    zero, so training is deterministic for a seed and zero epochs give the identity.
    """
    x = np.asarray(item_vectors, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if x.ndim != 2 or x.shape[0] != w.size:
        raise ValueError(f"item_vectors {x.shape} and weights {w.shape} do not match")
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    d = x.shape[1]
    negative_rows = [x[w < 0]]
    if negatives is not None and len(negatives):
        negative_rows.append(np.asarray(negatives, dtype=np.float64).reshape(-1, d))
    neg = np.concatenate(negative_rows) if negative_rows else np.zeros((0, d))
    pos, pos_w = x[w > 0], w[w > 0]
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0 / np.sqrt(d), size=(d, rank))
    b = np.zeros((rank, d))
    if pos.shape[0] == 0 or epochs <= 0:
        return LoraAdapter(a.astype(np.float32), b.astype(np.float32), rank, alpha)

    target = (pos_w[:, None] * _normalize(pos.astype(np.float32)).astype(np.float64)).sum(axis=0)
    target /= max(float(np.linalg.norm(target)), 1e-12)
    rows = np.concatenate([pos, neg])
    # dLoss/du per row: pull positives (by weight share), push negatives (equal shares).
    pull = -(pos_w / pos_w.sum())
    push = np.full(neg.shape[0], 1.0 / neg.shape[0]) if neg.shape[0] else np.zeros(0)
    grad_u = np.concatenate([pull, push])[:, None] * target[None, :]
    originals = _normalize(rows.astype(np.float32)).astype(np.float64)
    grad_u -= (keep / rows.shape[0]) * originals
    scale = alpha / rank
    adam_a, adam_b = _Adam(a.shape, lr), _Adam(b.shape, lr)
    for _ in range(epochs):
        hidden = rows @ a
        z = rows + scale * hidden @ b
        norms = np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        u = z / norms
        grad_z = (grad_u - (grad_u * u).sum(axis=1, keepdims=True) * u) / norms
        grad_b = scale * hidden.T @ grad_z + 2 * _REGULARIZATION * b
        grad_a = rows.T @ (scale * grad_z @ b.T) + 2 * _REGULARIZATION * a
        adam_a.step(a, grad_a)
        adam_b.step(b, grad_b)
    return LoraAdapter(a.astype(np.float32), b.astype(np.float32), rank, alpha)
