"""Demo listings in the raw shapes of the stores and free services (documented in their normalizers)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from media_gateway.ingestion.demo import listing as fmt
from media_gateway.ingestion.demo.listing import Listing

_PRIME_OFFER_TYPES = {"prime": "SVOD", "freevee": "AVOD", "rent": "TVOD_RENTAL", "buy": "TVOD_PURCHASE"}


def prime_video(listing: Listing) -> dict[str, Any]:
    movie = listing.movie
    marketplaces: dict[str, Any] = {}
    for o in listing.offers:
        offer: dict[str, Any] = {
            "offerType": _PRIME_OFFER_TYPES.get(o.kind, "CHANNEL"),
            "videoQuality": fmt.quality_code(o, "UHD", "HD", "SD"),
            "window": {"start": fmt.iso_z(o.since), "end": fmt.iso_z(o.until)},
        }
        if o.kind == "prime":
            offer["benefitId"] = "PRIME"
        elif o.kind == "freevee":
            offer["benefitId"] = "FREEVEE"
        elif o.kind not in ("rent", "buy"):
            offer["benefitId"] = o.kind
        if o.price is not None:
            offer["price"] = {"amountMinor": fmt.minor_units(o.price), "currency": o.currency}
        marketplaces.setdefault(o.region, {"offers": []})["offers"].append(offer)
    return {
        "gti": listing.platform_id,
        "contentType": "MOVIE",
        "titleInfo": {
            "title": listing.title,
            "originalTitle": movie.original_title,
            "releaseDate": fmt.iso_z(listing.release_date),
            "runtimeMinutes": listing.runtime_minutes,
            "synopsis": movie.overview,
        },
        "genres": list(listing.genres),
        "keywords": list(movie.keywords),
        "contributors": [
            *(
                {"name": c.name, "role": "Actor", "character": c.character, "billingOrder": c.order + 1}
                for c in movie.cast
            ),
            *({"name": d, "role": "Director"} for d in movie.directors),
        ],
        "externalIds": {"tmdb": str(listing.tmdb_id)} if listing.tmdb_id else {},
        "isAmazonOriginal": listing.is_original,
        "customerReviews": {"averageRating": fmt.half(movie.vote_average), "count": movie.vote_count}
        if listing.rated
        else None,
        "popularityScore": movie.popularity,
        "marketplaces": marketplaces,
    }


_SYMBOLS = {"USD": "${}", "GBP": "£{}", "CAD": "CA${}"}


def _formatted(price: Decimal, currency: str) -> str:
    if currency in _SYMBOLS:
        return _SYMBOLS[currency].format(price)
    return f"{str(price).replace('.', ',')} €"


def apple_tv_plus(listing: Listing) -> dict[str, Any]:
    movie = listing.movie
    storefronts: dict[str, Any] = {}
    for o in listing.offers:
        offer: dict[str, Any] = {
            "kind": o.kind,
            "videoQuality": o.quality,
            "startTime": fmt.epoch(o.since, 1000),
            "endTime": fmt.epoch(o.until, 1000),
        }
        if o.kind == "subscription":
            offer["channelId"] = "tvs.sbd.4000"
        if o.price is not None and o.currency is not None:
            offer["price"] = {"formatted": _formatted(o.price, o.currency), "currency": o.currency}
        storefronts.setdefault(o.region.lower(), {"offers": []})["offers"].append(offer)
    return {
        "id": listing.platform_id,
        "type": "Movie",
        "title": listing.title,
        "originalTitle": movie.original_title,
        "releaseDate": fmt.epoch(listing.release_date, 1000),
        "duration": fmt.seconds(listing.runtime_minutes),
        "description": movie.overview,
        "genres": [{"id": "umc.gnr." + g.lower().replace(" ", "-"), "name": g} for g in listing.genres],
        "keywords": list(movie.keywords),
        "roles": [
            *({"type": "Actor", "personName": c.name, "characterName": c.character} for c in movie.cast),
            *({"type": "Director", "personName": d} for d in movie.directors),
        ],
        "isAppleOriginal": listing.is_original,
        "storefronts": storefronts,
    }


_YOUTUBE_OFFER_TYPES = {"rent": "RENTAL", "buy": "PURCHASE", "ads": "FREE_WITH_ADS"}


def _iso_duration(minutes: int | None) -> str | None:
    if minutes is None:
        return None
    hours, rest = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest or not hours else "")


def youtube(listing: Listing) -> dict[str, Any]:
    movie = listing.movie
    genres = [*listing.genres, *(["YouTube Originals"] if listing.is_original else [])]
    return {
        "kind": "youtube#video",
        "id": listing.platform_id,
        "snippet": {
            "title": listing.title,
            "description": movie.overview,
            "publishedAt": fmt.iso_z(min(o.since for o in listing.offers)),
            "tags": list(movie.keywords),
            "categoryId": "30",
            "channelTitle": "YouTube Movies",
        },
        "contentDetails": {
            "duration": _iso_duration(listing.runtime_minutes),
            "definition": "hd",
            "contentRating": {},
        },
        "movie": {
            "originalTitle": movie.original_title,
            "releaseYear": listing.year,
            "releaseDate": fmt.iso(listing.release_date),
            "genres": genres,
            "cast": fmt.cast_dicts(listing),
            "directors": list(movie.directors),
            "tmdbId": str(listing.tmdb_id) if listing.tmdb_id else None,
            "rating": {"average": fmt.half(movie.vote_average), "count": movie.vote_count}
            if listing.rated
            else None,
            "trending": movie.popularity,
        },
        "offers": [
            {
                "regionCode": o.region,
                "offerType": _YOUTUBE_OFFER_TYPES[o.kind],
                **(
                    {"price": {"amountMicros": str(fmt.minor_units(o.price, 6)), "currencyCode": o.currency}}
                    if o.price is not None
                    else {}
                ),
                "resolution": fmt.quality_code(o, "UHD", "HD", "SD"),
                "availableFrom": fmt.iso_z(o.since),
                "availableUntil": fmt.iso_z(o.until),
            }
            for o in listing.offers
        ],
    }


def generic(listing: Listing) -> dict[str, Any]:
    """The aggregator shape, for a free ad-supported service (`tubi` in the demo)."""
    movie = listing.movie
    options: dict[str, list[dict[str, Any]]] = {}
    for o in listing.offers:
        options.setdefault(o.region.lower(), []).append(
            {
                "service": {"id": listing.platform},
                "type": o.kind,
                "link": f"https://tubitv.com/movies/{listing.platform_id}",
                "deepLink": f"tubitv://media-playback?video_id={listing.platform_id}",
                "quality": fmt.quality_code(o, "uhd", "hd", "sd"),
                "availableSince": fmt.epoch(o.since),
                "expiresOn": fmt.epoch(o.until),
            }
        )
    return {
        "id": listing.platform_id,
        "showType": "movie",
        "title": listing.title,
        "originalTitle": movie.original_title,
        "overview": movie.overview,
        "releaseYear": listing.year,
        "releaseDate": fmt.iso(listing.release_date),
        "runtime": listing.runtime_minutes,
        "genres": [{"id": g.lower().replace(" ", "-"), "name": g} for g in listing.genres],
        "keywords": list(movie.keywords),
        "cast": [c.name for c in movie.cast],
        "directors": list(movie.directors),
        "tmdbId": f"movie/{listing.tmdb_id}" if listing.tmdb_id else None,
        "rating": round(movie.vote_average * 10) if listing.rated else None,
        "voteCount": movie.vote_count,
        "popularity": movie.popularity,
        "streamingOptions": options,
    }
