"""The SONA graph: content-content edges (shared attributes) and item co-viewing edges.

Edges are derived here (vectorized, sparse) and stored by the service; `GraphRecommender` loads them
into one sparse adjacency matrix and traverses up to two hops from the user's seed items with sparse
matrix products, keeping per seed and per relation contributions so every hit says why it was found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from media_gateway.sona.models.interactions import InteractionMatrix

GENRE_WEIGHT, CAST_WEIGHT, DIRECTOR_WEIGHT, KEYWORD_WEIGHT = 0.35, 0.25, 0.20, 0.20
# A second hop is weaker evidence than a direct edge.
HOP_DECAY = 0.5
# Dense block size (rows x items floats) used while deriving edges: bounded memory at any catalog size.
_BLOCK_CELLS = 4_000_000
# Seeds x nodes below which the per-seed "why" is computed on dense rows (faster than sparse slicing).
_DENSE_SHARE_CELLS = 2_000_000

Edge = tuple[str, str, float]


@dataclass(slots=True)
class ItemFeatures:
    content_id: str
    genres: list[str] = field(default_factory=list)
    cast: list[str] = field(default_factory=list)
    directors: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GraphHit:
    content_id: str
    score: float
    via: str  # the seed content id that contributed most
    relation: str  # "content" | "coview": the edge kind that contributed most


def _incidence(values: Sequence[Iterable[str]]) -> sp.csr_matrix:
    """items x vocabulary, 1 where the item has the value (case-insensitive, duplicates once)."""
    vocabulary: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, items in enumerate(values):
        for value in {v.strip().casefold() for v in items if v.strip()}:
            rows.append(row)
            cols.append(vocabulary.setdefault(value, len(vocabulary)))
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(values), max(len(vocabulary), 1)))


def _top_k_edges(block: np.ndarray, offset: int, ids: Sequence[str], top_k: int) -> list[Edge]:
    """The top_k positive entries of each row of a dense block (rows start at `offset`)."""
    n_rows, n_cols = block.shape
    k = min(top_k, n_cols)
    if k <= 0:
        return []
    cols = (
        np.argpartition(-block, k - 1, axis=1)[:, :k]
        if k < n_cols
        else np.tile(np.arange(n_cols), (n_rows, 1))
    )
    values = np.take_along_axis(block, cols, axis=1)
    edges: list[Edge] = []
    for r, c in zip(*np.nonzero(values > 0), strict=True):
        edges.append((ids[offset + int(r)], ids[int(cols[r, c])], float(values[r, c])))
    return edges


def content_edges(features: Sequence[ItemFeatures], *, top_k: int = 50) -> list[Edge]:
    """Directed edges src → dst with weight Σ field weight x Jaccard(src field, dst field).

    Fields: genres 0.35, cast 0.25, directors 0.20, keywords 0.20, so a weight lies in [0, 1]. An
    empty field on either side contributes 0. Each item keeps its `top_k` strongest edges.
    """
    ids = [f.content_id for f in features]
    n = len(ids)
    if n < 2:
        return []
    fields = [
        (GENRE_WEIGHT, _incidence([f.genres for f in features])),
        (CAST_WEIGHT, _incidence([f.cast for f in features])),
        (DIRECTOR_WEIGHT, _incidence([f.directors for f in features])),
        (KEYWORD_WEIGHT, _incidence([f.keywords for f in features])),
    ]
    prepared = [
        (weight, m, m.T.tocsr(), np.asarray(m.sum(axis=1), dtype=np.float32).ravel()) for weight, m in fields
    ]
    block_rows = max(1, _BLOCK_CELLS // n)
    edges: list[Edge] = []
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        total = np.zeros((stop - start, n), dtype=np.float32)
        for weight, m, m_t, sizes in prepared:
            inter = (m[start:stop] @ m_t).toarray()
            union = sizes[start:stop, None] + sizes[None, :] - inter
            np.divide(inter, union, out=inter, where=union > 0)
            total += weight * inter
        total[np.arange(stop - start), np.arange(start, stop)] = 0.0
        edges.extend(_top_k_edges(total, start, ids, top_k))
    return edges


def coview_edges(matrix: InteractionMatrix, *, min_support: int = 2, top_k: int = 50) -> list[Edge]:
    """Item-item co-viewing: cosine of the binarized item columns, pairs seen by ≥ min_support users.

    "Users who liked X also liked Y": only positive interactions count.
    """
    x = (matrix.matrix > 0).astype(np.float32).tocsc()
    n = x.shape[1]
    if n < 2:
        return []
    x_t = x.T.tocsr()
    counts = np.asarray(x.sum(axis=0), dtype=np.float32).ravel()
    norms = np.sqrt(counts)
    block_rows = max(1, _BLOCK_CELLS // n)
    edges: list[Edge] = []
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        co = (x_t[start:stop] @ x).toarray()
        co[np.arange(stop - start), np.arange(start, stop)] = 0.0
        co[co < min_support] = 0.0
        denominator = norms[start:stop, None] * norms[None, :]
        np.divide(co, denominator, out=co, where=denominator > 0)
        edges.extend(_top_k_edges(co, start, matrix.item_ids, top_k))
    return edges


def _adjacency(edges: Iterable[Edge], index: Mapping[str, int], n: int) -> sp.csr_matrix:
    """Symmetric adjacency: an edge found from either end links both; repeated pairs keep the max."""
    strongest: dict[tuple[int, int], float] = {}
    for a, b, w in edges:
        if w > 0 and a != b:
            i, j = index[a], index[b]
            key = (i, j) if i < j else (j, i)
            if w > strongest.get(key, 0.0):
                strongest[key] = w
    pairs = np.array(list(strongest), dtype=np.int64).reshape(-1, 2)
    weights = np.fromiter(strongest.values(), dtype=np.float32, count=len(strongest))
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return sp.csr_matrix((np.concatenate([weights, weights]), (rows, cols)), shape=(n, n), dtype=np.float32)


def _weighted_rows(matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray) -> sp.csr_matrix:
    """matrix[rows] with row i scaled by weights[i], without scipy's fancy-indexing machinery."""
    starts, stops = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = stops - starts
    # The CSR positions of every selected row's entries, in row order, without a Python loop.
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    positions = (np.arange(int(lengths.sum())) + offsets).astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(matrix.indptr.dtype)
    data = matrix.data[positions] * np.repeat(weights, lengths)
    return sp.csr_matrix(
        (data.astype(np.float32), matrix.indices[positions], indptr), shape=(rows.size, matrix.shape[1])
    )


