"""Apple TV+ / Apple TV app catalog feed.

Raw shape (timestamps in Unix milliseconds, storefronts keyed by lower-case country, prices as the
storefront formats them)::

    {"id": "umc.cmc.1p2q3r...", "type": "Movie" | "Show", "title": "...", "originalTitle": "...",
     "releaseDate": 1260403200000, "duration": 9720, "description": "...",
     "genres": [{"id": "umc.gnr.mov.action", "name": "Action"}], "keywords": ["..."],
     "roles": [{"type": "Actor", "personName": "...", "characterName": "..."},
               {"type": "Director", "personName": "..."}],
     "isAppleOriginal": true,
     "storefronts": {"us": {"rating": "PG-13", "offers": [
         {"kind": "subscription", "channelId": "tvs.sbd.4000", "videoQuality": "4K",
          "startTime": 1714521600000, "endTime": null},
         {"kind": "rent", "price": {"formatted": "$3.99", "currency": "USD"}, "videoQuality": "HD", ...},
         {"kind": "buy", "price": {"formatted": "£9.99", "currency": "GBP"}, ...}]}}}

The feed carries no IMDb or TMDB ids, ratings or popularity. The Apple TV+ subscription is a single
plan, so its tier is always `premium`; rentals and purchases have no tier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import ContentKind, Monetization, NormalizedContent, OfferIn
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch, genre_table, originals

_KINDS = {"Movie": ContentKind.MOVIE, "Show": ContentKind.SERIES}
_MONETIZATION = {
    "subscription": Monetization.SUBSCRIPTION,
    "rent": Monetization.RENT,
    "buy": Monetization.BUY,
}


class AppleTvPlusNormalizer(PlatformNormalizer):
    platform = "apple_tv_plus"
    genre_rules = genre_table(originals("Apple Originals", "Apple TV+ Originals"))

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.text(raw.get("id"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return fields.names(raw.get("genres"), "name")

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        title = self.require_title(raw.get("title"))
        released = fields.epoch_date(raw.get("releaseDate"), millis=True)
        roles = [fields.mapping(r) for r in fields.items(raw.get("roles"))]
        offers: list[OfferIn] = []
        certifications: dict[str, str] = {}
        for storefront, value in fields.mapping(raw.get("storefronts")).items():
            front = fields.mapping(value)
            if rating := fields.text(front.get("rating")):
                certifications[storefront.upper()] = rating
            for entry in fields.items(front.get("offers")):
                offer = fields.mapping(entry)
                monetization = _MONETIZATION.get(fields.text(offer.get("kind")) or "")
                if monetization is None:
                    continue
                price = fields.mapping(offer.get("price"))
                offers.append(
                    self.offer(
                        source_id,
                        region=storefront,
                        monetization=monetization,
                        tier="premium" if monetization is Monetization.SUBSCRIPTION else None,
                        price=fields.formatted_price(price.get("formatted")),
                        currency=price.get("currency"),
                        quality=offer.get("videoQuality"),
                        available_since=fields.epoch_date(offer.get("startTime"), millis=True),
                        expires_on=fields.epoch_date(offer.get("endTime"), millis=True),
                    )
                )
        return NormalizedContent(
            kind=_KINDS[fields.text(raw.get("type")) or "Movie"],
            title=title,
            original_title=fields.text(raw.get("originalTitle")),
            year=released.year if released else None,
            release_date=released,
            runtime_minutes=fields.seconds_to_minutes(raw.get("duration")),
            overview=fields.text(raw.get("description")),
            genres=list(genres.genres),
            keywords=fields.strings(raw.get("keywords")),
            cast=fields.cast_list(
                [r for r in roles if r.get("type") == "Actor"],
                name="personName",
                character="characterName",
                order=None,
            ),
            directors=fields.names([r for r in roles if r.get("type") == "Director"], "personName"),
            certifications=certifications,
            is_original=genres.original or raw.get("isAppleOriginal") is True,
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(source_id),
            offers=offers,
        )
