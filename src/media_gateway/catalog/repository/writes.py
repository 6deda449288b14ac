"""The ingestion side of the catalog: merging records into entities, offer snapshots, embedding bookkeeping.

Also the counts ingestion's stats report and `get_content` (one entity with its offers and external ids);
the reads discovery and SONA page through live in `reads`."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.catalog.models import content, offers
from media_gateway.catalog.quality import quality_score
from media_gateway.catalog.schemas import NormalizedContent, OfferIn, normalize_title

# The metadata columns a record sets; `content_hash` covers exactly these.
_METADATA_FIELDS = (
    "kind",
    "title",
    "original_title",
    "year",
    "release_date",
    "runtime_minutes",
    "overview",
    "genres",
    "keywords",
    "cast",
    "directors",
    "certifications",
    "popularity",
    "rating",
    "vote_count",
    "images",
    "is_original",
)
_EMPTY: tuple[object, ...] = (None, "", [], {})


class WriteOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class OfferChanges:
    added: int = 0
    updated: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def _record_values(record: NormalizedContent) -> dict[str, Any]:
    return {
        "kind": record.kind.value,
        "title": record.title,
        "original_title": record.original_title,
        "year": record.year,
        "release_date": record.release_date,
        "runtime_minutes": record.runtime_minutes,
        "overview": record.overview,
        "genres": list(record.genres),
        "keywords": list(record.keywords),
        "cast": [m.model_dump() for m in record.cast],
        "directors": list(record.directors),
        "certifications": dict(record.certifications),
        "popularity": record.popularity,
        "rating": record.rating,
        "vote_count": record.vote_count,
        "images": dict(record.images),
        "is_original": record.is_original,
    }


def metadata_hash(values: dict[str, Any]) -> str:
    canonical = {k: values.get(k) for k in _METADATA_FIELDS}
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def merge_metadata(existing: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """A second platform's view of a title only fills what the entity lacks.

    The first record keeps the titles, year and people it brought, so a platform's variant spelling
    ("Matrix, The") never overwrites the canonical one; genres and keywords are unions, popularity and
    votes keep the strongest signal."""
    merged = dict(existing)
    for key in _METADATA_FIELDS:
        if merged.get(key) in _EMPTY and incoming.get(key) not in _EMPTY:
            merged[key] = incoming[key]
    for key in ("genres", "keywords"):
        merged[key] = list(dict.fromkeys([*(existing.get(key) or []), *(incoming.get(key) or [])]))
    for key in ("certifications", "images"):
        merged[key] = {**(incoming.get(key) or {}), **(existing.get(key) or {})}
    for key in ("popularity", "vote_count"):
        values = [v for v in (existing.get(key), incoming.get(key)) if v is not None]
        merged[key] = max(values) if values else None
    merged["is_original"] = bool(existing.get("is_original") or incoming.get("is_original"))
    return merged


async def write_content(
    conn: AsyncConnection, entity_id: uuid.UUID, record: NormalizedContent, *, is_new: bool
) -> WriteOutcome:
    """Create the entity, or merge the record into it; a no-op when nothing would change."""
    incoming = _record_values(record)
    if is_new:
        values = incoming
    else:
        row = (
            await conn.execute(
                select(
                    *(content.c[k] for k in _METADATA_FIELDS),
                    content.c.content_hash,
                    content.c.embedding_text_hash,
                )
                .where(content.c.id == entity_id)
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            # The mapping outlived its entity (deleted by hand): create it again under the same id.
            values, is_new = incoming, True
        else:
            existing = {k: row._mapping[k] for k in _METADATA_FIELDS}
            values = merge_metadata(existing, incoming)
            new_hash = metadata_hash(values)
            if new_hash == row.content_hash:
                return WriteOutcome.UNCHANGED
            changes: dict[str, Any] = {}
            if text_hash(embedding_text(values)) != row.embedding_text_hash:
                # A NULL stamp is what marks a vector as due, for the pipeline and enrichment alike.
                changes["embedding_updated_at"] = None
            await conn.execute(
                update(content)
                .where(content.c.id == entity_id)
                .values(
                    **values,
                    **changes,
                    title_normalized=normalize_title(values["title"]),
                    content_hash=new_hash,
                    updated_at=func.now(),
                )
            )
            return WriteOutcome.UPDATED
    await conn.execute(
        insert(content).values(
            id=entity_id,
            **values,
            title_normalized=normalize_title(values["title"]),
            content_hash=metadata_hash(values),
        )
    )
    return WriteOutcome.CREATED


def _offer_row(entity_id: uuid.UUID, offer: OfferIn) -> dict[str, Any]:
    return {
        "content_id": entity_id,
        "platform": offer.platform,
        "region": offer.region,
        "monetization": offer.monetization.value,
        "tier": offer.tier,
        "price": offer.price,
        "currency": offer.currency,
        "quality": offer.quality,
        "deep_link_app": offer.deep_links.app,
        "deep_link_web": offer.deep_links.web,
        "deep_link_tv": offer.deep_links.tv,
        "platform_content_id": offer.platform_content_id,
        "available_since": offer.available_since,
        "expires_on": offer.expires_on,
    }


_OFFER_KEY = ("region", "monetization")
_OFFER_VALUES = (
    "tier",
    "price",
    "currency",
    "quality",
    "deep_link_app",
    "deep_link_web",
    "deep_link_tv",
    "platform_content_id",
    "available_since",
    "expires_on",
)


async def replace_platform_offers(
    conn: AsyncConnection,
    entity_id: uuid.UUID,
    platform: str,
    new_offers: Sequence[OfferIn],
    *,
    entity_is_new: bool = False,
) -> OfferChanges:
    """Make the entity's offers on `platform` exactly `new_offers` (a record is a full snapshot).

    `entity_is_new` skips reading offers an entity created in this transaction cannot have."""
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for offer in new_offers:
        row = _offer_row(entity_id, offer)
        wanted[(row["region"], row["monetization"])] = row
    existing_rows = (
        []
        if entity_is_new
        else (
            await conn.execute(
                select(offers).where(and_(offers.c.content_id == entity_id, offers.c.platform == platform))
            )
        ).all()
    )
    existing = {(r.region, r.monetization): r._mapping for r in existing_rows}

    added = [row for key, row in wanted.items() if key not in existing]
    changed = [
        row
        for key, row in wanted.items()
        if key in existing and any(existing[key][c] != row[c] for c in _OFFER_VALUES)
    ]
    gone = [key for key in existing if key not in wanted]
    if added:
        await conn.execute(insert(offers), added)
    for row in changed:
        await conn.execute(
            update(offers)
            .where(
                and_(
                    offers.c.content_id == entity_id,
                    offers.c.platform == platform,
                    offers.c.region == row["region"],
                    offers.c.monetization == row["monetization"],
                )
            )
            .values(**{c: row[c] for c in _OFFER_VALUES}, updated_at=func.now())
        )
    if gone:
        await conn.execute(
            delete(offers).where(
                and_(
                    offers.c.content_id == entity_id,
                    offers.c.platform == platform,
                    or_(*(and_(offers.c.region == r, offers.c.monetization == m) for r, m in gone)),
                )
            )
        )
    return OfferChanges(added=len(added), updated=len(changed), removed=len(gone))


def embedding_text(row: dict[str, Any]) -> str:
    """What a title's vector encodes: title, genres, overview, themes and the top-billed cast.

    The model was trained on 128 word pieces and truncates there, so what matters least comes last."""
    cast = [m["name"] if isinstance(m, dict) else m.name for m in (row.get("cast") or [])[:3]]
    parts = [
        f"{row.get('title') or ''}.",
        "Genres: " + ", ".join(row.get("genres") or []) + "." if row.get("genres") else "",
        row.get("overview") or "",
        "Themes: " + ", ".join((row.get("keywords") or [])[:5]) + "." if row.get("keywords") else "",
        "Starring: " + ", ".join(cast) + "." if cast else "",
    ]
    return " ".join(p for p in parts if p)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EmbeddingWork:
    id: uuid.UUID
    text: str
    payload: dict[str, Any]
    quality_score: float
    # False when the stored vector already encodes `text`: only its payload may need refreshing.
    needs_vector: bool


async def load_embedding_work(conn: AsyncConnection, ids: Iterable[uuid.UUID]) -> list[EmbeddingWork]:
    """Text, vector payload and quality score of each entity, in one round trip per table."""
    id_list = list(ids)
    if not id_list:
        return []
    rows = (await conn.execute(select(content).where(content.c.id.in_(id_list)))).all()
    offer_rows = (
        await conn.execute(
            select(offers.c.content_id, offers.c.platform, offers.c.region, offers.c.monetization).where(
                offers.c.content_id.in_(id_list)
            )
        )
    ).all()
    by_content: dict[uuid.UUID, list[Any]] = {}
    for offer in offer_rows:
        by_content.setdefault(offer.content_id, []).append(offer)
    work = []
    for row in rows:
        values = dict(row._mapping)
        own = by_content.get(row.id, [])
        payload = {
            "type": values["kind"],
            "year": values["year"],
            "genres": list(values["genres"] or []),
            "platforms": sorted({o.platform for o in own}),
            "regions": sorted({o.region for o in own}),
            "monetization": sorted({o.monetization for o in own}),
            "popularity": float(values["popularity"] or 0.0),
            "title": values["title"],
        }
        text = embedding_text(values)
        work.append(
            EmbeddingWork(
                id=row.id,
                text=text,
                payload={k: v for k, v in payload.items() if v is not None},
                quality_score=quality_score(values),
                needs_vector=values["embedding_updated_at"] is None
                or values["embedding_text_hash"] != text_hash(text),
            )
        )
    return work


async def mark_embedded(conn: AsyncConnection, done: Sequence[EmbeddingWork], model_id: str) -> None:
    """Record that the vectors of `done` now encode their texts, by `model_id`, and their quality scores."""
    if done:
        await conn.execute(
            update(content)
            .where(content.c.id == bindparam("item_id"))
            .values(
                embedding_text_hash=bindparam("text_hash"),
                embedding_updated_at=func.now(),
                embedding_model=model_id,
                quality_score=bindparam("quality"),
            ),
            [{"item_id": w.id, "text_hash": text_hash(w.text), "quality": w.quality_score} for w in done],
        )


async def store_quality(conn: AsyncConnection, items: Sequence[EmbeddingWork]) -> None:
    if items:
        await conn.execute(
            update(content)
            .where(content.c.id == bindparam("item_id"))
            .values(quality_score=bindparam("quality")),
            [{"item_id": w.id, "quality": w.quality_score} for w in items],
        )


async def stale_embedding_ids(
    conn: AsyncConnection, older_than: datetime, limit: int, model_id: str
) -> list[uuid.UUID]:
    """Entities never embedded, embedded before `older_than`, or embedded by another model than
    `model_id`; oldest first."""
    rows = await conn.execute(
        select(content.c.id)
        .where(
            or_(
                content.c.embedding_updated_at.is_(None),
                content.c.embedding_updated_at < older_than,
                content.c.embedding_model.is_distinct_from(model_id),
            )
        )
        .order_by(content.c.embedding_updated_at.asc().nulls_first(), content.c.id)
        .limit(limit)
    )
    return [r.id for r in rows]


async def refresh_statistics(conn: AsyncConnection) -> None:
    """ANALYZE the catalog after a bulk write. Until autovacuum gets to it (a minute at best, never
    where it is off), the planner guesses: on a freshly loaded demo catalog it scanned every US
    offer to find 20 titles' offers (7 ms) instead of using the primary key (2 ms)."""
    tables = ", ".join(t.fullname for t in (content, offers))
    await conn.execute(text(f"ANALYZE {tables}"))
