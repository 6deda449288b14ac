from __future__ import annotations

import numpy as np
import pytest

from media_gateway.sona.models import Interaction, context_multiplier, preference_vector

DAY = 86_400.0
NOW = 1_800_000_000.0
VECTORS = {"old": np.array([1.0, 0.0]), "new": np.array([0.0, 1.0]), "x": np.array([3.0, 4.0])}


def _cosine(vector: np.ndarray | None, target: str) -> float:
    assert vector is not None
    other = VECTORS[target] / np.linalg.norm(VECTORS[target])
    return float(vector @ other)


def test_recent_items_weigh_more() -> None:
    history = [Interaction("u", "old", 1.0, NOW - 90 * DAY), Interaction("u", "new", 1.0, NOW - 1 * DAY)]
    vector = preference_vector(VECTORS, history, half_life_days=30.0, now=NOW)
    assert vector is not None
    assert np.linalg.norm(vector) == pytest.approx(1.0)
    assert _cosine(vector, "new") > _cosine(vector, "old")
    # Weights 0.5^(90/30) = 1/8 and 0.5^(1/30): the angle follows them exactly.
    expected = np.array([0.125, 0.5 ** (1 / 30)])
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)


def test_engaged_items_weigh_more() -> None:
    history = [Interaction("u", "old", 3.0, NOW), Interaction("u", "new", 1.0, NOW)]
    vector = preference_vector(VECTORS, history, now=NOW)
    assert _cosine(vector, "old") > _cosine(vector, "new")


def test_dislikes_push_away_and_unknown_items_are_ignored() -> None:
    history = [
        Interaction("u", "x", 1.0, NOW),
        Interaction("u", "new", -0.5, NOW),
        Interaction("u", "gone", 5.0, NOW),
    ]
    vector = preference_vector(VECTORS, history, now=NOW)
    assert vector is not None
    assert vector[1] < 0.8  # x alone would be (0.6, 0.8)
    assert preference_vector(VECTORS, [Interaction("u", "gone", 1.0, NOW)], now=NOW) is None
    assert preference_vector(VECTORS, [], now=NOW) is None
    cancelled = [Interaction("u", "old", 1.0, NOW), Interaction("u", "old", -1.0, NOW)]
    assert preference_vector(VECTORS, cancelled, now=NOW) is None


def test_context_rules() -> None:
    neutral = context_multiplier(
        time_of_day=None, device_type=None, kind="movie", runtime_minutes=120, genres=[]
    )
    assert neutral == 1.0
    late_short = context_multiplier(
        time_of_day="late_night", device_type=None, kind="movie", runtime_minutes=90, genres=["Comedy"]
    )
    late_long = context_multiplier(
        time_of_day="late_night", device_type=None, kind="movie", runtime_minutes=170, genres=["Drama"]
    )
    assert late_short > 1.0 > late_long
    tv_movie = context_multiplier(
        time_of_day=None, device_type="tv", kind="movie", runtime_minutes=120, genres=[]
    )
    tv_series = context_multiplier(
        time_of_day=None, device_type="tv", kind="series", runtime_minutes=45, genres=[]
    )
    assert tv_movie > tv_series == 1.0
    phone_episode = context_multiplier(
        time_of_day=None, device_type="mobile", kind="series", runtime_minutes=25, genres=[]
    )
    phone_epic = context_multiplier(
        time_of_day=None, device_type="phone", kind="movie", runtime_minutes=180, genres=[]
    )
    assert phone_episode > 1.0 > phone_epic


def test_context_multiplier_stays_within_bounds() -> None:
    values = [
        context_multiplier(time_of_day=t, device_type=d, kind=k, runtime_minutes=r, genres=g)
        for t in ("morning", "afternoon", "evening", "late night", "night", None, "garbage")
        for d in ("tv", "mobile", "tablet", None)
        for k in ("movie", "series")
        for r in (20, 95, 200, None)
        for g in ([], ["Comedy", "Family"], ["Documentary"])
    ]
    assert min(values) >= 0.8
    assert max(values) <= 1.2
