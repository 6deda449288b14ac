"""A demo title as one platform lists it, and the value formats the platforms' feeds use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

from media_gateway.ingestion.datasets import TmdbMovie


@dataclass(frozen=True)
class DemoOffer:
    region: str
    kind: str  # the platform's own package or offer code
    quality: str  # SD, HD or 4K
    since: date
    until: date | None
    price: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Listing:
    """One title as one platform lists it; title, dates and ids may differ from the TMDB record."""

    platform: str
    platform_id: str
    movie: TmdbMovie
    title: str
    release_date: date | None
    year: int | None
    runtime_minutes: int | None
    with_tmdb_id: bool
    is_original: bool
    genres: tuple[str, ...]  # platform labels
    offers: tuple[DemoOffer, ...]

    @property
    def tmdb_id(self) -> int | None:
        return self.movie.tmdb_id if self.with_tmdb_id else None

    @property
    def rated(self) -> bool:
        return self.movie.vote_count > 0


def stamp(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), UTC)


def iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def iso_z(day: date | None, clock: str = "00:00:00") -> str | None:
    return None if day is None else f"{day.isoformat()}T{clock}Z"


def epoch(day: date | None, scale: int = 1) -> int | None:
    moment = stamp(day)
    return None if moment is None else int(moment.timestamp()) * scale


def us_date(day: date | None) -> str | None:
    return None if day is None else day.strftime("%m/%d/%Y")


def rfc2822(day: date | None) -> str | None:
    moment = stamp(day)
    return None if moment is None else format_datetime(moment, usegmt=True)


def seconds(minutes: int | None, scale: int = 1) -> int | None:
    return None if minutes is None else minutes * 60 * scale


def quality_code(offer: DemoOffer, uhd: str, hd: str, sd: str) -> str:
    return {"4K": uhd, "HD": hd, "SD": sd}[offer.quality]


def minor_units(price: Decimal | None, exponent: int = 2) -> int | None:
    return None if price is None else int(price.scaleb(exponent))


def half(value: float) -> float:
    return round(value / 2, 2)


def cast_dicts(listing: Listing) -> list[dict[str, Any]]:
    return [{"name": c.name, "character": c.character} for c in listing.movie.cast]
