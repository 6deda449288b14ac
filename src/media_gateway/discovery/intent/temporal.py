"""Release years and runtime limits as people phrase them ("from the 90s", "after 2010", "recent",
"under 2 hours", "less than 90 minutes", "short")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from media_gateway.discovery.intent.schemas import MAX_RUNTIME_MINUTES, MIN_YEAR

# The films a query calls "short" or "recent" (DESIGN: "recent"/"new" is the last ~3 years).
SHORT_MOVIE_MINUTES: Final = 95
SHORT_FILM_MINUTES: Final = 40
RECENT_YEARS: Final = 3
OLD_YEARS: Final = 25
# A bare year further ahead than this is a number in a title ("Blade Runner 2049"), not a release.
FUTURE_YEARS: Final = 2

_NUMBER_WORDS: Final = {"a": 1.0, "an": 1.0, "one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0}
_NUM = r"\d{1,3}(?:[.,]\d{1,2})?|an?|one|two|three|four|five"
_HOURS = r"(?:h|hrs?|hours?)(?![\w])"
_MINUTES = r"(?:m|mins?|minutes?)(?![\w])"
_DURATION = (
    rf"(?:(?P<h>{_NUM}) ?-?{_HOURS}(?: ?(?:and )?(?:(?P<hm>\d{{1,2}}) ?{_MINUTES}|(?P<half>a half)))?"
    rf"|(?P<hh>half an? hour)|(?P<m>\d{{1,4}}) ?-?{_MINUTES}"
    rf"|(?P<hm_compact>\d)h(?P<mm_compact>[0-5]\d)(?![\w]))"
)
_LIMIT = (
    r"under|less than|shorter than|below|within|at most|no (?:longer|more) than|not (?:longer|more) than"
    r"|max(?:imum)?(?: of)?|up to|<=?"
)
RUNTIME_RE: Final = re.compile(
    rf"(?<![\w'])(?:(?:(?P<limit>{_LIMIT}) ?)?{_DURATION}"
    r"(?P<tail> (?:or (?:less|shorter|under)|max(?:imum)?|tops|at most))?"
    r"|(?P<short_film>short(?= films?(?![\w]))|shorts)|(?P<short>short(?:er)?|quick|brief))(?![\w'])"
)

_YEAR = r"(?:18[7-9]\d|19\d\d|20\d\d)"
_DECADE_WORDS: Final = {
    "twenties": 1920,
    "thirties": 1930,
    "forties": 1940,
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
}
_SPAN = (
    r"(?:the )?(?:(?:early|mid|late)[\s-]?)?(?:the )?"
    rf"(?:(?:18|19|20)\d0'?s|'?\d0'?s|{_YEAR}|{'|'.join(_DECADE_WORDS)})(?![\w'])"
)
_OPS = (
    r"after|since|post|newer than|later than|starting (?:in|from)|from|before|until|till|prior to"
    r"|older than|pre|up to|through|in|during|of|circa|around|made in|released in"
)
_NOT_NEW = r"york|zealand|orleans|jersey|mexico|delhi|england|hampshire|girl|amsterdam|world|game"
_RELATIVE = (
    rf"recent(?:ly)?(?: released)?|new(?:er|est| releases?)?(?! (?:{_NOT_NEW}))|latest|just released"
    r"|brand[\s-]new|this year|last year|(?:last|past) (?P<n>\d{1,2}|few|couple(?: of)?|two|three|five|ten)"
    r" years|(?:last|past) decade|(?<!year )(?<!years )(?<!year-)old(?:er|ies)?|classics?"
)
YEARS_RE: Final = re.compile(
    rf"(?<![\w'])(?:(?:between|from) (?P<a>{_SPAN}) ?(?:and|to|until|till|through|-) ?(?P<b>{_SPAN})"
    rf"|(?P<a2>{_SPAN}) ?(?:-|to|through) ?(?P<b2>{_SPAN})"
    rf"|(?P<op>{_OPS})[\s-](?P<s>{_SPAN})|(?P<bare>{_SPAN})|(?P<rel>{_RELATIVE}))(?![\w'])"
)
_SPAN_PARTS = re.compile(
    r"(?:the )?(?:(?P<part>early|mid|late)[\s-]?)?(?:the )?"
    r"(?:(?P<cen>18|19|20)(?P<dec>\d)0'?s|'?(?P<dec2>\d)0'?s"
    rf"|(?P<year>{_YEAR})|(?P<word>{'|'.join(_DECADE_WORDS)}))"
)
_FEW = {"few": 3, "couple": 2, "couple of": 2, "two": 2, "three": 3, "five": 5, "ten": 10}


@dataclass
class YearBounds:
    """Bounded spans ("the 90s", "2015") widen each other; open bounds ("after 2010") then narrow."""

    spans: list[tuple[int, int]]
    lowers: list[int]
    uppers: list[int]

    def resolve(self) -> tuple[int | None, int | None]:
        low: int | None = min(lo for lo, _ in self.spans) if self.spans else None
        high: int | None = max(hi for _, hi in self.spans) if self.spans else None
        if self.lowers:
            low = max([*self.lowers, *([low] if low is not None else [])])
        if self.uppers:
            high = min([*self.uppers, *([high] if high is not None else [])])
        if low is not None and high is not None and low > high:
            # Contradictory ("after 2010 from the 90s"): better no year filter than an empty result.
            return None, None
        return low, high


def span_years(text: str) -> tuple[int, int] | None:
    m = _SPAN_PARTS.fullmatch(text)
    if m is None:
        return None
    if m["year"]:
        return int(m["year"]), int(m["year"])
    if m["word"]:
        start = _DECADE_WORDS[m["word"]]
    elif m["cen"]:
        start = int(m["cen"]) * 100 + int(m["dec"]) * 10
    else:
        digit = int(m["dec2"])
        # "the 00s", "10s" and "20s" are this century; "30s".."90s" the last one.
        start = (2000 if digit <= 2 else 1900) + digit * 10
    part = m["part"]
    if part == "early":
        return start, start + 3
    if part == "mid":
        return start + 3, start + 6
    if part == "late":
        return start + 6, start + 9
    return start, start + 9


def years_from(m: re.Match[str], today: date) -> YearBounds | None:
    """The bounds one `YEARS_RE` match means, or None when it is not a plausible release year."""
    now = today.year
    latest = now + FUTURE_YEARS
    if m["rel"]:
        return _relative(m["rel"], m["n"], now)
    if m["a"] or m["a2"]:
        first = span_years(m["a"] or m["a2"])
        last = span_years(m["b"] or m["b2"])
        if first is None or last is None:
            return None
        low, high = min(first[0], last[0]), max(first[1], last[1])
        return YearBounds([(low, high)], [], []) if low >= MIN_YEAR and high <= latest else None
    span = span_years(m["s"] or m["bare"])
    if span is None or span[0] < MIN_YEAR or span[0] > latest:
        return None
    lo, hi = span[0], min(span[1], latest)
    op = m["op"] or ""
    if op in ("after", "post", "newer than", "later than"):
        return YearBounds([], [hi + 1], [])
    if op in ("since",) or op.startswith("starting"):
        return YearBounds([], [lo], [])
    if op in ("before", "prior to", "older than", "pre"):
        return YearBounds([], [], [lo - 1])
    if op in ("until", "till", "up to", "through"):
        return YearBounds([], [], [hi])
    if op in ("circa", "around"):
        return YearBounds([(lo - 2, hi + 2)], [], [])
    return YearBounds([(lo, hi)], [], [])


def _relative(phrase: str, n: str | None, now: int) -> YearBounds:
    if phrase == "this year":
        return YearBounds([(now, now)], [], [])
    if phrase == "last year":
        return YearBounds([(now - 1, now - 1)], [], [])
    if n is not None:
        count = int(n) if n.isdigit() else _FEW.get(n, RECENT_YEARS)
        return YearBounds([], [now - count], [])
    if phrase.endswith("decade"):
        return YearBounds([], [now - 10], [])
    if phrase.startswith(("old", "classic")):
        return YearBounds([], [], [now - OLD_YEARS])
    return YearBounds([], [now - RECENT_YEARS], [])


def runtime_from(m: re.Match[str]) -> int | None:
    """Minutes of one `RUNTIME_RE` match."""
    if not (m["limit"] or m["tail"] or m["short_film"] or m["short"]):
        # A bare duration ("a 2 hour movie") is a rough length, not a limit.
        return None
    if m["short_film"]:
        return SHORT_FILM_MINUTES
    if m["short"]:
        return SHORT_MOVIE_MINUTES
    if m["hh"]:
        return 30
    if m["hm_compact"]:
        return int(m["hm_compact"]) * 60 + int(m["mm_compact"])
    if m["m"]:
        minutes = int(m["m"])
    else:
        raw = m["h"]
        hours = _NUMBER_WORDS[raw] if raw in _NUMBER_WORDS else float(raw.replace(",", "."))
        minutes = round(hours * 60) + (int(m["hm"]) if m["hm"] else 0) + (30 if m["half"] else 0)
    return minutes if 1 <= minutes <= MAX_RUNTIME_MINUTES else None
