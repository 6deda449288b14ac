"""Demo listings in the raw shapes of the subscription services (documented in their normalizers)."""

from __future__ import annotations

from typing import Any

from media_gateway.ingestion.demo import listing as fmt
from media_gateway.ingestion.demo.listing import Listing


def netflix(listing: Listing) -> dict[str, Any]:
    movie = listing.movie
    return {
        "netflixId": int(listing.platform_id),
        "type": "movie",
        "title": listing.title,
        "originalTitle": movie.original_title,
        "releaseYear": listing.year,
        "synopsis": movie.overview,
        "runtimeSeconds": fmt.seconds(listing.runtime_minutes),
        "genres": [{"id": 1000 + sum(map(ord, g)), "name": g} for g in listing.genres],
        "tags": list(movie.keywords[:8]),
        "cast": [c.name for c in movie.cast],
        "directors": list(movie.directors),
        "netflixOriginal": listing.is_original,
        "tmdbId": listing.tmdb_id,
        "audience": {
            "score": round(movie.vote_average * 10) if listing.rated else None,
            "votes": movie.vote_count,
            "popularity": movie.popularity,
        },
        "countries": [
            {
                "country": o.region,
                "availableFrom": fmt.iso(o.since),
                "availableUntil": fmt.iso(o.until),
                "maxQuality": fmt.quality_code(o, "UHD", "HD", "SD"),
                "plans": ["standard_with_ads", "standard", "premium"]
                if o.kind == "ads"
                else ["standard", "premium"],
            }
            for o in listing.offers
        ],
    }


def disney_plus(listing: Listing) -> dict[str, Any]:
    movie = listing.movie
    return {
        "family": {"encodedFamilyId": listing.platform_id, "isDisneyPlusOriginal": listing.is_original},
        "programType": "movie",
        "text": {
            "title": {"full": {"default": listing.title}, "original": movie.original_title},
            "description": {"full": {"default": movie.overview}},
        },
        "releases": [
            {
                "releaseType": "theatrical",
                "releaseDate": fmt.iso(listing.release_date),
                "releaseYear": listing.year,
            }
        ],
        "mediaMetadata": {"runtimeMillis": fmt.seconds(listing.runtime_minutes, 1000)},
        "typedGenres": [{"name": g} for g in listing.genres],
        "tags": [{"type": "keyword", "value": k} for k in movie.keywords],
        "participants": {
            "Actor": [
                {"displayName": c.name, "characterDetails": {"character": c.character}, "sortOrder": c.order}
                for c in movie.cast
            ],
            "Director": [{"displayName": d} for d in movie.directors],
        },
        "externalIds": [{"source": "tmdb", "value": str(listing.tmdb_id)}] if listing.tmdb_id else [],
        "stats": {
            "starRating": movie.vote_average,
            "ratingCount": movie.vote_count,
            "trending": movie.popularity,
        }
        if listing.rated
        else {"trending": movie.popularity},
        "availability": [
            {
                "region": o.region,
                "appearsOn": fmt.iso_z(o.since, "08:00:00.000"),
                "expiresOn": fmt.iso_z(o.until, "08:00:00.000"),
                "plans": ["basic", "premium"] if o.kind == "basic" else ["premium"],
                "maxResolution": fmt.quality_code(o, "2160p", "1080p", "480p"),
            }
            for o in listing.offers
        ],
    }


def hbo_max(listing: Listing) -> dict[str, Any]:
    movie = listing.movie
    return {
        "id": listing.platform_id,
        "type": "feature",
        "attributes": {
            "name": listing.title,
            "originalName": movie.original_title,
            "description": movie.overview,
            "airDate": fmt.iso_z(listing.release_date),
            "runtimeSeconds": fmt.seconds(listing.runtime_minutes),
            "keywords": list(movie.keywords),
            "badges": ["max-original"] if listing.is_original else [],
        },
        "relationships": {
            "genres": [{"name": g} for g in listing.genres],
            "credits": [
                *(
                    {"role": "ACTOR", "name": c.name, "character": c.character, "ordinal": c.order}
                    for c in movie.cast
                ),
                *({"role": "DIRECTOR", "name": d} for d in movie.directors),
            ],
        },
        "references": {"tmdb": listing.tmdb_id} if listing.tmdb_id else {},
        "metrics": {
            "userScore": movie.vote_average if listing.rated else None,
            "votes": movie.vote_count,
            "popularity": movie.popularity,
        },
        "availability": [
            {
                "territory": o.region,
                "start": fmt.epoch(o.since),
                "end": fmt.epoch(o.until),
                "entitlement": o.kind,
                "quality": fmt.quality_code(o, "UHD", "HD", "SD"),
            }
            for o in listing.offers
        ],
    }


