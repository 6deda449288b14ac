"""Age ratings on one ladder, so "at most PG-13" can be checked against any region's rating.

Each rating maps to an age, on the same ordering as the auth service's parental-control levels
(TV-Y < G = TV-G = TV-Y7 < PG = TV-PG < PG-13 = TV-14 < R = TV-MA < NC-17), so that other
regions' ratings fit in too: the BBFC's U/PG/12A/15/18 and any rating that is an age ("16",
"FSK 16", "12+"). A title passes `max_certification` when its rating in the searched region (else
its US rating) is known and its age is at most the maximum's; an unknown or unrated title is
excluded, because a parent who sets a maximum means "only what I know to be suitable".
"""

from __future__ import annotations

import re
from typing import Final

NAMED_AGES: Final[dict[str, int]] = {
    "TV-Y": 0,
    "TV-Y7": 6,
    "TV-Y7-FV": 6,
    "G": 6,
    "TV-G": 6,
    "PG": 10,
    "TV-PG": 10,
    "PG-13": 14,
    "TV-14": 14,
    "R": 17,
    "TV-MA": 17,
    "NC-17": 18,
    "U": 6,
    "UC": 0,
    "12A": 12,
    "R18": 18,
    "ALL": 0,
    "AL": 0,
}
# The ratings a client may send as `max_certification` (the ones a user profile holds), mildest first.
LADDER: Final[tuple[str, ...]] = (
    "TV-Y",
    "TV-Y7",
    "G",
    "TV-G",
    "PG",
    "TV-PG",
    "PG-13",
    "TV-14",
    "R",
    "TV-MA",
    "NC-17",
)
# Whose rating counts when the searched region has none: the catalog's feeds mostly carry US ones.
FALLBACK_REGION: Final = "US"
_AGE = re.compile(r"^(?:[A-Z]+[ -]?)?(\d{1,2})\+?$")


def certification_age(rating: str | None) -> int | None:
    """The minimum age `rating` stands for; None when it is unknown (or "NR", "Unrated")."""
    if not rating:
        return None
    key = rating.strip().upper().replace("_", "-")
    if key in NAMED_AGES:
        return NAMED_AGES[key]
    match = _AGE.match(key)
    return int(match.group(1)) if match else None
