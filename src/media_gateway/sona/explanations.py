"""Why a title is recommended, in words; and what the viewing context does to a title's score."""

from __future__ import annotations

from collections.abc import Iterable

from media_gateway.sona.models import BlendedItem, context_multiplier
from media_gateway.sona.repository.catalog import CatalogRow
from media_gateway.sona.schemas import RecommendationContext
from media_gateway.sona.state import CatalogState, UserState

MOOD_GENRES: dict[str, frozenset[str]] = {
    "happy": frozenset({"comedy", "family", "animation", "music"}),
    "relaxed": frozenset({"comedy", "animation", "family", "romance"}),
    "thrilled": frozenset({"thriller", "action", "crime"}),
    "scared": frozenset({"horror", "thriller", "mystery"}),
    "romantic": frozenset({"romance"}),
    "thoughtful": frozenset({"drama", "documentary", "history"}),
    "sad": frozenset({"drama", "romance"}),
    "adventurous": frozenset({"adventure", "fantasy", "science fiction"}),
    "curious": frozenset({"documentary", "mystery", "science fiction", "history"}),
}
MOOD_BOOST = 1.1


def context_factors(
    cat: CatalogState, candidates: Iterable[str], context: RecommendationContext
) -> dict[str, float]:
    """Per candidate: the time-of-day and device multiplier, raised when a genre fits the mood."""
    mood = MOOD_GENRES.get(context.mood or "", frozenset())
    factors = {}
    for cid in candidates:
        i = cat.index[cid]
        row = cat.rows[i]
        factor = context_multiplier(
            time_of_day=context.time_of_day,
            device_type=context.device_type,
            kind=row.kind,
            runtime_minutes=row.runtime_minutes,
            genres=row.genres,
        )
        if mood & cat.genres[i]:
            factor *= MOOD_BOOST
        factors[cid] = factor
    return factors


def explain(
    cat: CatalogState,
    state: UserState,
    item: BlendedItem,
    sources: list[str],
    context: RecommendationContext | None,
    region: str,
    favourites: set[str],
) -> str:
    """The reasons of the two strongest sources, then the context if it helped."""
    row = cat.rows[cat.index[item.content_id]]
    producers = [s for s in sources if s != "context"] or ["trending"]
    reasons = [reason(cat, state, row, source, region, favourites) for source in producers[:2]]
    text = "; ".join(dict.fromkeys(reasons))
    if "context" in sources and context is not None:
        moment = " ".join(
            p for p in (context.time_of_day, context.device_type and f"on {context.device_type}") if p
        )
        if context.mood:
            moment = f"{moment} when you feel {context.mood}".strip()
        text = f"{text}; suits {moment.replace('_', ' ')}"
    return text[:1].upper() + text[1:]


def reason(
    cat: CatalogState, state: UserState, row: CatalogRow, source: str, region: str, favourites: set[str]
) -> str:
    if source == "graph":
        hit = state.graph_hits.get(row.id)
        seed = cat.rows[cat.index[hit.via]] if hit is not None and hit.via in cat.index else None
        if hit is None or seed is None:
            return "connected to titles you watched"
        # A shared director or actor says more than co-viewing, whichever edge weighed most.
        directors = sorted(set(row.directors) & set(seed.directors))
        cast = [c for c in row.cast if c in set(seed.cast)]
        genres = [g for g in row.genres if g in set(seed.genres)]
        if directors:
            return f"directed by {directors[0]}, like {seed.title}, which you watched"
        if cast:
            return f"with {cast[0]}, like {seed.title}, which you watched"
        if hit.relation == "coview":
            return f"viewers who liked {seed.title} also liked this"
        if genres:
            return f"{genres[0]} like {seed.title}, which you watched"
        return f"related to {seed.title}, which you watched"
    if source == "collaborative":
        return "viewers with a taste like yours watched this"
    if source == "content":
        return "close in story and tone to titles you enjoyed"
    if source == "onboarding":
        matched = [g for g in row.genres if g.casefold() in favourites]
        return f"matches your favourite genres: {', '.join(matched)}" if matched else "picked for your tastes"
    return f"popular in {region} right now"
