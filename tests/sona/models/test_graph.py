from __future__ import annotations

import numpy as np
import pytest

from media_gateway.sona.models import (
    CAST_WEIGHT,
    DIRECTOR_WEIGHT,
    GENRE_WEIGHT,
    KEYWORD_WEIGHT,
    GraphRecommender,
    Interaction,
    InteractionMatrix,
    ItemFeatures,
    blend,
    content_edges,
    coview_edges,
)
from media_gateway.sona.models import graph as graph_module


def _catalog() -> list[ItemFeatures]:
    return [
        ItemFeatures(
            "A", genres=["Sci-Fi"], cast=["Amy Adams"], directors=["Denis Villeneuve"], keywords=["aliens"]
        ),
        ItemFeatures(
            "B", genres=["Drama"], cast=["Ryan Gosling"], directors=["Denis Villeneuve"], keywords=[]
        ),
        ItemFeatures(
            "C", genres=["Comedy"], cast=["Someone Else"], directors=["Other Person"], keywords=["dogs"]
        ),
    ]


def test_content_edge_weights_follow_the_field_rule() -> None:
    left = ItemFeatures(
        "L", genres=["Drama", "Crime"], cast=["P1", "P2", "P3"], directors=["D1"], keywords=["k1", "k2"]
    )
    right = ItemFeatures(
        "R", genres=["drama"], cast=["P2", "P3", "P4"], directors=["D2"], keywords=["k2", "k3", "k4"]
    )
    edges = {(a, b): w for a, b, w in content_edges([left, right])}
    # Jaccard per field: genres 1/2 (case-insensitive), cast 2/4, directors 0/2, keywords 1/4.
    expected = GENRE_WEIGHT * 0.5 + CAST_WEIGHT * 0.5 + DIRECTOR_WEIGHT * 0.0 + KEYWORD_WEIGHT * 0.25
    assert edges["L", "R"] == pytest.approx(expected, abs=1e-6)
    assert edges["R", "L"] == pytest.approx(expected, abs=1e-6)
    assert (GENRE_WEIGHT, CAST_WEIGHT, DIRECTOR_WEIGHT, KEYWORD_WEIGHT) == (0.35, 0.25, 0.20, 0.20)


def test_content_edges_keep_top_k_per_item() -> None:
    items = [ItemFeatures(f"i{n}", genres=["Drama"], directors=[f"d{n % 2}"]) for n in range(6)]
    edges = content_edges(items, top_k=2)
    by_source: dict[str, list[str]] = {}
    for src, dst, _ in edges:
        by_source.setdefault(src, []).append(dst)
    assert all(len(dsts) == 2 for dsts in by_source.values())
    # The two strongest are the ones sharing the director as well as the genre.
    assert all(int(dst[1:]) % 2 == int(src[1:]) % 2 for src, dsts in by_source.items() for dst in dsts)


def test_same_director_ranks_above_unrelated_with_the_graph_as_source() -> None:
    graph = GraphRecommender.from_edges(content_edges(_catalog()), [])
    hits = graph.recommend({"A": 1.0})
    assert [h.content_id for h in hits] == ["B"]  # C shares nothing with A: not reachable at all
    assert hits[0].via == "A"
    assert hits[0].relation == "content"
    assert hits[0].score > 0


def test_coviewing_surfaces_y_from_x() -> None:
    rows = [Interaction(f"u{n}", item, 1.0, 0.0) for n in range(4) for item in ("X", "Y")]
    rows += [Interaction("u9", "Z", 1.0, 0.0), Interaction("u9", "X", 1.0, 0.0)]
    edges = coview_edges(InteractionMatrix.build(rows), min_support=2)
    assert {(a, b) for a, b, _ in edges} == {("X", "Y"), ("Y", "X")}  # X-Z seen once: below support
    graph = GraphRecommender.from_edges([], edges)
    hits = graph.recommend({"X": 1.0})
    assert [(h.content_id, h.via, h.relation) for h in hits] == [("Y", "X", "coview")]


def test_two_hops_reach_further_but_score_lower() -> None:
    content = [("A", "B", 0.8), ("B", "C", 0.8)]
    graph = GraphRecommender.from_edges(content, [])
    assert [h.content_id for h in graph.recommend({"A": 1.0}, hops=1)] == ["B"]
    hits = {h.content_id: h for h in graph.recommend({"A": 1.0}, hops=2)}
    assert set(hits) == {"B", "C"}
    assert hits["C"].score < hits["B"].score
    assert hits["C"].via == "A"


