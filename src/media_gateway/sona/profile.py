"""The user's taste profile as SONA sees it."""

from __future__ import annotations

from collections import defaultdict

from media_gateway.core.security.tokens import Principal
from media_gateway.sona.repository import interactions
from media_gateway.sona.repository.artifacts import AdapterRow
from media_gateway.sona.runtime import SonaRuntime
from media_gateway.sona.schemas import AdapterInfo, Affinity, ColdStartState, ProfileResponse

TOP_GENRES = 10
TOP_PEOPLE = 10
# A director shapes a title more than any one actor.
DIRECTOR_WEIGHT, CAST_WEIGHT = 1.0, 0.5


def adapter_info(row: AdapterRow | None) -> AdapterInfo | None:
    if row is None:
        return None
    return AdapterInfo(
        id=row.id,
        version=row.version,
        rank=row.rank,
        alpha=row.alpha,
        trained_at=row.trained_at,
        metrics=row.metrics,
    )


def _ranked(totals: dict[str, float], limit: int) -> list[Affinity]:
    top = max((abs(v) for v in totals.values()), default=0.0)
    if top == 0:
        return []
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [Affinity(name=name, score=round(value / top, 4)) for name, value in ranked if value > 0]


async def profile(runtime: SonaRuntime, principal: Principal) -> ProfileResponse:
    user_id = principal.user_id
    assert user_id is not None
    state = await runtime.user_state(user_id, principal.token)
    async with runtime.engine.connect() as conn:
        counts = await interactions.interaction_counts(conn, user_id)
    cat = state.catalog
    genres: dict[str, float] = defaultdict(float)
    people: dict[str, float] = defaultdict(float)
    for content_id, affinity in state.history.items():
        i = cat.index.get(content_id)
        if i is None:
            continue
        row = cat.rows[i]
        for genre in row.genres:
            genres[genre] += affinity
        for director in row.directors:
            people[director] += DIRECTOR_WEIGHT * affinity
        for actor in row.cast:
            people[actor] += CAST_WEIGHT * affinity
    threshold = runtime.cfg.cold_start_max_interactions
    return ProfileResponse(
        user_id=user_id,
        genre_affinities=_ranked(genres, TOP_GENRES),
        top_people=_ranked(people, TOP_PEOPLE),
        interaction_counts=counts,
        titles=len(state.items),
        cold_start=ColdStartState(
            cold_start=state.engaged <= threshold, interactions=state.engaged, threshold=threshold
        ),
        adapter=adapter_info(state.adapter_row),
    )
