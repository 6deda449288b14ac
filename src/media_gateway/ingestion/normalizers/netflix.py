"""Netflix catalog feed.

Raw shape (camelCase, one object per title)::

    {"netflixId": 80117401, "type": "movie" | "show", "title": "...", "originalTitle": "...",
     "releaseYear": 2009, "synopsis": "...", "runtimeSeconds": 9720,
     "genres": [{"id": 1365, "name": "Action & Adventure"}], "tags": ["Visually Striking"],
     "cast": ["Sam Worthington", ...], "directors": ["James Cameron"],
     "maturity": {"US": "PG-13", "GB": "12"}, "netflixOriginal": false,
     "imdbId": "tt0499549", "tmdbId": 19995,
     "audience": {"score": 72, "votes": 11800, "popularity": 150.4},   # score out of 100
     "boxArt": "https://...",
     "countries": [{"country": "US", "availableFrom": "2024-05-01", "availableUntil": null,
                    "maxQuality": "UHD", "plans": ["standard_with_ads", "standard", "premium"]}]}

Only the release year is published. Every offer is a subscription; its tier is the cheapest plan that
carries the title (`standard-with-ads` when the ad plan does, else `standard`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import ContentKind, Monetization, NormalizedContent
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch, genre_table, originals

_KINDS = {"movie": ContentKind.MOVIE, "show": ContentKind.SERIES}


class NetflixNormalizer(PlatformNormalizer):
    platform = "netflix"
    genre_rules = genre_table(
        {
            **originals("Netflix Originals"),
            "Anime Features": ("Animation",),
            "Crime Thrillers": ("Crime", "Thriller"),
            "Sci-Fi Thrillers": ("Science Fiction", "Thriller"),
            "Romantic Dramas": ("Romance", "Drama"),
            "Family Features": ("Family",),
        }
    )

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.ident(raw.get("netflixId"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return fields.names(raw.get("genres"), "name")

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        title = self.require_title(raw.get("title"))
        audience = fields.mapping(raw.get("audience"))
        art = fields.text(raw.get("boxArt"))
        offers = []
        for entry in fields.items(raw.get("countries")):
            country = fields.mapping(entry)
            plans = fields.strings(country.get("plans"))
            offers.append(
                self.offer(
                    source_id,
                    region=country.get("country"),
                    monetization=Monetization.SUBSCRIPTION,
                    tier="standard-with-ads" if "standard_with_ads" in plans else "standard",
                    quality=country.get("maxQuality"),
                    available_since=fields.iso_date(country.get("availableFrom")),
                    expires_on=fields.iso_date(country.get("availableUntil")),
                )
            )
        return NormalizedContent(
            kind=_KINDS[fields.text(raw.get("type")) or "movie"],
            title=title,
            original_title=fields.text(raw.get("originalTitle")),
            year=fields.integer(raw.get("releaseYear")),
            runtime_minutes=fields.seconds_to_minutes(raw.get("runtimeSeconds")),
            overview=fields.text(raw.get("synopsis")),
            genres=list(genres.genres),
            keywords=fields.strings(raw.get("tags")),
            cast=fields.cast_list(fields.items(raw.get("cast")), name="name", character=None, order=None),
            directors=fields.strings(raw.get("directors")),
            certifications=fields.regional(raw.get("maturity")),
            popularity=fields.number(audience.get("popularity")),
            rating=fields.rescale(audience.get("score"), 100),
            vote_count=fields.integer(audience.get("votes")),
            images={"poster": art} if art else {},
            is_original=genres.original or raw.get("netflixOriginal") is True,
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(source_id, imdb=raw.get("imdbId"), tmdb=raw.get("tmdbId")),
            offers=offers,
        )
