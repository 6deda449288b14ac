"""Any platform without its own normalizer, in the aggregator's "show" shape.

Raw shape (Streaming-Availability-style; region keys lower-case, timestamps in Unix seconds)::

    {"id": "82", "showType": "movie" | "series", "title": "...", "originalTitle": "...",
     "overview": "...", "releaseYear": 2009, "releaseDate": "2009-12-10", "runtime": 162,
     "genres": [{"id": "action", "name": "Action"}], "keywords": ["..."],
     "cast": ["Sam Worthington", ...], "directors": ["James Cameron"],
     "imdbId": "tt0499549", "tmdbId": "movie/19995", "rating": 72, "voteCount": 11800,
     "popularity": 150.4, "certifications": {"us": "PG-13"},                # rating out of 100
     "streamingOptions": {"us": [
         {"service": {"id": "tubi"}, "type": "free" | "ads" | "subscription" | "addon" | "rent" | "buy",
          "addon": {"id": "..."}, "tier": "...", "link": "https://...", "deepLink": "tubitv://...",
          "tvLink": "...", "quality": "hd", "price": {"amount": "3.99", "currency": "USD"},
          "availableSince": 1714521600, "expiresOn": 1735689600}]}}

Options of another service than this normalizer's platform are skipped. Links come from the option;
for a platform with known link templates those fill what the option leaves out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import ContentKind, DeepLinks, Monetization, NormalizedContent, OfferIn
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch

_MONETIZATIONS = {m.value: m for m in Monetization}
_KINDS = {"movie": ContentKind.MOVIE, "series": ContentKind.SERIES}
# `platform:<name>` must fit the 40-character id type.
_PLATFORM_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{1,30}$")


class GenericNormalizer(PlatformNormalizer):
    def __init__(self, platform: str) -> None:
        if not _PLATFORM_NAME.match(platform):
            raise ValueError(f"not a platform name: {platform!r}")
        self.platform = platform

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.ident(raw.get("id"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return [
            g if isinstance(g, str) else fields.text(fields.mapping(g).get("name")) or ""
            for g in fields.items(raw.get("genres"))
        ]

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        title = self.require_title(raw.get("title"))
        released = fields.iso_date(raw.get("releaseDate"))
        offers: list[OfferIn] = []
        for region, options in fields.mapping(raw.get("streamingOptions")).items():
            for entry in fields.items(options):
                option = fields.mapping(entry)
                service = fields.text(fields.mapping(option.get("service")).get("id"))
                if service not in (None, self.platform):
                    continue
                monetization = _MONETIZATIONS.get(fields.text(option.get("type")) or "")
                # An option kind this model has no place for is skipped, not guessed.
                if monetization is not None:
                    offers.append(self._offer(source_id, region, monetization, option))
        return NormalizedContent(
            kind=_KINDS[fields.text(raw.get("showType")) or "movie"],
            title=title,
            original_title=fields.text(raw.get("originalTitle")),
            year=fields.integer(raw.get("releaseYear")) or (released.year if released else None),
            release_date=released,
            runtime_minutes=fields.integer(raw.get("runtime")),
            overview=fields.text(raw.get("overview")),
            genres=list(genres.genres),
            keywords=fields.strings(raw.get("keywords")),
            cast=fields.cast_list(
                fields.items(raw.get("cast")), name="name", character="character", order=None
            ),
            directors=fields.strings(raw.get("directors")),
            certifications=fields.regional(raw.get("certifications")),
            popularity=fields.number(raw.get("popularity")),
            rating=fields.rescale(raw.get("rating"), 100),
            vote_count=fields.integer(raw.get("voteCount")),
            is_original=genres.original or raw.get("isOriginal") is True,
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(
                source_id, imdb=raw.get("imdbId"), tmdb=raw.get("tmdbId"), eidr=raw.get("eidr")
            ),
            offers=offers,
        )

    def _offer(
        self, source_id: str, region: str, monetization: Monetization, option: Mapping[str, Any]
    ) -> OfferIn:
        price = fields.mapping(option.get("price"))
        tier = fields.text(option.get("tier"))
        if monetization is Monetization.ADDON:
            tier = fields.text(fields.mapping(option.get("addon")).get("id")) or tier
        offer = self.offer(
            source_id,
            region=region,
            monetization=monetization,
            tier=tier,
            price=fields.decimal(price.get("amount")),
            currency=price.get("currency"),
            quality=option.get("quality"),
            available_since=fields.epoch_date(option.get("availableSince")),
            expires_on=fields.epoch_date(option.get("expiresOn")),
        )
        templated = offer.deep_links
        links = DeepLinks(
            app=fields.text(option.get("deepLink")) or templated.app,
            web=fields.text(option.get("link")) or templated.web,
            tv=fields.text(option.get("tvLink")) or templated.tv,
        )
        return offer.model_copy(update={"deep_links": links})