def hulu(listing: Listing) -> dict[str, Any]:
    movie = listing.movie
    runtime = listing.runtime_minutes
    genres = [*listing.genres, *(["Hulu Originals"] if listing.is_original else [])]
    return {
        "id": listing.platform_id,
        "eab_id": f"EAB::{listing.platform_id}::NULL::NULL",
        "type": "movie",
        "name": listing.title,
        "original_name": movie.original_title,
        "premiere_date": fmt.us_date(listing.release_date),
        "duration": None if runtime is None else f"{runtime // 60}:{runtime % 60:02d}:00",
        "description": movie.overview,
        "genres": "|".join(genres),
        "keywords": list(movie.keywords),
        "cast": [{"name": c.name, "role": c.character} for c in movie.cast],
        "directors": list(movie.directors),
        "external_ids": {"tmdb": str(listing.tmdb_id)} if listing.tmdb_id else {},
        "user_rating": {
            "average": fmt.half(movie.vote_average) if listing.rated else None,
            "count": movie.vote_count,
            "popularity": movie.popularity,
        },
        "availability": {
            o.region: {
                "start": fmt.us_date(o.since),
                "end": fmt.us_date(o.until),
                "package": o.kind,
                "quality": fmt.quality_code(o, "4k", "hd", "sd"),
            }
            for o in listing.offers
        },
    }


def paramount_plus(listing: Listing) -> dict[str, Any]:
    movie = listing.movie
    genres = [*listing.genres, *(["Paramount+ Originals"] if listing.is_original else [])]
    return {
        "contentId": listing.platform_id,
        "mediaType": "Movie",
        "title": listing.title,
        "originalTitle": movie.original_title,
        "pubDate": fmt.rfc2822(listing.release_date),
        "duration": fmt.seconds(listing.runtime_minutes),
        "description": movie.overview,
        "genre": genres[0] if genres else None,
        "subGenres": genres[1:],
        "tags": list(movie.keywords),
        "credits": {"cast": fmt.cast_dicts(listing), "director": list(movie.directors)},
        "tmdbId": str(listing.tmdb_id) if listing.tmdb_id else None,
        "audienceScore": {
            "value": round(movie.vote_average * 10) if listing.rated else None,
            "count": movie.vote_count,
            "trending": movie.popularity,
        },
        "availability": [
            {
                "country": o.region,
                "package": o.kind,
                "startDate": fmt.rfc2822(o.since),
                "endDate": fmt.rfc2822(o.until),
                "videoQuality": o.quality,
            }
            for o in listing.offers
        ],
    }


def peacock(listing: Listing) -> dict[str, Any]:
    movie = listing.movie
    genres = [*listing.genres, *(["Peacock Originals"] if listing.is_original else [])]
    return {
        "id": listing.platform_id,
        "type": "PROGRAMME",
        "attributes": {
            "title": listing.title,
            "titleOriginal": movie.original_title,
            "year": listing.year,
            "releaseDate": fmt.iso(listing.release_date),
            "durationMilliseconds": fmt.seconds(listing.runtime_minutes, 1000),
            "synopsisLong": movie.overview,
            "genres": [{"title": g} for g in genres],
            "tags": list(movie.keywords),
            "cast": [{"name": c.name, "character": c.character, "position": c.order + 1} for c in movie.cast],
            "directors": list(movie.directors),
            "externalIds": {"tmdb": str(listing.tmdb_id)} if listing.tmdb_id else {},
            "audience": {
                "rating": movie.vote_average if listing.rated else None,
                "ratings": movie.vote_count,
                "trend": movie.popularity,
            },
        },
        "offers": [
            {
                "territory": o.region,
                **({"entitlement": o.kind} if o.kind != "unspecified" else {}),
                "startDateTime": None if o.since is None else f"{o.since.isoformat()}T00:00:00+00:00",
                "endDateTime": None if o.until is None else f"{o.until.isoformat()}T00:00:00+00:00",
                "format": fmt.quality_code(o, "UHD", "HD", "SD"),
            }
            for o in listing.offers
        ],
    }
