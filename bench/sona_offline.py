"""Offline evaluation of SONA's recommenders on MovieLens 100k; prints one JSON object.

    python bench/sona_offline.py [--data-dir DIR] [--seed 42] [--no-minilm]

Protocol (also printed): implicit feedback = ratings >= 4; every user's positives are shuffled with a
fixed seed and split 80/10/10 (train / validation / test); users with fewer than 3 positives stay in
train only and are not evaluated. Models are fitted on train. Validation picks EASE's l2, ItemKNN's
neighbor count, the content vectors and the blend weights; the test split is scored once, by full
ranking over all items with the user's train and validation items excluded. Metrics: Recall@10 =
hits / |test items|, NDCG@10 with binary gains, averaged over evaluated users.

Components: popularity, ItemKNN (cosine) and a reference EASE written here from the paper (baselines);
SONA's collaborative EaseRecommender; content alone (preference_vector over item vectors, cosine);
graph alone (GraphRecommender over content_edges + coview_edges); the blend (SONA's `blend`). MovieLens
has no time-of-day or device, so the context source is absent from the blend.
"""

from __future__ import annotations

import os

# Small dense products (one user at a time) run many times slower with OpenBLAS threads on a busy
# 2-core machine; one thread per process is also what the service should use.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import itertools
import json
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from media_gateway.core.settings import Settings
from media_gateway.sona.models import (
    SOURCE_WEIGHTS,
    BlendedItem,
    EaseRecommender,
    GraphRecommender,
    Interaction,
    InteractionMatrix,
    ItemFeatures,
    ItemKnnRecommender,
    PopularityRecommender,
    blend,
    content_edges,
    coview_edges,
    mmr,
    preference_vector,
)
from media_gateway.sona.models.graph import CAST_WEIGHT, DIRECTOR_WEIGHT, GENRE_WEIGHT, KEYWORD_WEIGHT
from media_gateway.sona.models.movielens import MOVIELENS_TERMS, MovieLens100k, load_movielens100k

K = 10
ANCHORS = [
    {
        "source": "RecBole ml-1m leaderboard",
        "model": "EASE",
        "ndcg@10": 0.2865,
        "protocol": "ml-1m (not ml-100k), RecBole's own split and filtering, full ranking",
        "comparable": False,
    },
    {
        "source": "Microsoft Recommenders, ml-100k BPR notebook",
        "model": "BPR",
        "ndcg@10": 0.442,
        "protocol": "ml-100k, all ratings as implicit, stratified 75/25 split, top-10 excluding train",
        "comparable": False,
    },
]


class Split:
    def __init__(self, data: MovieLens100k, seed: int) -> None:
        positive = data.ratings >= 4
        users, items, stamps = data.users[positive], data.items[positive], data.timestamps[positive]
        self.item_ids = sorted(data.movies, key=int)
        self.user_ids = sorted(set(data.users.tolist()), key=int)
        item_index = {item: i for i, item in enumerate(self.item_ids)}
        user_index = {user: i for i, user in enumerate(self.user_ids)}
        rng = np.random.default_rng(seed)
        by_user: dict[int, list[tuple[int, int]]] = {}
        for u, i, t in zip(users.tolist(), items.tolist(), stamps.tolist(), strict=True):
            by_user.setdefault(user_index[u], []).append((item_index[i], t))
        train: list[tuple[int, int, int]] = []
        self.valid: dict[int, np.ndarray] = {}
        self.test: dict[int, np.ndarray] = {}
        for u in sorted(by_user):
            rows = by_user[u]
            order = rng.permutation(len(rows))
            rows = [rows[j] for j in order]
            n = len(rows)
            if n < 3:
                train.extend((u, i, t) for i, t in rows)
                continue
            n_test = max(1, round(0.1 * n))
            n_valid = max(1, round(0.1 * n))
            n_train = n - n_test - n_valid
            train.extend((u, i, t) for i, t in rows[:n_train])
            self.valid[u] = np.array([i for i, _ in rows[n_train : n_train + n_valid]])
            self.test[u] = np.array([i for i, _ in rows[n_train + n_valid :]])
        self.train_triples = train
        rows_arr = np.array([u for u, _, _ in train])
        cols_arr = np.array([i for _, i, _ in train])
        self.train = InteractionMatrix.from_coo(
            rows_arr, cols_arr, np.ones(len(train), np.float32), self.user_ids, self.item_ids
        )
        self.train_time = {(u, i): t for u, i, t in train}
        self.user_last: dict[int, int] = {}
        for u, _, t in train:
            self.user_last[u] = max(t, self.user_last.get(u, t))
        self.item_index = item_index

    def excluded(self, users: list[int], *, for_test: bool) -> sp.csr_matrix:
        """Train items (and, for the test, validation items) of each user, as a users x items mask."""
        mask = self.train.matrix[users].copy().tolil()
        if for_test:
            for row, u in enumerate(users):
                mask[row, self.valid[u]] = 1
        return mask.tocsr()


