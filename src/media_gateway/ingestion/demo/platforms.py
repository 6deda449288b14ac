"""The demo's platforms: where they operate, their packages and prices, and their genre labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from media_gateway.ingestion.demo import store_shapes, subscription_shapes
from media_gateway.ingestion.demo.listing import Listing

FREE_PLATFORM = "tubi"
CURRENCIES = {"US": "USD", "GB": "GBP", "CA": "CAD", "DE": "EUR", "ES": "EUR"}
RENT_PRICES = {
    "USD": ("3.99", "4.99", "5.99"),
    "GBP": ("3.49", "4.49", "5.49"),
    "CAD": ("4.99", "5.99", "6.99"),
    "EUR": ("3.99", "4.99", "5.99"),
}
BUY_PRICES = {
    "USD": ("9.99", "14.99", "19.99"),
    "GBP": ("7.99", "9.99", "13.99"),
    "CAD": ("12.99", "17.99", "24.99"),
    "EUR": ("9.99", "11.99", "13.99"),
}
CHANNEL_PRICES = {"USD": "8.99", "GBP": "6.99", "CAD": "9.99", "EUR": "7.99"}


@dataclass(frozen=True)
class Profile:
    weight: float
    regions: tuple[str, ...]  # the first is carried always, the others by chance
    # The platform's own package codes, weighted; "tvod" stands for a rent and a buy offer.
    packages: tuple[tuple[str, float], ...]
    labels: dict[str, str] = field(default_factory=dict)  # TMDB genre -> the platform's label
    affinity: dict[str, float] = field(default_factory=dict)  # TMDB genre -> weight factor
    originals: bool = True


PROFILES: dict[str, Profile] = {
    "netflix": Profile(
        1.6,
        ("US", "GB", "CA", "DE"),
        (("ads", 0.8), ("no_ads", 0.2)),
        {
            "Action": "Action & Adventure",
            "Adventure": "Action & Adventure",
            "Science Fiction": "Sci-Fi & Fantasy",
            "Fantasy": "Sci-Fi & Fantasy",
            "Comedy": "Comedies",
            "Drama": "Dramas",
            "Thriller": "Thrillers",
            "Horror": "Horror Movies",
            "Romance": "Romantic Movies",
            "Documentary": "Documentaries",
            "Family": "Children & Family Movies",
            "Crime": "Crime Movies",
            "Music": "Music & Musicals",
            "History": "Historical",
            "War": "Military & War",
            "Western": "Westerns",
            "Mystery": "Mysteries",
            "Foreign": "International Movies",
            "TV Movie": "TV Movies",
        },
    ),
    "prime_video": Profile(
        1.6,
        ("US", "GB", "CA", "DE"),
        (("prime", 0.5), ("prime+tvod", 0.2), ("tvod", 0.15), ("freevee", 0.08), ("mgmplus", 0.07)),
        {
            "Family": "Kids",
            "Thriller": "Suspense",
            "Music": "Music Videos and Concerts",
            "Foreign": "International",
            "TV Movie": "Made for TV",
        },
    ),
    "disney_plus": Profile(
        0.8,
        ("US", "GB", "CA", "DE"),
        (("basic", 0.9), ("premium", 0.1)),
        {
            "Action": "Action-Adventure",
            "Adventure": "Action-Adventure",
            "Science Fiction": "Sci-Fi",
            "Music": "Musicals",
            "Documentary": "Documentaries",
        },
        {"Animation": 6.0, "Family": 4.0, "Horror": 0.1},
    ),
    "hbo_max": Profile(
        1.0,
        ("US", "ES"),
        (("ads", 0.85), ("adfree", 0.1), ("ultimate", 0.05)),
        {"Science Fiction": "Sci-Fi & Fantasy", "Fantasy": "Sci-Fi & Fantasy", "Family": "Kids & Family"},
        {"Drama": 1.4, "Crime": 1.4},
    ),
    "hulu": Profile(
        1.0,
        ("US",),
        (("ads", 0.75), ("no_ads", 0.15), ("live_tv", 0.1)),
        {"Family": "Kids", "Documentary": "Documentaries", "Foreign": "International"},
        {"Comedy": 1.4, "Horror": 1.4},
    ),
    "apple_tv_plus": Profile(
        0.8,
        ("US", "GB", "CA", "DE"),
        # Apple TV+ streams only its own originals; everything else is rented or bought in the store.
        (("store", 1.0),),
        {
            "Action": "Action & Adventure",
            "Adventure": "Action & Adventure",
            "Science Fiction": "Sci-Fi & Fantasy",
            "Fantasy": "Sci-Fi & Fantasy",
            "Family": "Kids & Family",
        },
    ),
    "paramount_plus": Profile(
        0.9,
        ("US", "GB", "CA"),
        (("ads", 0.7), ("commercial_free", 0.15), ("showtime", 0.15)),
        {
            "Action": "Action & Adventure",
            "Adventure": "Action & Adventure",
            "Science Fiction": "Sci-Fi",
            "Documentary": "Documentaries",
        },
        {"Science Fiction": 1.5},
    ),
    "peacock": Profile(
        0.9,
        ("US",),
        (("premium", 0.6), ("premiumPlus", 0.15), ("free", 0.2), ("unspecified", 0.05)),
        {
            "Science Fiction": "Sci-Fi",
            "Family": "Kids Movies",
            "Action": "Action & Adventure",
            "Adventure": "Action & Adventure",
        },
    ),
    "youtube": Profile(
        0.8,
        ("US", "GB", "CA", "DE"),
        (("tvod", 0.85), ("ads", 0.15)),
        {
            "Action": "Action & Adventure",
            "Adventure": "Action & Adventure",
            "Science Fiction": "Sci-Fi",
            "Family": "Kids & Family",
            "Foreign": "Indie & Art House",
        },
        originals=False,
    ),
    FREE_PLATFORM: Profile(0.7, ("US", "CA"), (("ads", 1.0),), originals=False),
}

DEMO_PLATFORMS: tuple[str, ...] = tuple(PROFILES)

ENCODERS: dict[str, Callable[[Listing], dict[str, Any]]] = {
    "netflix": subscription_shapes.netflix,
    "prime_video": store_shapes.prime_video,
    "disney_plus": subscription_shapes.disney_plus,
    "hbo_max": subscription_shapes.hbo_max,
    "hulu": subscription_shapes.hulu,
    "apple_tv_plus": store_shapes.apple_tv_plus,
    "paramount_plus": subscription_shapes.paramount_plus,
    "peacock": subscription_shapes.peacock,
    "youtube": store_shapes.youtube,
    FREE_PLATFORM: store_shapes.generic,
}
