"""One realistic raw record per platform, in that platform's own shape (`samples/<platform>.json`), and
ways to damage it.

Every sample describes the same film (Avatar) with a US offer and one more region, so tests can compare
the canonical result across platforms."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media_gateway.catalog.schemas import Monetization, NormalizedContent, OfferIn
from media_gateway.ingestion.normalizers import RecordRejected, get_normalizer

Record = dict[str, Any]

SYNOPSIS = "A paraplegic Marine dispatched to the moon Pandora becomes torn between orders and his new home."
_DIR = Path(__file__).parent / "samples"

# Where each shape keeps its id and title, and how it lists genre labels.
_ID_PATHS: dict[str, tuple[str, ...]] = {
    "netflix": ("netflixId",),
    "prime_video": ("gti",),
    "disney_plus": ("family", "encodedFamilyId"),
    "hbo_max": ("id",),
    "hulu": ("id",),
    "apple_tv_plus": ("id",),
    "paramount_plus": ("contentId",),
    "peacock": ("id",),
    "youtube": ("id",),
    "tubi": ("id",),
}
_TITLE_PATHS: dict[str, tuple[str, ...]] = {
    "netflix": ("title",),
    "prime_video": ("titleInfo", "title"),
    "disney_plus": ("text", "title", "full", "default"),
    "hbo_max": ("attributes", "name"),
    "hulu": ("name",),
    "apple_tv_plus": ("title",),
    "paramount_plus": ("title",),
    "peacock": ("attributes", "title"),
    "youtube": ("snippet", "title"),
    "tubi": ("title",),
}
_GENRE_WRITERS: dict[str, Callable[[Record, list[str]], None]] = {
    "netflix": lambda r, g: r.__setitem__("genres", [{"id": i, "name": n} for i, n in enumerate(g)]),
    "prime_video": lambda r, g: r.__setitem__("genres", list(g)),
    "disney_plus": lambda r, g: r.__setitem__("typedGenres", [{"name": n} for n in g]),
    "hbo_max": lambda r, g: r["relationships"].__setitem__("genres", [{"name": n} for n in g]),
    "hulu": lambda r, g: r.__setitem__("genres", "|".join(g)),
    "apple_tv_plus": lambda r, g: r.__setitem__(
        "genres", [{"id": f"g{i}", "name": n} for i, n in enumerate(g)]
    ),
    "paramount_plus": lambda r, g: r.update(genre=g[0] if g else None, subGenres=g[1:]),
    "peacock": lambda r, g: r["attributes"].__setitem__("genres", [{"title": n} for n in g]),
    "youtube": lambda r, g: r["movie"].__setitem__("genres", list(g)),
    "tubi": lambda r, g: r.__setitem__("genres", [{"id": n.lower(), "name": n} for n in g]),
}

PLATFORMS: tuple[str, ...] = tuple(_ID_PATHS)


@functools.cache
def _load(platform: str) -> Record:
    loaded: Record = json.loads((_DIR / f"{platform}.json").read_text(encoding="utf-8"))
    return loaded


def sample(platform: str) -> Record:
    return copy.deepcopy(_load(platform))


def _parent(record: Record, path: tuple[str, ...]) -> Record:
    node = record
    for key in path[:-1]:
        node = node[key]
    return node


def set_id(record: Record, platform: str, value: Any) -> Record:
    _parent(record, _ID_PATHS[platform])[_ID_PATHS[platform][-1]] = value
    return record


def set_title(record: Record, platform: str, value: Any) -> Record:
    _parent(record, _TITLE_PATHS[platform])[_TITLE_PATHS[platform][-1]] = value
    return record


def set_genres(record: Record, platform: str, labels: list[str]) -> Record:
    _GENRE_WRITERS[platform](record, labels)
    return record


def with_genres(platform: str, labels: list[str]) -> Record:
    return set_genres(sample(platform), platform, labels)


def normalize(platform: str, record: Record) -> NormalizedContent:
    return get_normalizer(platform).normalize(record)


def offers(content: NormalizedContent) -> dict[tuple[str, Monetization], OfferIn]:
    return {(o.region, o.monetization): o for o in content.offers}


def summary(offer: OfferIn) -> tuple[Any, ...]:
    """What an offer says besides where it is: tier, price, currency, quality and window."""
    return (offer.tier, offer.price, offer.currency, offer.quality, offer.available_since, offer.expires_on)


def rejection(platform: str, record: Record) -> str:
    with pytest.raises(RecordRejected) as raised:
        normalize(platform, record)
    return raised.value.reason