def per_user_metrics(
    scores: np.ndarray, users: list[int], targets: Mapping[int, np.ndarray], mask: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """(Recall@10, NDCG@10) per user, ranking all items but the masked ones."""
    scores = scores.astype(np.float64, copy=True)
    scores[mask.nonzero()] = -np.inf
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
    rows = np.concatenate([np.full(len(targets[u]), row) for row, u in enumerate(users)])
    cols = np.concatenate([targets[u] for u in users])
    relevant_csr = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=scores.shape)
    hits = np.asarray(relevant_csr[np.arange(len(users))[:, None], top].todense())
    sizes = np.asarray(relevant_csr.sum(axis=1)).ravel()
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    ideal = np.cumsum(discounts)[np.minimum(sizes, K).astype(int) - 1]
    return hits.sum(axis=1) / sizes, (hits * discounts).sum(axis=1) / ideal


def evaluate(
    scores: np.ndarray, users: list[int], targets: Mapping[int, np.ndarray], mask: sp.csr_matrix
) -> dict[str, float]:
    recall, ndcg = per_user_metrics(scores, users, targets, mask)
    return {"recall@10": round(float(recall.mean()), 4), "ndcg@10": round(float(ndcg.mean()), 4)}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, seed: int, rounds: int = 2000) -> dict[str, float]:
    """Mean of a - b over users with a 95% bootstrap interval (users resampled)."""
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(rounds, diff.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "mean": round(float(diff.mean()), 4),
        "ci95_low": round(float(low), 4),
        "ci95_high": round(float(high), 4),
    }


