"""Hulu catalog feed.

Raw shape (snake_case, US-style dates, genres as one pipe-joined string)::

    {"id": "5b1a2c3d-...", "eab_id": "EAB::5b1a2c3d-...::NULL::NULL", "type": "movie" | "series",
     "name": "...", "original_name": "...", "premiere_date": "12/10/2009", "duration": "2:42:00",
     "description": "...", "genres": "Action|Science Fiction|Hulu Originals",
     "keywords": ["..."], "rating": "PG-13",
     "cast": [{"name": "...", "role": "Jake Sully"}], "directors": ["James Cameron"],
     "external_ids": {"imdb": "tt...", "tmdb": "19995"},
     "user_rating": {"average": 3.6, "count": 11800, "popularity": 150.4},   # out of 5
     "availability": {"US": {"start": "05/01/2024", "end": null,
                             "package": "ads" | "no_ads" | "live_tv", "quality": "hd"}}}

The single `rating` is the US certification. Tier: package `ads` → `ad-supported`, `live_tv` →
`live-tv`, anything else → `ad-free`. "Hulu Originals" means Drama and an original."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import ContentKind, Monetization, NormalizedContent
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch, genre_table, originals

_KINDS = {"movie": ContentKind.MOVIE, "series": ContentKind.SERIES}
_TIERS = {"ads": "ad-supported", "live_tv": "live-tv"}


class HuluNormalizer(PlatformNormalizer):
    platform = "hulu"
    genre_rules = genre_table(originals("Hulu Originals", genres=("Drama",)))

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.text(raw.get("id"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return fields.split(raw.get("genres"), "|")

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        title = self.require_title(raw.get("name"))
        premiered = fields.us_date(raw.get("premiere_date"))
        ids = fields.mapping(raw.get("external_ids"))
        user_rating = fields.mapping(raw.get("user_rating"))
        certification = fields.text(raw.get("rating"))
        offers = []
        for region, value in fields.mapping(raw.get("availability")).items():
            window = fields.mapping(value)
            offers.append(
                self.offer(
                    source_id,
                    region=region,
                    monetization=Monetization.SUBSCRIPTION,
                    tier=_TIERS.get(fields.text(window.get("package")) or "", "ad-free"),
                    quality=window.get("quality"),
                    available_since=fields.us_date(window.get("start")),
                    expires_on=fields.us_date(window.get("end")),
                )
            )
        return NormalizedContent(
            kind=_KINDS[fields.text(raw.get("type")) or "movie"],
            title=title,
            original_title=fields.text(raw.get("original_name")),
            year=premiered.year if premiered else None,
            release_date=premiered,
            runtime_minutes=fields.clock_minutes(raw.get("duration")),
            overview=fields.text(raw.get("description")),
            genres=list(genres.genres),
            keywords=fields.strings(raw.get("keywords")),
            cast=fields.cast_list(fields.items(raw.get("cast")), name="name", character="role", order=None),
            directors=fields.strings(raw.get("directors")),
            certifications={"US": certification} if certification else {},
            popularity=fields.number(user_rating.get("popularity")),
            rating=fields.rescale(user_rating.get("average"), 5),
            vote_count=fields.integer(user_rating.get("count")),
            is_original=genres.original,
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(source_id, imdb=ids.get("imdb"), tmdb=ids.get("tmdb")),
            offers=offers,
        )
