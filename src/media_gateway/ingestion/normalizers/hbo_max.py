"""HBO Max catalog feed.

Raw shape (JSON:API-like; availability timestamps in Unix seconds)::

    {"id": "7d4a3c1e-...", "type": "feature" | "series",
     "attributes": {"name": "...", "originalName": "...", "description": "...",
                    "airDate": "2009-12-10T00:00:00Z", "runtimeSeconds": 9720,
                    "keywords": ["..."], "badges": ["max-original"]},
     "contentRatings": [{"country": "US", "system": "MPA", "code": "PG-13"}],
     "relationships": {"genres": [{"name": "Sci-Fi & Fantasy"}],
                       "credits": [{"role": "ACTOR", "name": "...", "character": "...", "ordinal": 0},
                                   {"role": "DIRECTOR", "name": "..."}]},
     "references": {"imdb": "tt...", "tmdb": 19995, "eidr": "10.5240/..."},
     "metrics": {"userScore": 7.2, "votes": 11800, "popularity": 150.4},   # score out of 10
     "availability": [{"territory": "US", "start": 1714521600, "end": null,
                       "entitlement": "ads" | "adfree" | "ultimate", "quality": "UHD"}]}

Tier: entitlement `ads` → `ad-supported`, anything else → `ad-free`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import ContentKind, Monetization, NormalizedContent
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch, genre_table, originals

_KINDS = {"feature": ContentKind.MOVIE, "series": ContentKind.SERIES}


class HboMaxNormalizer(PlatformNormalizer):
    platform = "hbo_max"
    genre_rules = genre_table(originals("Max Originals", "HBO Originals"))

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.text(raw.get("id"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return fields.names(fields.mapping(raw.get("relationships")).get("genres"), "name")

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        attributes = fields.mapping(raw.get("attributes"))
        title = self.require_title(attributes.get("name"))
        aired = fields.iso_date(attributes.get("airDate"))
        credits = [
            fields.mapping(c) for c in fields.items(fields.mapping(raw.get("relationships")).get("credits"))
        ]
        references = fields.mapping(raw.get("references"))
        metrics = fields.mapping(raw.get("metrics"))
        offers = []
        for entry in fields.items(raw.get("availability")):
            window = fields.mapping(entry)
            offers.append(
                self.offer(
                    source_id,
                    region=window.get("territory"),
                    monetization=Monetization.SUBSCRIPTION,
                    tier="ad-supported" if fields.text(window.get("entitlement")) == "ads" else "ad-free",
                    quality=window.get("quality"),
                    available_since=fields.epoch_date(window.get("start")),
                    expires_on=fields.epoch_date(window.get("end")),
                )
            )
        return NormalizedContent(
            kind=_KINDS[fields.text(raw.get("type")) or "feature"],
            title=title,
            original_title=fields.text(attributes.get("originalName")),
            year=aired.year if aired else None,
            release_date=aired,
            runtime_minutes=fields.seconds_to_minutes(attributes.get("runtimeSeconds")),
            overview=fields.text(attributes.get("description")),
            genres=list(genres.genres),
            keywords=fields.strings(attributes.get("keywords")),
            cast=fields.cast_list(
                [c for c in credits if c.get("role") == "ACTOR"],
                name="name",
                character="character",
                order="ordinal",
            ),
            directors=fields.names([c for c in credits if c.get("role") == "DIRECTOR"], "name"),
            certifications=fields.rating_list(
                raw.get("contentRatings"), region_key="country", value_key="code"
            ),
            popularity=fields.number(metrics.get("popularity")),
            rating=fields.number(metrics.get("userScore")),
            vote_count=fields.integer(metrics.get("votes")),
            is_original=genres.original or "max-original" in fields.strings(attributes.get("badges")),
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(
                source_id,
                imdb=references.get("imdb"),
                tmdb=references.get("tmdb"),
                eidr=references.get("eidr"),
            ),
            offers=offers,
        )
