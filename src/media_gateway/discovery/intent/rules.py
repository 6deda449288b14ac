"""The offline intent parser: regular expressions over the normalized query, no I/O.

Extractors run in a fixed order and each cuts what it understood out of a working copy of the query,
so later ones cannot re-read it ("like Mad Max" is a title, not the "max" platform) and whatever is
left at the end is the residual keywords. Confidence is the share of meaningful words understood.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final, TypeVar

from media_gateway.catalog.schemas import Monetization
from media_gateway.discovery.intent import temporal
from media_gateway.discovery.intent.schemas import Intent, ReferencedTitle
from media_gateway.discovery.intent.vocabulary import (
    CONCEPTS,
    MONETIZATION,
    NOT_NAMES,
    PLATFORM_NAMES,
    PLATFORMS_TABLE,
    SMALL_TITLE_WORDS,
    STOPWORDS,
    PhraseTable,
    words,
)

V = TypeVar("V")

# The discovery API refuses longer queries; this bounds the work (and the LLM prompt) on direct calls.
MAX_QUERY_CHARS: Final = 500
MAX_KEYWORDS: Final = 20
# Longer "words" are noise (pasted hashes, runs of one letter); no catalog keyword is that long.
MAX_KEYWORD_CHARS: Final = 40
_CUT = " , "
_TYPOGRAPHY = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)
_WORD = re.compile(r"[^\W_](?:[\w'+.-]*[^\W_])?\+?")

_TITLE_MARKER = re.compile(
    r"(?<![\w'])(?:similar to|like|such as|in the (?:style|vein|spirit) of|reminiscent of"
    r"|along the lines of|same vibe as|vibes? (?:of|like)|(?:for )?fans of"
    r"|if (?:i|you) (?:liked|loved|enjoyed)|comparable to|akin to) +"
)
# Words before "like" that make it the verb ("i'd like a comedy", "looks like fun").
_VERB_LIKE: Final = words(
    "i i'd id we you they he she would really do don't dont also kids might may will feel feels "
    "look looks sound sounds seem seems just not i'll we'd"
)
_PEOPLE_MARKER = re.compile(
    r"(?<![\w'])(?:(?P<strong>starring|featuring|feat\.?|ft\.|with (?:the )?(?:actors?|actress(?:es)?)"
    r"|directed by|written by|narrated by|produced by|created by|(?:from|by) (?:the )?directors?|directors?"
    r"|(?<!inspired )(?<!based )(?<!made )(?<!stand )by)|(?P<weak>with)) +"
)
# Where a title or a name stops: the start of another part of the request.
_END = re.compile(
    r" ?[;!?()\[\]{}\"]|\.(?: |$)"
    r"| (?:but|that|which|except|without|starring|featuring|feat|directed|written|released|streaming"
    r"|available|rated|whose|yet|though|although|because|if|when|while|about|please|tonight|set in"
    r"|to (?:rent|buy|watch|stream)|for (?:free|rent)|free)(?![\w'])"
    rf"| (?:on|via|at|in|from) (?:{PLATFORM_NAMES}|tv|my)(?![\w+])"
    r"| with(?! the(?![\w']))"
    r"| (?:under|less than|shorter than|longer than|over|below|within|at most|max(?:imum)?|up to"
    r"|no (?:longer|more) than) (?:\d|an? hour|one|two|three|half)"
    r"| (?:from|in|after|before|since|until|between|during|circa|made in|released in|pre|post)"
    r"[ -](?:the )?(?:early |mid |late )?'?\d"
    r"| (?:for|with) (?:kids|children|the (?:whole )?family|family|adults|teens|date night|a date|my )"
    r"| in (?:english|spanish|french|german|japanese|korean|italian|hindi)(?![\w'])"
)
_LIST_SPLIT = re.compile(r",? (?:and|or|&|nor|plus) |, ")
_LEADING_KIND = re.compile(r"^(?:the )?(?:movie|film|show|series|tv show|tv series) (?=\S)")


def normalize_query(query: str) -> str:
    """Trimmed, case-folded, whitespace-collapsed; compatibility forms and control characters folded
    too, so queries that read the same share one cache key."""
    text = unicodedata.normalize("NFKC", query).translate(_TYPOGRAPHY).casefold()
    text = " ".join("".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text).split())
    if len(text) > MAX_QUERY_CHARS:
        cut = text[: MAX_QUERY_CHARS + 1]
        # At a word boundary, so no half word is left to be misread as a name or a title.
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut[:MAX_QUERY_CHARS]
    return text


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w not in STOPWORDS]


def smart_title(text: str) -> str:
    """Display casing for a folded title or name ("the lord of the rings" -> "The Lord of the Rings")."""
    words = text.split()
    out = []
    for i, word in enumerate(words):
        if re.fullmatch(r"[ivx]+", word) and i > 0:
            out.append(word.upper())
        elif i > 0 and word in SMALL_TITLE_WORDS:
            out.append(word)
        else:
            out.append(word[:1].upper() + word[1:])
    return " ".join(out)


@dataclass
class _Work:
    text: str
    understood: float = 0.0
    facts: dict[str, list[object]] = field(default_factory=dict)

    def cut(self, start: int, end: int, weight: float = 1.0) -> None:
        self.understood += weight * len(_content_words(self.text[start:end]))
        self.text = self.text[:start] + _CUT + self.text[end:]


def _is_vocabulary(word: str) -> bool:
    return word in STOPWORDS or bool(CONCEPTS.find(word))


def _segment(text: str) -> str:
    """The list that starts `text` (titles or names), up to where the next part of the request begins."""
    end = _END.search(text)
    segment = text[: end.start()] if end else text
    pieces = segment.split(", ")
    # "like A, B and C" is a list; "like A, under 2 hours" ended at the comma.
    if len(pieces) > 1 and not re.search(r" (?:and|or|&|nor) ", pieces[-1]):
        return pieces[0]
    return segment


def _clean_title(piece: str) -> str | None:
    piece = _LEADING_KIND.sub("", piece.strip(" '\"-.,:"))
    words = piece.split()
    if not words or len(words) > 10 or not any(ch.isalnum() for ch in piece):
        return None
    meaningful = [w for w in words if w not in STOPWORDS]
    if not meaningful:
        return None
    # "like horror movies" or "like a dark comedy" describes, it does not name; one bare word
    # ("like alien") is let through, as many titles are single common words.
    if len(words) > 1 and all(_is_vocabulary(w) for w in words):
        return None
    return piece


class RuleBasedIntentParser:
    """Deterministic and offline; `today` pins "recent" and "this year" (tests inject a fixed date)."""

    def __init__(self, *, today: Callable[[], date] | None = None) -> None:
        self._today = today or (lambda: datetime.now(UTC).date())

    def parse(self, query: str) -> Intent:
        work = _Work(normalize_query(query))
        titles = self._titles(work)
        people = self._people(work)
        runtime = self._runtime(work)
        year_from, year_to = self._years(work)
        platforms = self._table(work, PLATFORMS_TABLE)
        monetization = [m for ms in self._table(work, MONETIZATION) for m in ms]
        concepts = self._table(work, CONCEPTS)
        kinds = {c.kind for c in concepts if c.kind is not None}
        keywords = list(dict.fromkeys(w.strip("'.-+") for w in _content_words(work.text)))
        keywords = [w for w in keywords if 1 < len(w) <= MAX_KEYWORD_CHARS and w not in STOPWORDS]
        keywords = keywords[:MAX_KEYWORDS]
        total = work.understood + len(keywords)
        return Intent(
            genres=[g for c in concepts for g in c.genres],
            platforms=platforms,
            moods=[m for c in concepts for m in c.moods],
            themes=[t for c in concepts for t in c.themes],
            people=people,
            referenced_titles=[ReferencedTitle(title=t) for t in titles],
            year_from=year_from,
            year_to=year_to,
            max_runtime_minutes=runtime,
            kind=kinds.pop() if len(kinds) == 1 else None,
            monetization=list(dict.fromkeys(Monetization(m) for m in monetization)),
            keywords=keywords,
            confidence=round(work.understood / total, 3) if total else 0.0,
            source="rules",
        )

    def _titles(self, work: _Work) -> list[str]:
        titles: list[str] = []
        position = 0
        while (marker := _TITLE_MARKER.search(work.text, position)) is not None:
            before = work.text[: marker.start()].split()
            if marker.group().startswith("like") and before and before[-1] in _VERB_LIKE:
                position = marker.end()
                continue
            rest = work.text[marker.end() :]
            quoted = re.match(r"\"([^\"]{1,200})\"|'([^']{1,200})'", rest)
            segment = quoted.group() if quoted else _segment(rest)
            found = [_clean_title(quoted[1] or quoted[2])] if quoted else self._split(segment)
            found_titles = [t for t in found if t]
            if not found_titles:
                position = marker.end()
                continue
            titles.extend(smart_title(t) for t in found_titles)
            work.cut(marker.start(), marker.end() + len(segment))
            position = marker.start()
        return list(dict.fromkeys(titles))

    @staticmethod
    def _split(segment: str) -> list[str | None]:
        return [_clean_title(p) for p in _LIST_SPLIT.split(segment)]

    def _people(self, work: _Work) -> list[str]:
        people: list[str] = []
        position = 0
        while (marker := _PEOPLE_MARKER.search(work.text, position)) is not None:
            weak = marker["weak"] is not None
            segment = _segment(work.text[marker.end() :])
            names = [_clean_name(p, weak=weak) for p in _LIST_SPLIT.split(segment)]
            valid = [n for n in names if n]
            # A bare "with" is a name only when every item reads like one ("with a twist" is not).
            if not valid or (weak and len(valid) != len(names)):
                position = marker.end()
                continue
            people.extend(smart_title(n) for n in valid)
            work.cut(marker.start(), marker.end() + len(segment), weight=0.5 if weak else 1.0)
            position = marker.start()
        return list(dict.fromkeys(people))

    def _runtime(self, work: _Work) -> int | None:
        limits: list[int] = []
        for m in reversed(list(temporal.RUNTIME_RE.finditer(work.text))):
            minutes = temporal.runtime_from(m)
            if minutes is not None:
                limits.append(minutes)
                work.cut(m.start(), m.end())
        return min(limits) if limits else None

    def _years(self, work: _Work) -> tuple[int | None, int | None]:
        bounds = temporal.YearBounds([], [], [])
        for m in reversed(list(temporal.YEARS_RE.finditer(work.text))):
            found = temporal.years_from(m, self._today())
            if found is not None:
                bounds.spans += found.spans
                bounds.lowers += found.lowers
                bounds.uppers += found.uppers
                work.cut(m.start(), m.end())
        return bounds.resolve()

    @staticmethod
    def _table(work: _Work, table: PhraseTable[V]) -> list[V]:
        found = table.find(work.text)
        for f in reversed(found):
            work.cut(f.start, f.end)
        return list(dict.fromkeys(f.value for f in found))


def _clean_name(piece: str, *, weak: bool) -> str | None:
    words = piece.strip(" '\"-.,").split()
    if weak:
        # After a bare "with", only two or three name-like words that mean nothing else.
        if not 2 <= len(words) <= 3 or CONCEPTS.find(" ".join(words)):
            return None
        if any(w in STOPWORDS or w in NOT_NAMES or _is_vocabulary(w) for w in words):
            return None
    else:
        while words and (_is_vocabulary(words[-1]) or words[-1] in NOT_NAMES):
            words.pop()
        if not 1 <= len(words) <= 4 or words[0] in STOPWORDS:
            return None
    if not all(re.fullmatch(r"[^\W\d_][\w.'-]*", w) for w in words):
        return None
    return " ".join(words)
