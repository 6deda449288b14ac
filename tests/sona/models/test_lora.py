from __future__ import annotations

import numpy as np
import pytest

from media_gateway.sona.models import LORA_ALPHA, LORA_RANK, LoraAdapter, personalize, train_adapter


def _unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_zero_adapter_is_the_identity_on_normalized_vectors() -> None:
    adapter = LoraAdapter.identity(16)
    assert adapter.is_zero
    assert (adapter.rank, adapter.alpha) == (LORA_RANK, LORA_ALPHA) == (8, 16.0)
    vectors = _unit_rows(3, 16, seed=1)
    np.testing.assert_allclose(adapter.apply(vectors), vectors, atol=1e-6)
    raw = np.arange(1, 17, dtype=np.float32)
    np.testing.assert_allclose(personalize(raw, adapter), raw / np.linalg.norm(raw), atol=1e-6)
    np.testing.assert_allclose(personalize(raw, None), raw / np.linalg.norm(raw), atol=1e-6)


def test_untrained_adapter_with_random_a_is_still_identity() -> None:
    adapter = train_adapter(_unit_rows(5, 16, seed=2), np.ones(5), epochs=0)
    assert adapter.is_zero
    assert np.any(adapter.a)


def test_trained_adapter_changes_vectors_keeps_them_unit_norm() -> None:
    liked = _unit_rows(6, 32, seed=3)
    disliked = _unit_rows(4, 32, seed=4)
    adapter = train_adapter(
        liked, np.array([1.0, 2.0, 1.0, 0.5, 1.0, 1.0]), negatives=disliked, epochs=60, lr=0.05
    )
    assert not adapter.is_zero
    probe = _unit_rows(5, 32, seed=5)
    out = adapter.apply(probe)
    assert out.shape == probe.shape
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.max(np.abs(out - probe)) > 1e-3
    single = adapter.apply(probe[0])
    assert single.shape == (32,)
    np.testing.assert_allclose(single, out[0], atol=1e-6)


def test_training_pulls_liked_items_together_and_pushes_negatives_away() -> None:
    liked = _unit_rows(8, 32, seed=6)
    disliked = _unit_rows(8, 32, seed=7)
    adapter = train_adapter(liked, np.ones(8), negatives=disliked, epochs=80, lr=0.05)
    centroid = liked.mean(axis=0)
    centroid /= np.linalg.norm(centroid)

    def mean_cosine(rows: np.ndarray) -> float:
        return float((rows @ centroid).mean())

    assert mean_cosine(adapter.apply(liked)) > mean_cosine(liked) + 0.05
    assert mean_cosine(adapter.apply(disliked)) < mean_cosine(adapter.apply(liked))


def test_training_is_deterministic_for_a_seed() -> None:
    liked = _unit_rows(5, 16, seed=8)
    first = train_adapter(liked, np.ones(5), seed=11)
    second = train_adapter(liked, np.ones(5), seed=11)
    other = train_adapter(liked, np.ones(5), seed=12)
    np.testing.assert_array_equal(first.a, second.a)
    np.testing.assert_array_equal(first.b, second.b)
    assert not np.array_equal(first.a, other.a)


def test_adapter_round_trips_through_bytes() -> None:
    adapter = train_adapter(_unit_rows(4, 16, seed=9), np.ones(4), rank=4, alpha=8.0)
    restored = LoraAdapter.from_bytes(adapter.to_bytes())
    assert (restored.rank, restored.alpha) == (4, 8.0)
    np.testing.assert_array_equal(restored.a, adapter.a)
    np.testing.assert_array_equal(restored.b, adapter.b)


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="rank"):
        LoraAdapter(np.zeros((16, 4)), np.zeros((4, 16)), rank=8)
    with pytest.raises(ValueError, match="dimension"):
        LoraAdapter.identity(16).apply(np.ones(8))
    with pytest.raises(ValueError, match="do not match"):
        train_adapter(np.ones((3, 16)), np.ones(2))


def test_keep_term_bends_the_space_instead_of_collapsing_it() -> None:
    liked = _unit_rows(8, 64, seed=13)
    probes = _unit_rows(20, 64, seed=14)
    centroid = liked.mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    kept = train_adapter(liked, np.ones(8))
    collapsed = train_adapter(liked, np.ones(8), keep=0.0)

    def stays(adapter: LoraAdapter, rows: np.ndarray) -> float:
        return float((adapter.apply(rows) * rows).sum(axis=1).mean())

    assert stays(kept, liked) > stays(collapsed, liked)
    assert stays(kept, probes) > 0.95
    assert float((kept.apply(liked) @ centroid).mean()) > float((liked @ centroid).mean())
