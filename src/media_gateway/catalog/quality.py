"""The quality score: how complete a title's metadata is, in [0, 1].

    score = 0.20·overview + 0.10·runtime + 0.10·release + 0.15·genres + 0.15·cast
          + 0.10·directors + 0.10·poster + 0.10·votes

Each term is 1 when the field is fully present and partial where a count is short of what a good
listing has: overview ≥ 100 characters (linear below), genres ≥ 2, cast ≥ 5 names, votes ≥ 100
(log-scaled below). Search uses it as a light prior; enrichment stores it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

WEIGHTS: Mapping[str, float] = {
    "overview": 0.20,
    "runtime": 0.10,
    "release": 0.10,
    "genres": 0.15,
    "cast": 0.15,
    "directors": 0.10,
    "poster": 0.10,
    "votes": 0.10,
}


def _fraction(have: int, want: int) -> float:
    return min(have, want) / want


def quality_components(row: Mapping[str, Any]) -> dict[str, float]:
    overview = (row.get("overview") or "").strip()
    votes = int(row.get("vote_count") or 0)
    return {
        "overview": _fraction(len(overview), 100),
        "runtime": 1.0 if row.get("runtime_minutes") else 0.0,
        "release": 1.0 if row.get("release_date") or row.get("year") else 0.0,
        "genres": _fraction(len(row.get("genres") or []), 2),
        "cast": _fraction(len(row.get("cast") or []), 5),
        "directors": 1.0 if row.get("directors") else 0.0,
        "poster": 1.0 if (row.get("images") or {}).get("poster") else 0.0,
        "votes": min(1.0, math.log10(1 + votes) / 2.0),
    }


def quality_score(row: Mapping[str, Any]) -> float:
    components = quality_components(row)
    return round(sum(WEIGHTS[k] * v for k, v in components.items()), 4)
