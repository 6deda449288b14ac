"""The default title resolver against the real PostgreSQL catalog (the run's migrated database)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, insert

from media_gateway.catalog.models import content
from media_gateway.catalog.schemas import normalize_title
from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings
from media_gateway.discovery.intent import CatalogTitleResolver


async def test_catalog_resolver_picks_the_most_popular(migrated_settings: Settings) -> None:
    name = f"Arrival {uuid.uuid4().hex[:8]}"
    popular, obscure, episode, other = (uuid.uuid4() for _ in range(4))
    rows = [
        (popular, "movie", f"The {name}", 80.0),
        (obscure, "movie", name, 2.0),
        (episode, "episode", name, 999.0),
        (other, "series", f"{name} Returns", 50.0),
    ]
    engine = make_engine(migrated_settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(content),
                [
                    {
                        "id": cid,
                        "kind": kind,
                        "title": title,
                        "title_normalized": normalize_title(title),
                        "popularity": popularity,
                        "content_hash": "x" * 64,
                    }
                    for cid, kind, title, popularity in rows
                ],
            )
        resolve = CatalogTitleResolver(engine)
        found = await resolve([name.upper(), f"{name} returns", "zorblax quuxian", "", "  "])
        assert found == {name.upper(): popular, f"{name} returns": other}
        assert await resolve([]) == {}
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(content).where(content.c.id.in_([r[0] for r in rows])))
        await engine.dispose()
