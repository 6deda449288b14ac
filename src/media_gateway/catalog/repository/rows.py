"""Row → pydantic converters shared by the write side (`get_content`) and the read side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from media_gateway.catalog.schemas import CastMember, Content, ContentKind, DeepLinks, ExternalId, Offer


def content_from_row(row: Row[Any], ids: Sequence[Any] = (), offer_rows: Sequence[Any] = ()) -> Content:
    m = row._mapping
    return Content(
        id=m["id"],
        kind=ContentKind(m["kind"]),
        title=m["title"],
        original_title=m["original_title"],
        year=m["year"],
        release_date=m["release_date"],
        runtime_minutes=m["runtime_minutes"],
        overview=m["overview"],
        genres=list(m["genres"] or []),
        keywords=list(m["keywords"] or []),
        cast=[CastMember(**c) for c in (m["cast"] or [])],
        directors=list(m["directors"] or []),
        certifications=dict(m["certifications"] or {}),
        popularity=m["popularity"],
        rating=m["rating"],
        vote_count=m["vote_count"],
        images=dict(m["images"] or {}),
        is_original=m["is_original"],
        quality_score=m["quality_score"],
        embedding_updated_at=m["embedding_updated_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        external_ids=[ExternalId(id_type=i.id_type, value=i.external_id) for i in ids],
        offers=[offer_from_row(o) for o in offer_rows],
    )


def offer_from_row(o: Row[Any]) -> Offer:
    return Offer(
        content_id=o.content_id,
        platform=o.platform,
        region=o.region,
        monetization=o.monetization,
        tier=o.tier,
        price=o.price,
        currency=o.currency,
        quality=o.quality,
        deep_links=DeepLinks(app=o.deep_link_app, web=o.deep_link_web, tv=o.deep_link_tv),
        platform_content_id=o.platform_content_id,
        available_since=o.available_since,
        expires_on=o.expires_on,
        updated_at=o.updated_at,
    )
