"""The one canonical genre taxonomy every platform's genres are mapped onto."""

from __future__ import annotations

CANONICAL_GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Music",
    "Mystery",
    "News",
    "Reality",
    "Romance",
    "Science Fiction",
    "Sport",
    "Talk",
    "Thriller",
    "War",
    "Western",
)

_BY_FOLDED = {g.casefold(): g for g in CANONICAL_GENRES}


def canonical_genre(name: str) -> str | None:
    """The canonical spelling of `name` if it already is a canonical genre, else None."""
    return _BY_FOLDED.get(name.strip().casefold())
