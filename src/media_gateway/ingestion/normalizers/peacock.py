"""Peacock catalog feed.

Raw shape (attributes block; offer windows as ISO timestamps with offsets)::

    {"id": "0f6e2d4c-...", "type": "PROGRAMME" | "SERIES",
     "attributes": {"title": "...", "titleOriginal": "...", "year": 2009, "releaseDate": "2009-12-10",
                    "durationMilliseconds": 9720000, "synopsisLong": "...",
                    "genres": [{"title": "Sci-Fi"}, {"title": "Peacock Originals"}],
                    "tags": ["..."], "ottCertificate": "PG-13",
                    "cast": [{"name": "...", "character": "...", "position": 1}],
                    "directors": ["..."],
                    "externalIds": {"imdb": "tt...", "tmdb": "19995"},
                    "audience": {"rating": 7.2, "ratings": 11800, "trend": 150.4}},   # out of 10
     "offers": [{"territory": "US", "entitlement": "premiumPlus" | "premium" | "free",
                 "startDateTime": "2024-05-01T00:00:00+00:00", "endDateTime": null, "format": "UHD"}]}

`ottCertificate` is the US certification. Tier: `premiumPlus` → `premium-plus`, `premium` → `premium`,
`free` → `free` (an ad-supported offer), no entitlement → `premium`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import ContentKind, Monetization, NormalizedContent
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch, genre_table, originals

_KINDS = {"PROGRAMME": ContentKind.MOVIE, "SERIES": ContentKind.SERIES}
_TIERS = {"premiumPlus": "premium-plus", "premium": "premium", "free": "free"}


class PeacockNormalizer(PlatformNormalizer):
    platform = "peacock"
    genre_rules = genre_table(
        {
            **originals("Peacock Originals"),
            "Bravo": ("Reality",),
            "Kids Movies": ("Family",),
        }
    )

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.text(raw.get("id"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return fields.names(fields.mapping(raw.get("attributes")).get("genres"), "title")

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        attributes = fields.mapping(raw.get("attributes"))
        title = self.require_title(attributes.get("title"))
        released = fields.iso_date(attributes.get("releaseDate"))
        ids = fields.mapping(attributes.get("externalIds"))
        audience = fields.mapping(attributes.get("audience"))
        certificate = fields.text(attributes.get("ottCertificate"))
        offers = []
        for entry in fields.items(raw.get("offers")):
            window = fields.mapping(entry)
            tier = _TIERS.get(fields.text(window.get("entitlement")) or "", "premium")
            offers.append(
                self.offer(
                    source_id,
                    region=window.get("territory"),
                    monetization=Monetization.ADS if tier == "free" else Monetization.SUBSCRIPTION,
                    tier=tier,
                    quality=window.get("format"),
                    available_since=fields.iso_date(window.get("startDateTime")),
                    expires_on=fields.iso_date(window.get("endDateTime")),
                )
            )
        return NormalizedContent(
            kind=_KINDS[fields.text(raw.get("type")) or "PROGRAMME"],
            title=title,
            original_title=fields.text(attributes.get("titleOriginal")),
            year=fields.integer(attributes.get("year")) or (released.year if released else None),
            release_date=released,
            runtime_minutes=fields.seconds_to_minutes(
                attributes.get("durationMilliseconds"), per_second=1000
            ),
            overview=fields.text(attributes.get("synopsisLong")),
            genres=list(genres.genres),
            keywords=fields.strings(attributes.get("tags")),
            cast=fields.cast_list(
                fields.items(attributes.get("cast")), name="name", character="character", order="position"
            ),
            directors=fields.strings(attributes.get("directors")),
            certifications={"US": certificate} if certificate else {},
            popularity=fields.number(audience.get("trend")),
            rating=fields.number(audience.get("rating")),
            vote_count=fields.integer(audience.get("ratings")),
            is_original=genres.original,
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(source_id, imdb=ids.get("imdb"), tmdb=ids.get("tmdb")),
            offers=offers,
        )
