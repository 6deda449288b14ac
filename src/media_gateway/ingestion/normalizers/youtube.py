"""YouTube Movies catalog feed.

Raw shape (a YouTube Data API `video` resource plus `movie` and `offers` blocks)::

    {"kind": "youtube#video", "id": "x9Ab3_dEfGh",
     "snippet": {"title": "...", "description": "...", "publishedAt": "2019-03-01T08:00:00Z",
                 "tags": ["..."], "categoryId": "30", "channelTitle": "YouTube Movies"},
     "contentDetails": {"duration": "PT2H42M", "definition": "hd",
                        "contentRating": {"mpaaRating": "mpaaPg13", "bbfcRating": "bbfc12a"}},
     "movie": {"originalTitle": "...", "releaseYear": 2009, "releaseDate": "2009-12-10",
               "genres": ["Action & Adventure"], "cast": [{"name": "...", "character": "..."}],
               "directors": ["..."], "imdbId": "tt...", "tmdbId": "19995",
               "rating": {"average": 3.6, "count": 11800}, "trending": 150.4},   # out of 5
     "offers": [{"regionCode": "US", "offerType": "RENTAL" | "PURCHASE" | "FREE_WITH_ADS",
                 "price": {"amountMicros": "3990000", "currencyCode": "USD"}, "resolution": "HD",
                 "availableFrom": "2024-05-01T00:00:00Z", "availableUntil": null}]}

Prices are in micros. `publishedAt` is the upload time, not the release, so it is not used. YouTube has
no subscription tiers here: rentals, purchases and free-with-ads titles carry none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import Monetization, NormalizedContent
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch, genre_table, originals

_MONETIZATION = {
    "RENTAL": Monetization.RENT,
    "PURCHASE": Monetization.BUY,
    "FREE_WITH_ADS": Monetization.ADS,
    "FREE": Monetization.FREE,
}
# contentRating keys and values of the Data API, as (region, certification).
_RATING_REGIONS = {"mpaaRating": "US", "bbfcRating": "GB", "fskRating": "DE", "chvrsRating": "CA"}
_RATINGS = {
    **{f"mpaa{k}": v for k, v in {"G": "G", "Pg": "PG", "Pg13": "PG-13", "R": "R", "Nc17": "NC-17"}.items()},
    **{
        f"bbfc{k}": v
        for k, v in {"U": "U", "Pg": "PG", "12a": "12A", "12": "12", "15": "15", "18": "18"}.items()
    },
    **{f"fsk{k}": k for k in ("0", "6", "12", "16", "18")},
    **{f"chvrs{k}": v for k, v in {"G": "G", "Pg": "PG", "14a": "14A", "18a": "18A", "R": "R"}.items()},
}


class YouTubeNormalizer(PlatformNormalizer):
    platform = "youtube"
    genre_rules = genre_table(originals("YouTube Originals"))

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.text(raw.get("id"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return fields.strings(fields.mapping(raw.get("movie")).get("genres"))

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        snippet = fields.mapping(raw.get("snippet"))
        title = self.require_title(snippet.get("title"))
        details = fields.mapping(raw.get("contentDetails"))
        movie = fields.mapping(raw.get("movie"))
        released = fields.iso_date(movie.get("releaseDate"))
        rating = fields.mapping(movie.get("rating"))
        offers = []
        for entry in fields.items(raw.get("offers")):
            offer = fields.mapping(entry)
            monetization = _MONETIZATION.get(fields.text(offer.get("offerType")) or "")
            if monetization is None:
                continue
            price = fields.mapping(offer.get("price"))
            micros = fields.minor_units(price.get("amountMicros"), exponent=6)
            offers.append(
                self.offer(
                    source_id,
                    region=offer.get("regionCode"),
                    monetization=monetization,
                    price=None if micros is None else micros.normalize(),
                    currency=price.get("currencyCode"),
                    quality=offer.get("resolution") or details.get("definition"),
                    available_since=fields.iso_date(offer.get("availableFrom")),
                    expires_on=fields.iso_date(offer.get("availableUntil")),
                )
            )
        return NormalizedContent(
            title=title,
            original_title=fields.text(movie.get("originalTitle")),
            year=fields.integer(movie.get("releaseYear")) or (released.year if released else None),
            release_date=released,
            runtime_minutes=fields.iso_duration_minutes(details.get("duration")),
            overview=fields.text(snippet.get("description")),
            genres=list(genres.genres),
            keywords=fields.strings(snippet.get("tags")),
            cast=fields.cast_list(
                fields.items(movie.get("cast")), name="name", character="character", order=None
            ),
            directors=fields.strings(movie.get("directors")),
            certifications={
                _RATING_REGIONS[key]: _RATINGS[value]
                for key, value in fields.mapping(details.get("contentRating")).items()
                if key in _RATING_REGIONS and value in _RATINGS
            },
            popularity=fields.number(movie.get("trending")),
            rating=fields.rescale(rating.get("average"), 5),
            vote_count=fields.integer(rating.get("count")),
            is_original=genres.original,
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(source_id, imdb=movie.get("imdbId"), tmdb=movie.get("tmdbId")),
            offers=offers,
        )
