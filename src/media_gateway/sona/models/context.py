"""Context: small, explicit adjustments for the time of day and the device.

`context_multiplier` returns a factor around 1.0 (clamped to [0.8, 1.2]); 1.0 means no opinion. As a
blend source, pass each candidate's factor: `normalize` maps the candidates' factors to [0, 1].

Rules (each multiplies):
- late night (or "night"): short titles (≤ 100 min)  x1.10, long ones (> 140 min)  x0.85; light genres
  (comedy, animation, family)  x1.05.
- morning: short titles  x1.05; family, animation, documentary  x1.05.
- evening (prime time): movies  x1.05.
- tv: movies  x1.10 (the big screen is where people watch films).
- mobile / phone: series and short titles (≤ 45 min)  x1.10; movies over 120 min  x0.85.
- anything else (afternoon, desktop, tablet, unknown): no change.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_MULTIPLIER, MAX_MULTIPLIER = 0.8, 1.2
_LIGHT_GENRES = frozenset({"comedy", "animation", "family"})
_MORNING_GENRES = frozenset({"family", "animation", "documentary"})
_SERIES_KINDS = frozenset({"series", "episode", "show", "tv", "tv_series"})
_MOVIE_KINDS = frozenset({"movie", "film"})


def context_multiplier(
    *,
    time_of_day: str | None,
    device_type: str | None,
    kind: str,
    runtime_minutes: int | None,
    genres: Sequence[str],
) -> float:
    when = (time_of_day or "").strip().lower().replace("-", "_").replace(" ", "_")
    device = (device_type or "").strip().lower()
    kind_name = kind.strip().lower()
    genre_names = {g.strip().lower() for g in genres}
    is_movie = kind_name in _MOVIE_KINDS
    is_series = kind_name in _SERIES_KINDS
    factor = 1.0

    if when in {"late_night", "night"}:
        if runtime_minutes is not None and runtime_minutes <= 100:
            factor *= 1.10
        elif runtime_minutes is not None and runtime_minutes > 140:
            factor *= 0.85
        if genre_names & _LIGHT_GENRES:
            factor *= 1.05
    elif when == "morning":
        if runtime_minutes is not None and runtime_minutes <= 60:
            factor *= 1.05
        if genre_names & _MORNING_GENRES:
            factor *= 1.05
    elif when == "evening" and is_movie:
        factor *= 1.05

    if device == "tv":
        if is_movie:
            factor *= 1.10
    elif device in {"mobile", "phone"}:
        if is_series or (runtime_minutes is not None and runtime_minutes <= 45):
            factor *= 1.10
        elif is_movie and runtime_minutes is not None and runtime_minutes > 120:
            factor *= 0.85

    return min(MAX_MULTIPLIER, max(MIN_MULTIPLIER, factor))