class GraphRecommender:
    """In-memory traversal of the content + co-viewing graph.

    score(j) = Σ_seeds w_s · (W[s, j] + HOP_DECAY · Σ_k W[s, k] · Ŵ[k, j]) where W = content_weight ·
    A_content + coview_weight · A_coview and Ŵ is W row-normalized, so a hub spreads its mass instead
    of multiplying it.
    """

    def __init__(
        self,
        node_ids: list[str],
        content: sp.csr_matrix,
        coview: sp.csr_matrix,
        *,
        content_weight: float,
        coview_weight: float,
    ) -> None:
        self.node_ids = node_ids
        self.node_index = {node: i for i, node in enumerate(node_ids)}
        self.content = (content * content_weight).tocsr().astype(np.float32)
        self.coview = (coview * coview_weight).tocsr().astype(np.float32)
        combined = (self.content + self.coview).tocsr()
        out_degree = np.asarray(combined.sum(axis=1), dtype=np.float32).ravel()
        inverse = np.divide(1.0, out_degree, out=np.zeros_like(out_degree), where=out_degree > 0)
        self.transition: sp.csr_matrix = sp.diags(inverse).dot(combined).tocsr().astype(np.float32)
        self.transition_t: sp.csr_matrix = self.transition.T.tocsr()

    def __repr__(self) -> str:
        return (
            f"GraphRecommender(nodes={len(self.node_ids)}, content_edges={self.content.nnz}, "
            f"coview_edges={self.coview.nnz})"
        )

    @property
    def edge_count(self) -> int:
        return int(self.content.nnz + self.coview.nnz)

    @classmethod
    def from_edges(
        cls,
        content: Sequence[Edge],
        coview: Sequence[Edge],
        *,
        content_weight: float = 0.5,
        coview_weight: float = 0.5,
    ) -> GraphRecommender:
        nodes = sorted({a for a, _, _ in content} | {b for _, b, _ in content})
        nodes_set = set(nodes)
        nodes += sorted(({a for a, _, _ in coview} | {b for _, b, _ in coview}) - nodes_set)
        index = {node: i for i, node in enumerate(nodes)}
        n = len(nodes)
        return cls(
            nodes,
            _adjacency(content, index, n),
            _adjacency(coview, index, n),
            content_weight=content_weight,
            coview_weight=coview_weight,
        )

    def _first_hop(
        self, seeds: Mapping[str, float], hops: int
    ) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
        """(seed rows, seed-weighted content rows, seed-weighted co-view rows); sparse, one row per seed.

        Built straight from the CSR arrays: a traversal is a handful of numpy calls, not dozens of
        scipy constructors (their overhead, not the arithmetic, dominates at catalog sizes).
        """
        if hops not in (1, 2):
            raise ValueError(f"hops must be 1 or 2, got {hops}")
        known = [(self.node_index[s], w) for s, w in seeds.items() if s in self.node_index and w > 0]
        seed_rows = np.fromiter((i for i, _ in known), dtype=np.int64, count=len(known))
        weights = np.fromiter((w for _, w in known), dtype=np.float32, count=len(known))
        return (
            seed_rows,
            _weighted_rows(self.content, seed_rows, weights),
            _weighted_rows(self.coview, seed_rows, weights),
        )

    def _total(self, by_content: sp.csr_matrix, by_coview: sp.csr_matrix, hops: int) -> np.ndarray:
        n = len(self.node_ids)
        first = np.bincount(by_content.indices, by_content.data, minlength=n) + np.bincount(
            by_coview.indices, by_coview.data, minlength=n
        )
        first = first.astype(np.float32)
        if hops == 1:
            return first
        total: np.ndarray = first + HOP_DECAY * (self.transition_t @ first)
        return total

    def _shares(
        self, by_content: sp.csr_matrix, by_coview: sp.csr_matrix, candidates: np.ndarray, hops: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per seed (rows) x candidate (columns) contributions, through content and co-view edges."""
        n_seeds = by_content.shape[0]
        n = len(self.node_ids)
        # Columns of the transition for the candidates = rows of its transpose: a cheap row slice.
        into_candidates = (
            _weighted_rows(self.transition_t, candidates, np.ones(candidates.size, np.float32))
            if hops == 2
            else None
        )
        shares = []
        for first in (by_content, by_coview):
            if n_seeds * n <= _DENSE_SHARE_CELLS:
                dense = np.zeros((n_seeds, n), dtype=np.float32)
                dense[np.repeat(np.arange(n_seeds), np.diff(first.indptr)), first.indices] = first.data
                share = dense[:, candidates]
                if into_candidates is not None:
                    share += HOP_DECAY * (into_candidates @ dense.T).T
            else:
                share = first[:, candidates].toarray()
                if into_candidates is not None:
                    share += HOP_DECAY * (first @ into_candidates.T).toarray()
            shares.append(share)
        return shares[0], shares[1]

    def score_vector(self, seeds: Mapping[str, float], *, hops: int = 2) -> np.ndarray:
        """Affinity of every node (in `node_ids` order) to the seeds; 0 for the seeds themselves."""
        seed_rows, by_content, by_coview = self._first_hop(seeds, hops)
        if seed_rows.size == 0:
            return np.zeros(len(self.node_ids), dtype=np.float32)
        scores = self._total(by_content, by_coview, hops)
        scores[seed_rows] = 0.0
        return scores

    def recommend(
        self,
        seeds: Mapping[str, float],
        *,
        hops: int = 2,
        limit: int = 100,
        exclude: Iterable[str] = frozenset(),
    ) -> list[GraphHit]:
        """Ranked items reachable within `hops` (1 or 2) of the seeds; seeds and `exclude` never appear.

        The ranking uses two sparse mat-vecs over the summed seeds; the per-seed, per-relation split that
        names `via` and `relation` is computed for the returned candidates only.
        """
        seed_rows, by_content, by_coview = self._first_hop(seeds, hops)
        if seed_rows.size == 0 or limit <= 0:
            return []
        scores = self._total(by_content, by_coview, hops)
        scores[seed_rows] = 0.0
        for content_id in exclude:
            index = self.node_index.get(content_id)
            if index is not None:
                scores[index] = 0.0
        candidates = np.flatnonzero(scores > 0)
        if candidates.size > limit:
            candidates = candidates[np.argpartition(-scores[candidates], limit - 1)[:limit]]
        candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
        by_content_share, by_coview_share = self._shares(by_content, by_coview, candidates, hops)
        via = seed_rows[np.argmax(by_content_share + by_coview_share, axis=0)]
        content_share = by_content_share.sum(axis=0)
        coview_share = by_coview_share.sum(axis=0)
        node_ids = self.node_ids
        return [
            GraphHit(node_ids[j], score, node_ids[v], "content" if by_content_edges else "coview")
            for j, score, v, by_content_edges in zip(
                candidates.tolist(),
                scores[candidates].tolist(),
                via.tolist(),
                (content_share >= coview_share).tolist(),
                strict=True,
            )
        ]
