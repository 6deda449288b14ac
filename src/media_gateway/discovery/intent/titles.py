"""Resolving the titles a query references ("like Arrival") to catalog ids."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import Text, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.catalog.models import content
from media_gateway.catalog.schemas import ContentKind, normalize_title

# Given titles as the query wrote them, the catalog id of each one found (absent when not found).
TitleResolver = Callable[[list[str]], Awaitable[dict[str, uuid.UUID]]]

# One statement text for any number of titles: `= ANY(array)` keeps a single prepared statement,
# where `IN (...)` would compile a new one per title count.
_names = bindparam("names", type_=ARRAY(Text))
_RESOLVE = (
    select(content.c.title_normalized, content.c.id)
    .where(
        content.c.title_normalized == any_(_names),
        # Seasons and episodes share their show's title; a reference means the show or the film.
        content.c.kind.in_((ContentKind.MOVIE.value, ContentKind.SERIES.value)),
    )
    .ext(distinct_on(content.c.title_normalized))
    # Several titles share a name (remakes, homonyms): the one people most likely mean wins.
    .order_by(
        content.c.title_normalized,
        content.c.popularity.desc().nulls_last(),
        content.c.vote_count.desc().nulls_last(),
        content.c.id,
    )
)


class CatalogTitleResolver:
    """`TitleResolver` over `catalog.content`, matching on the entity-resolution blocking key, so
    case, accents, punctuation and a leading article do not matter."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def __call__(self, titles: Sequence[str]) -> dict[str, uuid.UUID]:
        wanted: dict[str, list[str]] = {}
        for title in titles:
            key = normalize_title(title)
            if key:
                wanted.setdefault(key, []).append(title)
        if not wanted:
            return {}
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_RESOLVE, {"names": list(wanted)})).all()
        return {title: row.id for row in rows for title in wanted[row.title_normalized]}
