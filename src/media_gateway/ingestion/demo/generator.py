"""Which platforms carry which TMDB 5000 titles, where, how and when: deterministic demo availability.

Every choice is a hash of a fixed seed and the choice's name (never `random` or `hash()`), so the feeds
are the same on every run, machine and hash seed, and each title's choices do not depend on the others."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from media_gateway.ingestion.datasets import TmdbMovie
from media_gateway.ingestion.demo.listing import DemoOffer, Listing
from media_gateway.ingestion.demo.platforms import (
    BUY_PRICES,
    CHANNEL_PRICES,
    CURRENCIES,
    DEMO_PLATFORMS,
    ENCODERS,
    FREE_PLATFORM,
    PROFILES,
    RENT_PRICES,
)

_SEED = "media-gateway-demo-1"
MULTI_PLATFORM_SHARE = 0.34
NEW_WINDOW_DAYS = 14
LEAVING_WINDOW_DAYS = 14
T = TypeVar("T")


def _unit(*key: object) -> float:
    """A uniform number in [0, 1) fixed by `key`."""
    digest = hashlib.blake2b("|".join(map(str, (_SEED, *key))).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _chance(p: float, *key: object) -> bool:
    return _unit(*key) < p


def _pick(options: Sequence[T], *key: object) -> T:
    return options[int(_unit(*key) * len(options))]


def _weighted(options: Sequence[tuple[T, float]], *key: object) -> T:
    total = sum(w for _, w in options)
    point = _unit(*key) * total
    for option, weight in options:
        point -= weight
        if point < 0:
            return option
    return options[-1][0]


def _token(alphabet: str, length: int, *key: object) -> str:
    digest = hashlib.blake2b("|".join(map(str, (_SEED, "id", *key))).encode(), digest_size=32).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _platform_id(platform: str, tmdb_id: int, attempt: int) -> str:
    key = (platform, tmdb_id, attempt)
    as_uuid = str(uuid.UUID(bytes=hashlib.blake2b(repr(key).encode(), digest_size=16).digest(), version=4))
    if platform == "netflix":
        return str(60_000_000 + int(_unit("netflix-id", *key) * 22_000_000))
    if platform == "prime_video":
        return f"amzn1.dv.gti.{as_uuid}"
    if platform == "disney_plus":
        return _token(_BASE62, 12, *key)
    if platform == "apple_tv_plus":
        return "umc.cmc." + _token("0123456789abcdefghijklmnopqrstuvwxyz", 25, *key)
    if platform == "paramount_plus":
        return _token(_BASE62, 32, *key)
    if platform == "youtube":
        return _token(_BASE62 + "-_", 11, *key)
    if platform == FREE_PLATFORM:
        return str(100_000_000 + int(_unit("tubi-id", *key) * 900_000_000))
    return as_uuid


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def title_variants(title: str, year: int | None) -> list[str]:
    """How another platform might spell the same title."""
    variants: list[str] = []
    article = re.match(r"^(The|A|An) (.+)$", title)
    if article:
        variants.append(f"{article[2]}, {article[1]}")
    if ":" in title:
        variants.append(title.split(":", 1)[0].strip())
        variants.append(title.replace(": ", " - "))
    if _strip_accents(title) != title:
        variants.append(_strip_accents(title))
    if " & " in title:
        variants.append(title.replace(" & ", " and "))
    elif " and " in title:
        variants.append(title.replace(" and ", " & "))
    depunctuated = re.sub(r"[.'\u2019!?,]", "", title)
    if depunctuated != title and depunctuated.strip():
        variants.append(depunctuated)
    if year is not None:
        variants.append(f"{title} ({year})")
    variants.append(title.upper())
    return variants


def _shift_year(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _platforms_for(movie: TmdbMovie) -> list[str]:
    key = movie.tmdb_id

    def weights(excluded: list[str]) -> list[tuple[str, float]]:
        out = []
        for name, profile in PROFILES.items():
            if name in excluded:
                continue
            factor = 1.0
            for genre in movie.genres:
                factor *= profile.affinity.get(genre, 1.0)
            # Free services carry the back catalogue.
            if name == FREE_PLATFORM and (movie.year or 2000) >= 2005:
                factor *= 0.3
            out.append((name, profile.weight * factor))
        return out

    chosen = [_weighted(weights([]), "primary", key)]
    if _chance(MULTI_PLATFORM_SHARE, "multi", key):
        chosen.append(_weighted(weights(chosen), "second", key))
        if _chance(0.2, "third", key):
            chosen.append(_weighted(weights(chosen), "third", key))
    return chosen


def _quality(movie: TmdbMovie, *key: object) -> str:
    year = movie.year or 2000
    if year >= 2012 and _chance(0.5, "uhd", *key):
        return "4K"
    if year < 1980 and _chance(0.4, "sd", *key):
        return "SD"
    return "HD"


def _window(reference: date, *key: object) -> tuple[date, date | None]:
    since = reference - timedelta(days=NEW_WINDOW_DAYS + int(_unit("since", *key) * 1500))
    if _chance(0.06, "new", *key):
        since = reference - timedelta(days=int(_unit("new-day", *key) * NEW_WINDOW_DAYS))
    fate = _unit("expires", *key)
    if fate < 0.06:
        return since, reference + timedelta(days=1 + int(_unit("leaving-day", *key) * LEAVING_WINDOW_DAYS))
    if fate < 0.25:
        return since, reference + timedelta(days=30 + int(_unit("expiry-day", *key) * 330))
    return since, None


def _price(table: Mapping[str, tuple[str, ...]], currency: str, movie: TmdbMovie, *key: object) -> Decimal:
    prices = table[currency]
    # Recent releases sit in the upper price points.
    if (movie.year or 0) >= 2014:
        return Decimal(prices[-1] if _chance(0.6, "top", *key) else prices[-2])
    return Decimal(_pick(prices[:-1], "price", *key))


def _offers(platform: str, movie: TmdbMovie, original: bool, reference: date) -> tuple[DemoOffer, ...]:
    profile = PROFILES[platform]
    key = (platform, movie.tmdb_id)
    regions = [profile.regions[0], *(r for r in profile.regions[1:] if _chance(0.55, "region", r, *key))]
    offers: list[DemoOffer] = []
    for region in regions:
        currency = CURRENCIES[region]
        since, until = _window(reference, region, *key)
        quality = _quality(movie, region, *key)
        package = _weighted(profile.packages, "package", region, *key)
        kinds: list[str]
        if platform == "apple_tv_plus":
            kinds = ["subscription"] if original else ["rent", "buy"]
        elif platform == "youtube":
            kinds = ["rent", "buy"] if package == "tvod" else ["ads"]
        elif platform == "prime_video":
            kinds = {"prime+tvod": ["prime", "rent", "buy"], "tvod": ["rent", "buy"]}.get(package, [package])
        else:
            kinds = [package]
        for kind in kinds:
            price: Decimal | None = None
            if kind == "rent":
                price = _price(RENT_PRICES, currency, movie, "rent", region, *key)
            elif kind == "buy":
                price = _price(BUY_PRICES, currency, movie, "buy", region, *key)
            elif kind == "mgmplus":
                price = Decimal(CHANNEL_PRICES[currency])
            transactional = kind in ("rent", "buy")
            offers.append(
                DemoOffer(
                    region=region,
                    kind=kind,
                    quality=quality,
                    since=since,
                    until=None if transactional else until,
                    price=price,
                    currency=currency if price is not None else None,
                )
            )
    return tuple(offers)


def _labels(platform: str, movie: TmdbMovie) -> tuple[str, ...]:
    table = PROFILES[platform].labels
    labels = [table.get(g, g) for g in movie.genres]
    if platform == "paramount_plus":
        if "Star Trek" in movie.title:
            labels.append("Star Trek")
        if "Animation" in movie.genres and "Family" in movie.genres:
            labels = [x for x in labels if x not in ("Animation", "Family")] + ["Nickelodeon"]
    if platform == "peacock" and "Crime" in movie.genres and "Documentary" in movie.genres:
        labels = [x for x in labels if x not in ("Crime", "Documentary")] + ["True Crime"]
    return tuple(dict.fromkeys(labels))


def _listing(
    movie: TmdbMovie, platform: str, rank: int, platforms: int, reference: date, used: set[str]
) -> Listing:
    key = (platform, movie.tmdb_id)
    attempt = 0
    while (platform_id := _platform_id(platform, movie.tmdb_id, attempt)) in used:
        attempt += 1
    used.add(platform_id)
    title, released, runtime = movie.title, movie.release_date, movie.runtime_minutes
    with_tmdb_id = platform != "apple_tv_plus" and _chance(0.9, "tmdb", *key)
    if rank > 0:
        # Later platforms spell the title their own way, and some have other dates or no TMDB id.
        if released is not None and _chance(0.25, "year", *key):
            released = _shift_year(released, _pick((-1, 1), "year-shift", *key))
        if _chance(0.7, "retitle", *key):
            title = _pick(title_variants(title, released.year if released else None), "variant", *key)
        if runtime is not None and _chance(0.3, "runtime", *key):
            runtime = max(1, runtime + _pick((-2, -1, 1, 2), "runtime-shift", *key))
        with_tmdb_id = with_tmdb_id and _chance(0.5, "keep-tmdb", *key)
    original = (
        rank == 0
        and platforms == 1
        and PROFILES[platform].originals
        and (movie.year or 0) >= 2012
        and _chance(0.3, "original", *key)
    )
    return Listing(
        platform=platform,
        platform_id=platform_id,
        movie=movie,
        title=title,
        release_date=released,
        year=released.year if released else movie.year,
        runtime_minutes=runtime,
        with_tmdb_id=with_tmdb_id,
        is_original=original,
        genres=_labels(platform, movie),
        offers=_offers(platform, movie, original, reference),
    )


def generate_demo_feeds(
    movies: Sequence[TmdbMovie], reference_date: date | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Raw feed records per platform, each in that platform's own shape.

    Windows are placed relative to `reference_date` (default today): some titles arrived within the
    last two weeks, some leave within the next two."""
    reference = reference_date or date.today()
    feeds: dict[str, list[dict[str, Any]]] = {platform: [] for platform in DEMO_PLATFORMS}
    used: dict[str, set[str]] = {platform: set() for platform in DEMO_PLATFORMS}
    for movie in sorted(movies, key=lambda m: m.tmdb_id):
        platforms = _platforms_for(movie)
        for rank, platform in enumerate(platforms):
            listing = _listing(movie, platform, rank, len(platforms), reference, used[platform])
            feeds[platform].append(ENCODERS[platform](listing))
    return feeds
