from __future__ import annotations

import numpy as np
import pytest

from media_gateway.sona.models import (
    EaseRecommender,
    Interaction,
    InteractionMatrix,
    ItemKnnRecommender,
    PopularityRecommender,
)


def _matrix() -> InteractionMatrix:
    """Ten users watch "alien" and "aliens" together; five watch "heat" and "ronin"; "notebook" once."""
    rows = [Interaction(f"sf{u}", item, 1.0, 0.0) for u in range(10) for item in ("alien", "aliens")]
    rows += [Interaction(f"cr{u}", item, 1.0, 0.0) for u in range(5) for item in ("heat", "ronin")]
    rows += [Interaction("sf0", "heat", 1.0, 0.0), Interaction("cr0", "notebook", 1.0, 0.0)]
    return InteractionMatrix.build(rows)


def test_interaction_matrix_sums_repeats_and_indexes_ids() -> None:
    matrix = InteractionMatrix.build(
        [
            Interaction("u2", "b", 1.0, 0.0),
            Interaction("u1", "a", 0.5, 0.0),
            Interaction("u1", "a", 0.25, 1.0),
        ]
    )
    assert matrix.user_ids == ["u1", "u2"]
    assert matrix.item_ids == ["a", "b"]
    assert matrix.matrix.dtype == np.float32
    assert matrix.history("u1") == {"a": 0.75}
    assert matrix.user_row("nobody") is None
    row = matrix.user_row("u2")
    assert row is not None
    assert row.toarray().tolist() == [[0.0, 1.0]]


def test_ease_recommends_the_co_consumed_item() -> None:
    ease = EaseRecommender().fit(_matrix(), l2=1.0)
    scores = ease.score({"alien": 1.0})
    assert "alien" not in scores
    assert next(iter(scores)) == "aliens"
    assert scores["aliens"] > scores["ronin"]
    assert list(scores.values()) == sorted(scores.values(), reverse=True)
    assert set(ease.score({"heat": 1.0}, limit=1)) == {"ronin"}


def test_ease_similar_lists_the_strongest_partner_first() -> None:
    ease = EaseRecommender().fit(_matrix(), l2=1.0)
    similar = ease.similar("heat", 2)
    assert similar[0][0] == "ronin"
    assert all(item != "heat" for item, _ in similar)
    assert ease.similar("unknown", 3) == []


def test_ease_round_trips_through_bytes() -> None:
    ease = EaseRecommender().fit(_matrix(), l2=5.0)
    restored = EaseRecommender.from_bytes(ease.to_bytes())
    assert restored.item_ids == ease.item_ids
    assert restored.l2 == 5.0
    assert restored.score({"alien": 1.0, "heat": 0.5}) == ease.score({"alien": 1.0, "heat": 0.5})


def test_ease_keeps_only_the_most_popular_items_above_the_cap() -> None:
    ease = EaseRecommender().fit(_matrix(), l2=1.0, max_items=3)
    assert sorted(ease.item_ids) == ["alien", "aliens", "heat"]
    assert set(ease.score({"alien": 1.0})) == {"aliens", "heat"}


def test_unfitted_models_refuse_to_score() -> None:
    with pytest.raises(RuntimeError):
        EaseRecommender().score({"alien": 1.0})
    with pytest.raises(ValueError, match="l2"):
        EaseRecommender().fit(_matrix(), l2=0.0)


def test_popularity_and_itemknn_baselines() -> None:
    matrix = _matrix()
    popular = PopularityRecommender().fit(matrix).score({"alien": 1.0})
    assert list(popular)[:2] == ["aliens", "heat"]
    knn = ItemKnnRecommender().fit(matrix, neighbors=2).score({"heat": 1.0})
    assert next(iter(knn)) == "ronin"
    assert "heat" not in knn