def test_excluded_items_and_seeds_are_never_returned() -> None:
    content = [("A", "B", 0.9), ("A", "C", 0.5), ("B", "C", 0.5)]
    coview = [("A", "D", 0.7)]
    graph = GraphRecommender.from_edges(content, coview)
    returned = {h.content_id for h in graph.recommend({"A": 1.0, "B": 0.5}, exclude={"D"})}
    assert returned == {"C"}
    assert graph.recommend({"unknown": 1.0}) == []
    assert graph.recommend({"A": 1.0}, limit=0) == []


def test_via_names_the_seed_that_contributed_most() -> None:
    content = [("A", "T", 0.2), ("B", "T", 0.9)]
    graph = GraphRecommender.from_edges(content, [])
    (hit,) = graph.recommend({"A": 1.0, "B": 1.0})
    assert (hit.content_id, hit.via) == ("T", "B")
    # Each relation counts at its default weight 0.5; nothing reaches T in two hops (only seeds link to T).
    assert hit.score == pytest.approx(0.5 * 0.2 + 0.5 * 0.9)


def test_relation_names_the_stronger_edge_kind() -> None:
    graph = GraphRecommender.from_edges(
        [("S", "P", 0.1), ("S", "Q", 0.9)], [("S", "P", 0.9), ("S", "Q", 0.1)]
    )
    relations = {h.content_id: h.relation for h in graph.recommend({"S": 1.0}, hops=1)}
    assert relations == {"P": "coview", "Q": "content"}


def test_score_vector_agrees_with_recommend() -> None:
    content = content_edges(_catalog())
    graph = GraphRecommender.from_edges(content, [("A", "C", 0.4)])
    vector = graph.score_vector({"A": 1.0})
    for hit in graph.recommend({"A": 1.0}):
        assert vector[graph.node_index[hit.content_id]] == pytest.approx(hit.score, rel=1e-5)
    assert vector[graph.node_index["A"]] == 0.0
    with pytest.raises(ValueError, match="hops"):
        graph.recommend({"A": 1.0}, hops=3)


@pytest.mark.parametrize("dense_cells", [2_000_000, 0], ids=["dense-why", "sparse-why"])
def test_traversal_matches_a_dense_reference_on_a_random_graph(
    dense_cells: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph_module, "_DENSE_SHARE_CELLS", dense_cells)
    rng = np.random.default_rng(3)
    n = 40
    ids = [f"n{i}" for i in range(n)]
    content = [(ids[i], ids[j], float(rng.random())) for i, j in rng.integers(0, n, size=(120, 2)) if i != j]
    coview = [(ids[i], ids[j], float(rng.random())) for i, j in rng.integers(0, n, size=(80, 2)) if i != j]
    graph = GraphRecommender.from_edges(content, coview, content_weight=0.6, coview_weight=0.4)

    def dense(edges: list[tuple[str, str, float]], weight: float) -> np.ndarray:
        m = np.zeros((n, n))
        for a, b, w in edges:
            i, j = graph.node_index[a], graph.node_index[b]
            m[i, j] = max(m[i, j], w)
        return weight * np.maximum(m, m.T)

    a_content, a_coview = dense(content, 0.6), dense(coview, 0.4)
    combined = a_content + a_coview
    transition = combined / np.maximum(combined.sum(axis=1, keepdims=True), 1e-30)
    seeds = {"n1": 1.0, "n7": 0.5, "n20": 2.0}
    rows = [graph.node_index[s] for s in seeds]
    weights = np.array(list(seeds.values()))[:, None]
    share_content = weights * a_content[rows]
    share_content += 0.5 * share_content @ transition
    share_coview = weights * a_coview[rows]
    share_coview += 0.5 * share_coview @ transition
    total = (share_content + share_coview).sum(axis=0)
    total[rows] = 0.0

    hits = graph.recommend(seeds, limit=n)
    assert len(hits) == int((total > 1e-9).sum())
    for hit in hits:
        j = graph.node_index[hit.content_id]
        assert hit.score == pytest.approx(total[j], rel=1e-4)
        assert hit.via == graph.node_ids[rows[int(np.argmax((share_content + share_coview)[:, j]))]]
        stronger = "content" if share_content[:, j].sum() >= share_coview[:, j].sum() else "coview"
        assert hit.relation == stronger
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_blended_graph_hit_ranks_b_above_c_and_names_the_graph() -> None:
    graph = GraphRecommender.from_edges(content_edges(_catalog()), [])
    graph_scores = {h.content_id: h.score for h in graph.recommend({"A": 1.0})}
    collaborative = {"B": 0.2, "C": 0.2}  # no collaborative preference between them
    ranked = blend({"collaborative": collaborative, "graph": graph_scores})
    assert [i.content_id for i in ranked] == ["B", "C"]
    assert ranked[0].sources["graph"] > 0
    assert "graph" not in ranked[1].sources
