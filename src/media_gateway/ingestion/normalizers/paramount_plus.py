"""Paramount+ catalog feed.

Raw shape (MRSS-style: RFC 2822 dates, a primary genre plus sub-genres)::

    {"contentId": "wjQ4RChi6BHHu4MVTncppVuCwu44uq2Q", "mediaType": "Movie" | "Series",
     "title": "...", "originalTitle": "...", "pubDate": "Thu, 10 Dec 2009 00:00:00 GMT",
     "duration": 9720, "description": "...", "genre": "Sci-Fi",
     "subGenres": ["Action & Adventure", "Paramount+ Originals"], "tags": ["..."],
     "regionalRatings": {"US": "PG-13", "CA": "PG"},
     "credits": {"cast": [{"name": "...", "character": "..."}], "director": ["..."]},
     "imdbId": "tt...", "tmdbId": "19995",
     "audienceScore": {"value": 72, "count": 11800, "trending": 150.4},    # out of 100
     "availability": [{"country": "US", "package": "ads" | "commercial_free" | "showtime",
                       "startDate": "Wed, 01 May 2024 00:00:00 GMT", "endDate": null,
                       "videoQuality": "HD"}]}

Tier: package `showtime` → `showtime`, `ads` → `essential`, anything else → `premium`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import ContentKind, Monetization, NormalizedContent
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch, genre_table, originals

_KINDS = {"Movie": ContentKind.MOVIE, "Series": ContentKind.SERIES}
_TIERS = {"showtime": "showtime", "ads": "essential"}


class ParamountPlusNormalizer(PlatformNormalizer):
    platform = "paramount_plus"
    genre_rules = genre_table(
        {
            **originals("Paramount+ Originals"),
            "Star Trek": ("Science Fiction",),
            "Nickelodeon": ("Family", "Animation"),
            "Smithsonian Channel": ("Documentary",),
        }
    )

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.text(raw.get("contentId"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        primary = fields.text(raw.get("genre"))
        return ([primary] if primary else []) + fields.strings(raw.get("subGenres"))

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        title = self.require_title(raw.get("title"))
        published = fields.rfc2822_date(raw.get("pubDate"))
        credits = fields.mapping(raw.get("credits"))
        score = fields.mapping(raw.get("audienceScore"))
        offers = []
        for entry in fields.items(raw.get("availability")):
            window = fields.mapping(entry)
            offers.append(
                self.offer(
                    source_id,
                    region=window.get("country"),
                    monetization=Monetization.SUBSCRIPTION,
                    tier=_TIERS.get(fields.text(window.get("package")) or "", "premium"),
                    quality=window.get("videoQuality"),
                    available_since=fields.rfc2822_date(window.get("startDate")),
                    expires_on=fields.rfc2822_date(window.get("endDate")),
                )
            )
        return NormalizedContent(
            kind=_KINDS[fields.text(raw.get("mediaType")) or "Movie"],
            title=title,
            original_title=fields.text(raw.get("originalTitle")),
            year=published.year if published else None,
            release_date=published,
            runtime_minutes=fields.seconds_to_minutes(raw.get("duration")),
            overview=fields.text(raw.get("description")),
            genres=list(genres.genres),
            keywords=fields.strings(raw.get("tags")),
            cast=fields.cast_list(
                fields.items(credits.get("cast")), name="name", character="character", order=None
            ),
            directors=fields.strings(credits.get("director")),
            certifications=fields.regional(raw.get("regionalRatings")),
            popularity=fields.number(score.get("trending")),
            rating=fields.rescale(score.get("value"), 100),
            vote_count=fields.integer(score.get("count")),
            is_original=genres.original,
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(source_id, imdb=raw.get("imdbId"), tmdb=raw.get("tmdbId")),
            offers=offers,
        )
