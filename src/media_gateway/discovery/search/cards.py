"""Result cards (`ContentSummary`) worked out from the keyword index's memory, as a search engine returns
stored fields: a card changes exactly when the indexed title does, and costs no SQL.

A card shows the offers of one region watchable on one day; the metadata keeps every offer not expired
when the index was written (later ones included), so a card is right for any day until then.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from media_gateway.discovery.schemas import ContentSummary, DeepLinksOut, OfferOut
from media_gateway.discovery.search.metadata import TitleMeta
from media_gateway.discovery.search_schemas import SearchResult


def summary(meta: TitleMeta, region: str, day: date) -> ContentSummary:
    """`meta`'s card in `region` (upper case, as offers store it) with the offers watchable on `day`."""
    return ContentSummary(**_card(meta, region, day))


def search_result(meta: TitleMeta, region: str, day: date, score: float, reasons: list[str]) -> SearchResult:
    """`summary` with a search's score and match reasons, built in one go (copying a finished card's
    fields into a result cost as much as building the card)."""
    return SearchResult(**_card(meta, region, day), score=score, match_reasons=reasons)


def _card(meta: TitleMeta, region: str, day: date) -> dict[str, Any]:
    card = meta.card
    return {
        "id": meta.id,
        "kind": meta.kind,
        "title": card.title,
        "original_title": card.original_title,
        "year": meta.year,
        "genres": list(meta.genres),
        "runtime_minutes": meta.runtime,
        "rating": meta.rating,
        "vote_count": card.vote_count,
        "popularity": card.popularity,
        "certification": card.certifications.get(region),
        "poster": card.poster,
        "is_original": card.is_original,
        "region": region,
        "offers": [
            OfferOut(
                platform=o.platform,
                region=o.region,
                monetization=o.monetization,
                tier=o.tier,
                price=o.price,
                currency=o.currency,
                quality=o.quality,
                deep_links=DeepLinksOut(app=o.deep_link_app, web=o.deep_link_web, tv=o.deep_link_tv),
                available_since=o.available_since,
                expires_on=o.expires_on,
            )
            for o in card.offers
            if o.region == region and o.watchable_on(day)
        ],
    }
