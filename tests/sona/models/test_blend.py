from __future__ import annotations

import numpy as np
import pytest

from media_gateway.sona.models import SOURCE_WEIGHTS, BlendedItem, apply_boost, blend, mmr, normalize


def test_source_weights_are_the_issue_weights() -> None:
    assert SOURCE_WEIGHTS == {"collaborative": 0.35, "content": 0.25, "graph": 0.30, "context": 0.10}
    assert sum(SOURCE_WEIGHTS.values()) == pytest.approx(1.0)


def test_normalize_is_min_max_per_source() -> None:
    assert normalize({"a": 10.0, "b": 5.0, "c": 0.0}) == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert normalize({"a": -3.0, "b": -1.0}) == {"a": 0.0, "b": 1.0}
    assert normalize({"only": 7.0}) == {"only": 1.0}
    assert normalize({}) == {}
    with pytest.raises(ValueError, match="finite"):
        normalize({"a": float("nan"), "b": 1.0})


def test_blend_sums_weighted_normalized_scores_and_keeps_sources() -> None:
    items = blend(
        {
            "collaborative": {"x": 4.0, "y": 2.0, "z": 0.0},
            "graph": {"y": 0.9, "z": 0.3},
        }
    )
    by_id = {item.content_id: item for item in items}
    assert by_id["x"].score == pytest.approx(0.35)
    assert by_id["y"].score == pytest.approx(0.35 * 0.5 + 0.30 * 1.0)
    assert by_id["z"].score == pytest.approx(0.0)
    assert by_id["y"].sources == pytest.approx({"collaborative": 0.175, "graph": 0.30})
    assert set(by_id["x"].sources) == {"collaborative"}
    assert [item.content_id for item in items] == ["y", "x", "z"]


def test_blend_with_custom_weights_and_unknown_source() -> None:
    items = blend({"content": {"a": 1.0, "b": 0.0}, "trending": {"b": 5.0}}, {"content": 1.0})
    assert [(i.content_id, i.score) for i in items] == [("a", 1.0), ("b", 0.0)]
    assert items[1].sources == {"content": 0.0, "trending": 0.0}


def test_apply_boost_rescales_and_reranks() -> None:
    items = [BlendedItem("a", 0.5, {}), BlendedItem("b", 0.4, {})]
    boosted = apply_boost(items, {"b": 1.5})
    assert [(i.content_id, i.score) for i in boosted] == [("b", pytest.approx(0.6)), ("a", 0.5)]
    assert items[1].score == 0.4  # inputs untouched


def test_mmr_demotes_a_near_duplicate() -> None:
    same = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    items = [BlendedItem("original", 1.0), BlendedItem("duplicate", 0.95), BlendedItem("different", 0.9)]
    vectors = {"original": same, "duplicate": same.copy(), "different": np.array([0.0, 1.0, 0.0])}
    assert [i.content_id for i in items] == ["original", "duplicate", "different"]
    picked = mmr(items, vectors, lam=0.7, limit=3)
    assert [i.content_id for i in picked] == ["original", "different", "duplicate"]
    # With lambda 1 MMR is the plain ranking.
    assert [i.content_id for i in mmr(items, vectors, lam=1.0, limit=3)] == [i.content_id for i in items]


def test_mmr_treats_items_without_vectors_as_dissimilar_and_respects_limit() -> None:
    items = [BlendedItem("a", 1.0), BlendedItem("a-copy", 0.9), BlendedItem("novec", 0.8)]
    vectors = {"a": np.ones(4), "a-copy": np.ones(4)}
    picked = mmr(items, vectors, limit=2)
    assert [i.content_id for i in picked] == ["a", "novec"]
    assert mmr([], vectors, limit=5) == []
    assert mmr(items, {}, limit=5) == items
    with pytest.raises(ValueError, match="lam"):
        mmr(items, vectors, lam=1.5, limit=2)
