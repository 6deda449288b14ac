"""Disney+ catalog feed.

Raw shape (nested, localized text under `default`)::

    {"family": {"encodedFamilyId": "3ZCyd2SQJWTu", "isDisneyPlusOriginal": false},
     "programType": "movie" | "series",
     "text": {"title": {"full": {"default": "Toy Story"}, "original": "Toy Story"},
              "description": {"full": {"default": "..."}}},
     "releases": [{"releaseType": "theatrical", "releaseDate": "1995-10-30", "releaseYear": 1995}],
     "mediaMetadata": {"runtimeMillis": 4860000},
     "typedGenres": [{"name": "Animation"}, {"name": "Kids"}],
     "tags": [{"type": "keyword", "value": "toy"}],
     "participants": {"Actor": [{"displayName": "...", "characterDetails": {"character": "Woody"},
                                 "sortOrder": 0}],
                      "Director": [{"displayName": "John Lasseter"}]},
     "ratings": [{"region": "US", "system": "MPAA", "value": "G"}],
     "externalIds": [{"source": "imdb", "value": "tt0114709"}, {"source": "tmdb", "value": "862"}],
     "stats": {"starRating": 7.7, "ratingCount": 5415, "trending": 73.6},   # rating out of 10
     "availability": [{"region": "US", "appearsOn": "2019-11-12T08:00:00.000Z", "expiresOn": null,
                       "plans": ["basic", "premium"], "maxResolution": "2160p"}]}

Tier is the cheapest plan that carries the title: `basic` (with ads) when listed, else `premium`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import ContentKind, Monetization, NormalizedContent
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch, genre_table, originals

_KINDS = {"movie": ContentKind.MOVIE, "series": ContentKind.SERIES}


class DisneyPlusNormalizer(PlatformNormalizer):
    platform = "disney_plus"
    genre_rules = genre_table(
        {
            **originals("Disney+ Originals"),
            "Superhero": ("Action",),
            "Animals & Nature": ("Documentary",),
            "Musical": ("Music",),
        }
    )

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.text(fields.mapping(raw.get("family")).get("encodedFamilyId"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return fields.names(raw.get("typedGenres"), "name")

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        text = fields.mapping(raw.get("text"))
        title_text = fields.mapping(text.get("title"))
        title = self.require_title(fields.mapping(title_text.get("full")).get("default"))
        description = fields.mapping(fields.mapping(text.get("description")).get("full")).get("default")
        release = fields.mapping(next(iter(fields.items(raw.get("releases"))), None))
        released = fields.iso_date(release.get("releaseDate"))
        participants = fields.mapping(raw.get("participants"))
        actors = [
            {**actor, "character": fields.mapping(actor.get("characterDetails")).get("character")}
            for actor in map(fields.mapping, fields.items(participants.get("Actor")))
        ]
        ids = {
            fields.text(entry.get("source")): entry.get("value")
            for entry in map(fields.mapping, fields.items(raw.get("externalIds")))
        }
        stats = fields.mapping(raw.get("stats"))
        offers = []
        for entry in fields.items(raw.get("availability")):
            window = fields.mapping(entry)
            offers.append(
                self.offer(
                    source_id,
                    region=window.get("region"),
                    monetization=Monetization.SUBSCRIPTION,
                    tier="basic" if "basic" in fields.strings(window.get("plans")) else "premium",
                    quality=window.get("maxResolution"),
                    available_since=fields.iso_date(window.get("appearsOn")),
                    expires_on=fields.iso_date(window.get("expiresOn")),
                )
            )
        return NormalizedContent(
            kind=_KINDS[fields.text(raw.get("programType")) or "movie"],
            title=title,
            original_title=fields.text(title_text.get("original")),
            year=fields.integer(release.get("releaseYear")) or (released.year if released else None),
            release_date=released,
            runtime_minutes=fields.seconds_to_minutes(
                fields.mapping(raw.get("mediaMetadata")).get("runtimeMillis"), per_second=1000
            ),
            overview=fields.text(description),
            genres=list(genres.genres),
            keywords=[
                value
                for tag in map(fields.mapping, fields.items(raw.get("tags")))
                if tag.get("type") == "keyword" and (value := fields.text(tag.get("value")))
            ],
            cast=fields.cast_list(actors, name="displayName", character="character", order="sortOrder"),
            directors=fields.names(participants.get("Director"), "displayName"),
            certifications=fields.rating_list(raw.get("ratings"), region_key="region", value_key="value"),
            popularity=fields.number(stats.get("trending")),
            rating=fields.number(stats.get("starRating")),
            vote_count=fields.integer(stats.get("ratingCount")),
            is_original=genres.original
            or fields.mapping(raw.get("family")).get("isDisneyPlusOriginal") is True,
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(
                source_id, imdb=ids.get("imdb"), tmdb=ids.get("tmdb"), eidr=ids.get("eidr")
            ),
            offers=offers,
        )
