"""Platform genre labels onto the canonical taxonomy.

A label maps to zero or more canonical genres and may mark the title as a platform original. A label no
table knows is reported as unknown and dropped: a genre is never guessed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from media_gateway.catalog.genres import CANONICAL_GENRES, canonical_genre


@dataclass(frozen=True)
class GenreRule:
    genres: tuple[str, ...] = ()
    original: bool = False


@dataclass(frozen=True)
class GenreMatch:
    genres: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    original: bool = False


GenreTable = Mapping[str, GenreRule]


def fold(label: str) -> str:
    return " ".join(label.casefold().split())


def genre_table(entries: Mapping[str, tuple[str, ...] | GenreRule]) -> dict[str, GenreRule]:
    """A lookup table keyed by folded label; fails at import on a genre outside the taxonomy."""
    table: dict[str, GenreRule] = {}
    for label, target in entries.items():
        rule = target if isinstance(target, GenreRule) else GenreRule(genres=target)
        stray = [g for g in rule.genres if g not in CANONICAL_GENRES]
        if stray:
            raise ValueError(f"genre table entry {label!r} names non-canonical genres {stray}")
        table[fold(label)] = rule
    return table


def originals(*labels: str, genres: tuple[str, ...] = ()) -> dict[str, GenreRule]:
    """Entries for labels that only say "made by the platform"."""
    return {label: GenreRule(genres=genres, original=True) for label in labels}


# Labels several platforms share. A platform's own table is consulted first, so it can override these.
COMMON_GENRES: dict[str, GenreRule] = genre_table(
    {
        "Action & Adventure": ("Action", "Adventure"),
        "Action and Adventure": ("Action", "Adventure"),
        "Action-Adventure": ("Action", "Adventure"),
        "Sci-Fi": ("Science Fiction",),
        "SciFi": ("Science Fiction",),
        "Science-Fiction": ("Science Fiction",),
        "Sci-Fi & Fantasy": ("Science Fiction", "Fantasy"),
        "Science Fiction & Fantasy": ("Science Fiction", "Fantasy"),
        "True Crime": ("Crime", "Documentary"),
        "Comedies": ("Comedy",),
        "Stand-Up Comedy": ("Comedy",),
        "Dramas": ("Drama",),
        "Thrillers": ("Thriller",),
        "Suspense": ("Thriller",),
        "Mystery & Suspense": ("Mystery", "Thriller"),
        "Mysteries": ("Mystery",),
        "Horror Movies": ("Horror",),
        "Romantic Movies": ("Romance",),
        "Romantic Comedies": ("Romance", "Comedy"),
        "Documentaries": ("Documentary",),
        "Docuseries": ("Documentary",),
        "Kids": ("Family",),
        "Kids & Family": ("Family",),
        "Children & Family Movies": ("Family",),
        "Anime": ("Animation",),
        "Animated": ("Animation",),
        "Musicals": ("Music",),
        "Music & Musicals": ("Music",),
        "Sports": ("Sport",),
        "Sports Movies": ("Sport",),
        "Westerns": ("Western",),
        "Historical": ("History",),
        "Military & War": ("War",),
        "Military and War": ("War",),
        "War & Politics": ("War",),
        "Crime Movies": ("Crime",),
        "Reality TV": ("Reality",),
        "Talk Shows": ("Talk",),
        "Late Night": ("Talk",),
    }
)


def match_genres(labels: Iterable[str], table: GenreTable) -> GenreMatch:
    genres: list[str] = []
    unknown: list[str] = []
    original = False
    for label in labels:
        key = fold(label)
        if not key:
            continue
        rule = table.get(key) or COMMON_GENRES.get(key)
        if rule is None:
            canonical = canonical_genre(key)
            if canonical is None:
                unknown.append(label.strip())
                continue
            rule = GenreRule(genres=(canonical,))
        genres.extend(rule.genres)
        original = original or rule.original
    return GenreMatch(genres=tuple(dict.fromkeys(genres)), unknown=tuple(unknown), original=original)
