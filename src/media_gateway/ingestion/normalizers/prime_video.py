"""Prime Video catalog feed.

Raw shape (one object per title, offers per marketplace)::

    {"gti": "amzn1.dv.gti.4ab0f7...", "contentType": "MOVIE" | "SERIES",
     "titleInfo": {"title": "...", "originalTitle": "...", "releaseDate": "2009-12-10T00:00:00Z",
                   "runtimeMinutes": 162, "synopsis": "..."},
     "genres": ["Action", "Science Fiction"], "keywords": ["alien", ...],
     "contributors": [{"name": "...", "role": "Actor", "character": "...", "billingOrder": 1},
                      {"name": "...", "role": "Director"}],
     "externalIds": {"imdb": "tt...", "tmdb": "19995", "eidr": "10.5240/..."},
     "isAmazonOriginal": false,
     "customerReviews": {"averageRating": 3.6, "count": 11800},    # stars out of 5
     "popularityScore": 150.4,
     "marketplaces": {"US": {"contentRating": "13+", "offers": [
         {"offerType": "SVOD", "benefitId": "PRIME", "videoQuality": "UHD",
          "window": {"start": "2024-05-01T00:00:00Z", "end": null}},
         {"offerType": "TVOD_RENTAL", "videoQuality": "HD",
          "price": {"amountMinor": 399, "currency": "USD"}, "window": {...}},
         {"offerType": "TVOD_PURCHASE", ...},
         {"offerType": "CHANNEL", "benefitId": "paramountplus", "price": {...}},   # add-on channel
         {"offerType": "AVOD", "benefitId": "FREEVEE"}]}}}

Prices are in minor units. Tiers: SVOD → `prime`, AVOD → `freevee`, a channel → its benefit id; rentals
and purchases have none. Offer types this normalizer does not know are skipped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from media_gateway.catalog.schemas import ContentKind, Monetization, NormalizedContent, OfferIn
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.base import PlatformNormalizer
from media_gateway.ingestion.normalizers.genres import GenreMatch, genre_table, originals

_KINDS = {"MOVIE": ContentKind.MOVIE, "SERIES": ContentKind.SERIES}
_MONETIZATION = {
    "SVOD": Monetization.SUBSCRIPTION,
    "AVOD": Monetization.ADS,
    "CHANNEL": Monetization.ADDON,
    "TVOD_RENTAL": Monetization.RENT,
    "TVOD_PURCHASE": Monetization.BUY,
}


class PrimeVideoNormalizer(PlatformNormalizer):
    platform = "prime_video"
    genre_rules = genre_table(
        {
            **originals("Amazon Originals", "Amazon Original"),
            "Arts, Entertainment, and Culture": ("Documentary",),
            "Special Interest": ("Documentary",),
            "Music Videos and Concerts": ("Music",),
        }
    )

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return fields.text(raw.get("gti"))

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return fields.strings(raw.get("genres"))

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        info = fields.mapping(raw.get("titleInfo"))
        title = self.require_title(info.get("title"))
        released = fields.iso_date(info.get("releaseDate"))
        actors, directors = [], []
        for entry in fields.items(raw.get("contributors")):
            person = fields.mapping(entry)
            role = fields.text(person.get("role"))
            if role == "Actor":
                actors.append(person)
            elif role == "Director" and (name := fields.text(person.get("name"))):
                directors.append(name)
        offers: list[OfferIn] = []
        certifications: dict[str, str] = {}
        for region, value in fields.mapping(raw.get("marketplaces")).items():
            market = fields.mapping(value)
            if rating := fields.text(market.get("contentRating")):
                certifications[region.upper()] = rating
            offers.extend(self._offers(source_id, region, market))
        ids = fields.mapping(raw.get("externalIds"))
        reviews = fields.mapping(raw.get("customerReviews"))
        return NormalizedContent(
            kind=_KINDS[fields.text(raw.get("contentType")) or "MOVIE"],
            title=title,
            original_title=fields.text(info.get("originalTitle")),
            year=released.year if released else None,
            release_date=released,
            runtime_minutes=fields.integer(info.get("runtimeMinutes")),
            overview=fields.text(info.get("synopsis")),
            genres=list(genres.genres),
            keywords=fields.strings(raw.get("keywords")),
            cast=fields.cast_list(actors, name="name", character="character", order="billingOrder"),
            directors=directors,
            certifications=certifications,
            popularity=fields.number(raw.get("popularityScore")),
            rating=fields.rescale(reviews.get("averageRating"), 5),
            vote_count=fields.integer(reviews.get("count")),
            is_original=genres.original or raw.get("isAmazonOriginal") is True,
            source_platform=self.platform,
            source_id=source_id,
            external_ids=self.external_ids(
                source_id, imdb=ids.get("imdb"), tmdb=ids.get("tmdb"), eidr=ids.get("eidr")
            ),
            offers=offers,
        )

    def _offers(self, source_id: str, region: str, market: Mapping[str, Any]) -> list[OfferIn]:
        offers = []
        for entry in fields.items(market.get("offers")):
            offer = fields.mapping(entry)
            kind = fields.text(offer.get("offerType")) or ""
            monetization = _MONETIZATION.get(kind)
            if monetization is None:
                continue
            benefit = fields.text(offer.get("benefitId"))
            tier = {"SVOD": "prime", "AVOD": "freevee"}.get(kind)
            if kind == "CHANNEL":
                tier = benefit.lower() if benefit else None
            price = fields.mapping(offer.get("price"))
            window = fields.mapping(offer.get("window"))
            offers.append(
                self.offer(
                    source_id,
                    region=region,
                    monetization=monetization,
                    tier=tier,
                    price=fields.minor_units(price.get("amountMinor")),
                    currency=price.get("currency"),
                    quality=offer.get("videoQuality"),
                    available_since=fields.iso_date(window.get("start")),
                    expires_on=fields.iso_date(window.get("end")),
                )
            )
        return offers