def reference_ease(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE exactly as in Steck (2019), for the baseline."""
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0.0
    return b


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def item_features(data: MovieLens100k, item_ids: list[str]) -> list[ItemFeatures]:
    return [
        ItemFeatures(
            content_id=i,
            genres=data.movies[i].genres,
            cast=data.movies[i].actors,
            directors=data.movies[i].directors,
            keywords=data.movies[i].subjects,
        )
        for i in item_ids
    ]


def kg_vectors(features: list[ItemFeatures]) -> np.ndarray:
    """One block per field (genres, cast, directors, keywords), each row L2-normalized and scaled by
    sqrt(field weight), so a dot product is the weighted sum of per-field cosines (the graph's rule)."""
    blocks = []
    for weight, values in (
        (GENRE_WEIGHT, [f.genres for f in features]),
        (CAST_WEIGHT, [f.cast for f in features]),
        (DIRECTOR_WEIGHT, [f.directors for f in features]),
        (KEYWORD_WEIGHT, [f.keywords for f in features]),
    ):
        counts: dict[str, int] = {}
        for vs in values:
            for v in set(vs):
                counts[v] = counts.get(v, 0) + 1
        vocab = {v: j for j, v in enumerate(sorted(v for v, c in counts.items() if c >= 2))}
        block = np.zeros((len(features), max(len(vocab), 1)), np.float32)
        for row, vs in enumerate(values):
            for v in set(vs):
                if v in vocab:
                    block[row, vocab[v]] = 1.0
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        blocks.append(np.sqrt(weight) * block / np.maximum(norms, 1e-12))
    return np.hstack(blocks)


def minilm_vectors(data: MovieLens100k, item_ids: list[str]) -> np.ndarray:
    from media_gateway.core.embeddings import OnnxMiniLMEmbedder

    embedder = OnnxMiniLMEmbedder(threads=2, max_tokens=64, batch_size=32)
    texts = [
        f"{data.movies[i].title} ({data.movies[i].year}). Genres: {', '.join(data.movies[i].genres)}."
        for i in item_ids
    ]
    return np.vstack([embedder.embed_sync(texts[s : s + 32]) for s in range(0, len(texts), 32)])


def content_scores(split: Split, vectors: np.ndarray, users: list[int], half_life_days: float) -> np.ndarray:
    """SONA's preference_vector per user (recency relative to the user's last train event), then cosine."""
    normalized = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    by_id = {item: normalized[j] for j, item in enumerate(split.item_ids)}
    preferences = np.zeros((len(users), normalized.shape[1]), np.float32)
    x = split.train.matrix
    for row, u in enumerate(users):
        history = [
            Interaction(str(u), split.item_ids[int(i)], 1.0, float(split.train_time[(u, int(i))]))
            for i in x.indices[x.indptr[u] : x.indptr[u + 1]]
        ]
        vector = preference_vector(
            by_id, history, half_life_days=half_life_days, now=float(split.user_last[u])
        )
        if vector is not None:
            preferences[row] = vector
    scores: np.ndarray = preferences @ normalized.T.astype(np.float32)
    return scores


def graph_scores(split: Split, graph: GraphRecommender, users: list[int]) -> np.ndarray:
    """GraphRecommender.score_vector per user, seeded with the user's train items (weight 1)."""
    scores = np.zeros((len(users), len(split.item_ids)), np.float32)
    columns = np.array([split.item_index[node] for node in graph.node_ids], dtype=np.int64)
    x = split.train.matrix
    for row, u in enumerate(users):
        seeds = {split.item_ids[int(i)]: 1.0 for i in x.indices[x.indptr[u] : x.indptr[u + 1]]}
        scores[row, columns] = graph.score_vector(seeds)
    return scores


def graph_matches_recommend(
    split: Split, graph: GraphRecommender, users: list[int], scores: np.ndarray
) -> bool:
    """score_vector (used above for speed) ranks like the public recommend() on a few users."""
    x = split.train.matrix
    for row, u in enumerate(users):
        seeds = {split.item_ids[int(i)]: 1.0 for i in x.indices[x.indptr[u] : x.indptr[u + 1]]}
        hits = graph.recommend(seeds, limit=20)
        if any(abs(scores[row, split.item_index[h.content_id]] - h.score) > 1e-4 * h.score for h in hits):
            return False
    return True


def minmax_rows(scores: np.ndarray, mask: sp.csr_matrix) -> np.ndarray:
    """What `normalize` does per source, over each user's candidates (items not excluded)."""
    masked = scores.astype(np.float64, copy=True)
    masked[mask.nonzero()] = np.nan
    low = np.nanmin(masked, axis=1, keepdims=True)
    high = np.nanmax(masked, axis=1, keepdims=True)
    span = np.where(high - low > 1e-12, high - low, 1.0)
    return np.nan_to_num((masked - low) / span, nan=0.0)


def topn_minmax_rows(scores: np.ndarray, mask: sp.csr_matrix, n: int) -> np.ndarray:
    """Min-max over each source's top n candidates only, 0 elsewhere: what a service that fetches
    n candidates per source sees."""
    masked = scores.astype(np.float64, copy=True)
    masked[mask.nonzero()] = -np.inf
    top = np.argpartition(-masked, n, axis=1)[:, :n]
    values = np.take_along_axis(masked, top, axis=1)
    low, high = values.min(axis=1, keepdims=True), values.max(axis=1, keepdims=True)
    result = np.zeros_like(masked)
    np.put_along_axis(result, top, (values - low) / np.maximum(high - low, 1e-12), axis=1)
    return result


def reciprocal_rank_rows(scores: np.ndarray, mask: sp.csr_matrix, k: int = 60) -> np.ndarray:
    masked = scores.astype(np.float64, copy=True)
    masked[mask.nonzero()] = -np.inf
    ranks = np.argsort(np.argsort(-masked, axis=1), axis=1)
    result: np.ndarray = 1.0 / (k + ranks)
    return result


def blend_matches_vectorized(
    split: Split,
    users: list[int],
    per_source: dict[str, np.ndarray],
    mask: sp.csr_matrix,
    weights: Mapping[str, float],
    vectorized: np.ndarray,
) -> float:
    """Max |score difference| between SONA's `blend()` (over each user's full candidate set) and the
    vectorized min-max blend used for the grid, on the given users."""
    worst = 0.0
    for row in range(len(users)):
        candidates = np.setdiff1d(np.arange(len(split.item_ids)), mask[row].indices)
        blended = blend(
            {
                source: {split.item_ids[int(j)]: float(scores[row, j]) for j in candidates}
                for source, scores in per_source.items()
            },
            weights,
        )
        for item in blended:
            worst = max(worst, abs(item.score - float(vectorized[row, split.item_index[item.content_id]])))
    return worst


def blend_vectorized(normalized: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    return sum((weights.get(source, 0.0) * values for source, values in normalized.items()), np.zeros(1))


def intra_list_similarity(top: list[list[str]], vectors: Mapping[str, np.ndarray]) -> float:
    values = []
    for items in top:
        m = np.vstack([vectors[i] for i in items])
        m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
        s = m @ m.T
        values.append(float((s.sum() - np.trace(s)) / (len(items) * (len(items) - 1))))
    return round(float(np.mean(values)), 4)


def protocol(seed: int, valid_users: int, test_users: int) -> dict[str, Any]:
    return {
        "implicit": "rating >= 4 is a positive; ratings < 4 are dropped (not RecBole's >= 3)",
        "split": (
            f"per-user random 80/10/10 of positives, numpy default_rng seed {seed}; "
            "users with < 3 positives train-only"
        ),
        "tuning": (
            "on the validation split (NDCG@10): EASE l2, ItemKNN neighbors, content vectors + half-life, "
            "graph content/coview mix, blend weights"
        ),
        "test": (
            "models fitted on train only; full ranking over all items, the user's train and validation "
            "items excluded"
        ),
        "metrics": "Recall@10 = hits/|test items|; NDCG@10 binary gains, ideal DCG over min(|test|, 10)",
        "evaluated_users": {"validation": valid_users, "test": test_users},
        "content_vectors": {
            "kg_onehot": (
                "one-hot of ml-100k genres and KG actors, directors, subjects + Freebase genres (values on "
                ">= 2 items), per field L2-normalized and scaled by sqrt(field weight)"
            ),
            "minilm_title_genres": (
                "MiniLM int8 embedding of 'Title (year). Genres: ...' (ml-100k has no overviews)"
            ),
            "chosen": "on validation: see tuning.content_alone and tuning.blend",
        },
        "graph": (
            "content_edges (ml-100k genres 0.35, KG actors 0.25, KG directors 0.20, KG subjects 0.20; "
            "Jaccard; top 50 per item) + coview_edges (cosine, support >= 2, top 50, from train); 2 hops"
        ),
        "blend": "SONA normalize (per-source min-max over the user's candidates) + weighted sum",
        "context": "not evaluated: MovieLens has no device or time-of-day context",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-minilm", action="store_true", help="skip the MiniLM content vectors")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(os.environ.get("MG_TEST_DATASETS_DIR", "") or Settings().data_dir)

    bench_started = time.perf_counter()
    data, load_sec = timed(lambda: load_movielens100k(data_dir))
    split = Split(data, args.seed)
    valid_users = sorted(split.valid)
    test_users = sorted(split.test)
    valid_mask = split.excluded(valid_users, for_test=False)
    test_mask = split.excluded(test_users, for_test=True)
    x = split.train.matrix
    results: dict[str, Any] = {}
    training: dict[str, float] = {}
    tuning: dict[str, Any] = {}

    popularity, training["popularity"] = timed(lambda: PopularityRecommender().fit(split.train))
    results["popularity"] = evaluate(popularity.score_rows(x[test_users]), test_users, split.test, test_mask)

    knn_valid = {}
    for neighbors in (20, 50, 100, 200, 400):
        knn = ItemKnnRecommender().fit(split.train, neighbors=neighbors)
        knn_valid[neighbors] = evaluate(knn.score_rows(x[valid_users]), valid_users, split.valid, valid_mask)[
            "ndcg@10"
        ]
    best_neighbors = max(knn_valid, key=lambda n: knn_valid[n])
    knn, training["itemknn"] = timed(lambda: ItemKnnRecommender().fit(split.train, neighbors=best_neighbors))
    results["itemknn"] = evaluate(knn.score_rows(x[test_users]), test_users, split.test, test_mask)
    tuning["itemknn_neighbors"] = {"grid_valid_ndcg@10": knn_valid, "chosen": best_neighbors}

    ease_valid = {}
    for l2 in (50.0, 100.0, 200.0, 300.0, 500.0, 1000.0):
        b = reference_ease(x, l2)
        ease_valid[l2] = evaluate(np.asarray(x[valid_users] @ b), valid_users, split.valid, valid_mask)[
            "ndcg@10"
        ]
    best_l2 = max(ease_valid, key=lambda v: ease_valid[v])
    tuning["ease_l2"] = {"grid_valid_ndcg@10": ease_valid, "chosen": best_l2}
    b_ref, training["ease_reference"] = timed(lambda: reference_ease(x, best_l2))
    results["ease_reference"] = evaluate(np.asarray(x[test_users] @ b_ref), test_users, split.test, test_mask)

    ease, training["sona_collaborative"] = timed(lambda: EaseRecommender().fit(split.train, l2=best_l2))
    collab_test = ease.score_rows(x[test_users])
    results["sona_collaborative"] = evaluate(collab_test, test_users, split.test, test_mask)

    features = item_features(data, split.item_ids)
    vector_sets: dict[str, np.ndarray] = {}
    vector_sets["kg_onehot"], training["content_vectors_kg"] = timed(lambda: kg_vectors(features))
    if not args.no_minilm:
        vector_sets["minilm_title_genres"], training["content_vectors_minilm"] = timed(
            lambda: minilm_vectors(data, split.item_ids)
        )
    content_valid: dict[str, float] = {}
    content_valid_scores: dict[str, np.ndarray] = {}
    content_settings: dict[str, tuple[str, float]] = {}
    for (name, vectors), half_life in itertools.product(vector_sets.items(), (30.0, 3650.0)):
        key = f"{name}/half_life_{half_life:g}d"
        content_settings[key] = (name, half_life)
        content_valid_scores[key] = content_scores(split, vectors, valid_users, half_life)
        content_valid[key] = evaluate(content_valid_scores[key], valid_users, split.valid, valid_mask)[
            "ndcg@10"
        ]
    content_key = max(content_valid, key=lambda c: content_valid[c])
    tuning["content_alone"] = {"grid_valid_ndcg@10": content_valid, "chosen": content_key}
    content_name, content_half_life = content_settings[content_key]
    content_test = content_scores(split, vector_sets[content_name], test_users, content_half_life)
    results["sona_content"] = evaluate(content_test, test_users, split.test, test_mask)
    for name, vectors in vector_sets.items():
        if name != content_name:
            results[f"sona_content_{name}"] = evaluate(
                content_scores(split, vectors, test_users, content_half_life),
                test_users,
                split.test,
                test_mask,
            )

    def build_graph(content_weight: float) -> GraphRecommender:
        return GraphRecommender.from_edges(
            content_edges(features, top_k=50),
            coview_edges(split.train, min_support=2, top_k=50),
            content_weight=content_weight,
            coview_weight=1.0 - content_weight,
        )

    graph_valid = {}
    for content_weight in (0.2, 0.5, 0.8):
        graph = build_graph(content_weight)
        graph_valid[content_weight] = evaluate(
            graph_scores(split, graph, valid_users), valid_users, split.valid, valid_mask
        )["ndcg@10"]
    best_graph_weight = max(graph_valid, key=lambda w: graph_valid[w])
    tuning["graph_content_weight"] = {"grid_valid_ndcg@10": graph_valid, "chosen": best_graph_weight}
    started = time.perf_counter()
    edges_content = content_edges(features, top_k=50)
    training["graph_content_edges"] = time.perf_counter() - started
    started = time.perf_counter()
    edges_coview = coview_edges(split.train, min_support=2, top_k=50)
    training["graph_coview_edges"] = time.perf_counter() - started
    graph, training["graph_build"] = timed(
        lambda: GraphRecommender.from_edges(
            edges_content,
            edges_coview,
            content_weight=best_graph_weight,
            coview_weight=1.0 - best_graph_weight,
        )
    )
    graph_test = graph_scores(split, graph, test_users)
    results["sona_graph"] = evaluate(graph_test, test_users, split.test, test_mask)
    graph_content_only = GraphRecommender.from_edges(edges_content, [], content_weight=1.0, coview_weight=0.0)
    results["sona_graph_content_edges_only"] = evaluate(
        graph_scores(split, graph_content_only, test_users), test_users, split.test, test_mask
    )

    # Blend: the issue's weights (context absent), and weights + content vectors tuned on validation.
    default_weights = {s: w for s, w in SOURCE_WEIGHTS.items() if s != "context"}
    collab_valid = minmax_rows(ease.score_rows(x[valid_users]), valid_mask)
    graph_valid_norm = minmax_rows(graph_scores(split, graph, valid_users), valid_mask)
    steps = [round(v, 2) for v in np.arange(0.0, 1.01, 0.05)]
    blend_grid: dict[str, dict[str, float]] = {}
    issue_valid: dict[str, float] = {}
    for key, scores in content_valid_scores.items():
        normalized_valid = {
            "collaborative": collab_valid,
            "content": minmax_rows(scores, valid_mask),
            "graph": graph_valid_norm,
        }
        issue_valid[key] = evaluate(
            blend_vectorized(normalized_valid, default_weights), valid_users, split.valid, valid_mask
        )["ndcg@10"]
        grid = blend_grid[key] = {}
        for wc, wt in itertools.product(steps, steps):
            wg = round(1.0 - wc - wt, 2)
            if wg < -1e-9:
                continue
            combined = blend_vectorized(normalized_valid, {"collaborative": wc, "content": wt, "graph": wg})
            grid[f"{wc:.2f}/{wt:.2f}/{wg:.2f}"] = evaluate(combined, valid_users, split.valid, valid_mask)[
                "ndcg@10"
            ]
    blend_content_key, best_key = max(
        ((key, weights) for key, grid in blend_grid.items() for weights in grid),
        key=lambda kw: blend_grid[kw[0]][kw[1]],
    )
    wc, wt, wg = (float(v) for v in best_key.split("/"))
    tuned_weights = {"collaborative": wc, "content": wt, "graph": wg}
    tuning["blend"] = {
        "grid": "collaborative/content/graph weights in steps of 0.05 summing to 1, per content vectors",
        "valid_ndcg@10_issue_weights": issue_valid,
        "valid_ndcg@10_best_per_content_vectors": {
            key: {"weights": max(grid, key=lambda w: grid[w]), "ndcg@10": max(grid.values())}
            for key, grid in blend_grid.items()
        },
        "chosen": {"content_vectors": blend_content_key, "weights": tuned_weights},
    }
    blend_name, blend_half_life = content_settings[blend_content_key]
    # Other per-source normalizations, on validation, at the issue's and the tuned weights.
    raw_valid = {
        "collaborative": ease.score_rows(x[valid_users]),
        "content": content_valid_scores[blend_content_key],
        "graph": graph_scores(split, graph, valid_users),
    }
    variants: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "minmax_all_candidates (SONA normalize)": lambda v: minmax_rows(v, valid_mask),
        "minmax_top100_per_source": lambda v: topn_minmax_rows(v, valid_mask, 100),
        "minmax_top300_per_source": lambda v: topn_minmax_rows(v, valid_mask, 300),
        "reciprocal_rank_k60": lambda v: reciprocal_rank_rows(v, valid_mask),
    }
    normalization_valid = {}
    for name, transform in variants.items():
        normalized = {source: transform(v) for source, v in raw_valid.items()}
        normalization_valid[name] = {
            label: evaluate(blend_vectorized(normalized, w), valid_users, split.valid, valid_mask)["ndcg@10"]
            for label, w in (("issue_weights", default_weights), ("tuned_weights", tuned_weights))
        }
    tuning["blend"]["normalization_variants_valid_ndcg@10"] = normalization_valid
    blend_content_test = (
        content_test
        if blend_content_key == content_key
        else content_scores(split, vector_sets[blend_name], test_users, blend_half_life)
    )
    test_sources = {"collaborative": collab_test, "content": blend_content_test, "graph": graph_test}
    component_scores = {
        "sona_collaborative": collab_test,
        "sona_content": content_test,
        "sona_graph": graph_test,
    }
    normalized_test = {s: minmax_rows(v, test_mask) for s, v in test_sources.items()}
    blend_default = blend_vectorized(normalized_test, default_weights)
    blend_tuned = blend_vectorized(normalized_test, tuned_weights)
    results["sona_blend_issue_weights"] = evaluate(blend_default, test_users, split.test, test_mask)
    results["sona_blend_tuned_weights"] = evaluate(blend_tuned, test_users, split.test, test_mask)
    checked = slice(0, 50)
    check_users = test_users[checked]
    check_sources = {s: v[checked] for s, v in test_sources.items()}
    verification = {
        "users_checked": len(check_users),
        "blend_fn_max_abs_diff_issue_weights": blend_matches_vectorized(
            split, check_users, check_sources, test_mask[checked], default_weights, blend_default[checked]
        ),
        "blend_fn_max_abs_diff_tuned": blend_matches_vectorized(
            split, check_users, check_sources, test_mask[checked], tuned_weights, blend_tuned[checked]
        ),
        "graph_score_vector_matches_recommend": graph_matches_recommend(
            split, graph, check_users, graph_test[checked]
        ),
    }

    # MMR (lambda 0.7) over the tuned blend's top 50, with the content vectors as similarity.
    vectors_by_id = {item: vector_sets[blend_name][j] for j, item in enumerate(split.item_ids)}
    mmr_scores = np.full_like(blend_tuned, -np.inf)
    plain_top: list[list[str]] = []
    mmr_top: list[list[str]] = []
    for row in range(len(test_users)):
        order = np.argsort(-blend_tuned[row])[:50]
        items = [BlendedItem(split.item_ids[int(j)], float(blend_tuned[row, j]), {}) for j in order]
        picked = mmr(items, vectors_by_id, lam=0.7, limit=K)
        for rank, item in enumerate(picked):
            mmr_scores[row, split.item_index[item.content_id]] = K - rank
        plain_top.append([i.content_id for i in items[:K]])
        mmr_top.append([i.content_id for i in picked])
    results["sona_blend_tuned_then_mmr_0.7"] = evaluate(mmr_scores, test_users, split.test, test_mask)
    diversity = {
        "metric": "mean pairwise cosine of the top 10 in the content-vector space (lower = more diverse)",
        "blend_tuned": intra_list_similarity(plain_top, vectors_by_id),
        "blend_tuned_then_mmr_0.7": intra_list_similarity(mmr_top, vectors_by_id),
    }

    components = ("sona_collaborative", "sona_content", "sona_graph")
    best_component = max(components, key=lambda c: results[c]["ndcg@10"])
    best_ndcg = per_user_metrics(component_scores[best_component], test_users, split.test, test_mask)[1]
    sona_training = sum(
        training[k]
        for k in ("sona_collaborative", "graph_content_edges", "graph_coview_edges", "graph_build")
    )
    output = {
        "bench": "sona_offline",
        "dataset": {
            "name": "MovieLens 100k (recbole==1.2.1 wheel, dataset_example/ml-100k), RecBole's Freebase KG",
            "terms": MOVIELENS_TERMS,
            "ratings": int(data.ratings.size),
            "items": len(split.item_ids),
            "users": len(split.user_ids),
            "implicit_positives": int(
                sum(len(v) for v in split.test.values())
                + sum(len(v) for v in split.valid.values())
                + len(split.train_triples)
            ),
            "items_with_kg_director": sum(1 for m in data.movies.values() if m.directors),
            "items_with_kg_actors": sum(1 for m in data.movies.values() if m.actors),
            "load_sec": round(load_sec, 2),
        },
        "protocol": protocol(args.seed, len(valid_users), len(test_users)),
        "results_test": results,
        "target_collaborative_at_least_ease": results["sona_collaborative"]["ndcg@10"]
        >= results["ease_reference"]["ndcg@10"],
        "best_single_component": best_component,
        "target_blend_beats_best_component": {
            "issue_weights": results["sona_blend_issue_weights"]["ndcg@10"]
            > results[best_component]["ndcg@10"],
            "tuned_weights": results["sona_blend_tuned_weights"]["ndcg@10"]
            > results[best_component]["ndcg@10"],
        },
        "diversity": diversity,
        "tuning": tuning,
        "training_sec": {k: round(v, 3) for k, v in training.items()},
        "sona_training_sec_total": round(sona_training, 3),
        "target_training_under_60s": sona_training < 60,
        "blend_minus_best_component_ndcg@10_paired_bootstrap": {
            "issue_weights": paired_bootstrap(
                per_user_metrics(blend_default, test_users, split.test, test_mask)[1], best_ndcg, args.seed
            ),
            "tuned_weights": paired_bootstrap(
                per_user_metrics(blend_tuned, test_users, split.test, test_mask)[1], best_ndcg, args.seed
            ),
        },
        "verification": verification,
        "bench_wall_sec": round(time.perf_counter() - bench_started, 1),
        "anchors_not_comparable": ANCHORS,
        "anchor_note": "published numbers use other data, splits or filtering: context, not a comparison",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        },
    }
    print(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
