"""The parental-control ladder: US certifications as the catalog stores them (`certifications["US"]`),
movies (MPA) and TV (TV Parental Guidelines) on one scale of increasing maturity."""

from __future__ import annotations

# Level of each rating; a user's `max_certification` allows everything at or below its level.
CERTIFICATION_LEVELS: dict[str, int] = {
    "TV-Y": 0,
    "TV-Y7": 1,
    "G": 1,
    "TV-G": 1,
    "PG": 2,
    "TV-PG": 2,
    "PG-13": 3,
    "TV-14": 3,
    "R": 4,
    "TV-MA": 4,
    "NC-17": 5,
}
CERTIFICATIONS: tuple[str, ...] = tuple(CERTIFICATION_LEVELS)


def allowed(certification: str | None, maximum: str | None) -> bool:
    """Whether content rated `certification` passes a `maximum`; unrated content passes only without one."""
    if maximum is None:
        return True
    if certification is None or certification.upper() not in CERTIFICATION_LEVELS:
        return False
    return CERTIFICATION_LEVELS[certification.upper()] <= CERTIFICATION_LEVELS[maximum]
