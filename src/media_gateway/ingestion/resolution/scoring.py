"""How alike an incoming record and a catalog candidate are: features, weights, vetoes, threshold.

    score = sum(w_f * s_f) / sum(w_f)   over the features that both sides know

    feature    w     s_f
    title      0.40  best of rapidfuzz `ratio` and `token_sort_ratio` / 100 over every pair of
                     comparison forms (title and original title, each side; folded like
                     normalize_title, "Matrix, The" uninverted, roman numerals as digits; when only
                     one side had a leading article, also with the articles kept)
    year       0.15  1.0 same year, 0.7 one year apart
    runtime    0.10  1.0 up to 5 min apart (credits, PAL speed-up), then linear down to 0 at 25 min
    directors  0.20  matched names / size of the smaller list
    cast       0.15  matched names among the top 5 billed / size of the smaller list

    vetoes (never merge): years 2 or more apart; best title similarity < 0.80; different numbers in
    the titles (sequels: "Scream 2" vs "Scream 3"); a strong id (EIDR, IMDb, TMDB, TVDB) of a type
    both sides carry, with different values.

    merge when score >= MERGE_THRESHOLD (0.85), unless a second, different candidate scores within
    AMBIGUITY_MARGIN of the best: then nothing says which one it is, and a duplicate entity is the
    cheaper mistake (a later id match links it) than a wrong merge (mixes two works' offers).

A feature one side lacks counts neither for nor against: platform feeds often carry no credits, and
treating "unknown" as "different" would make such records never merge. Names match when their
token-sort similarity is >= 88, which absorbs transliterations ("Andrei"/"Andrey").

Scoring one candidate takes 20-50 microseconds (a handful of rapidfuzz calls on short strings), and
blocking yields about 15 candidates, most dropped on the title alone, so it runs inline on the event
loop (about 0.3 ms per record in bench/entity_resolution.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from media_gateway.catalog.schemas import normalize_title

WEIGHTS: dict[str, float] = {"title": 0.40, "year": 0.15, "runtime": 0.10, "directors": 0.20, "cast": 0.15}
MERGE_THRESHOLD = 0.85
AMBIGUITY_MARGIN = 0.03
MIN_TITLE_SIMILARITY = 0.80
MAX_YEAR_DISTANCE = 1
NAME_MATCH = 88.0
TOP_CAST = 5
STRONG_ID_TYPES: tuple[str, ...] = ("eidr", "imdb", "tmdb", "tvdb")

_ARTICLES = ("the", "a", "an")
_TRAILING_ARTICLE = re.compile(r",\s*(the|a|an)\s*$", re.IGNORECASE)
# "ii".."x" only: a lone "i" is far more often the pronoun ("I, Robot") than a numeral.
_ROMAN_TO_DIGIT = {
    "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9", "x": "10",
}  # fmt: skip
_DIGIT_TO_ROMAN = {v: k for k, v in _ROMAN_TO_DIGIT.items()}


def _uninvert(title: str) -> str | None:
    """ "Matrix, The" -> "The Matrix" (library-catalog style titles); None when not inverted."""
    m = _TRAILING_ARTICLE.search(title)
    if m is None:
        return None
    return f"{m.group(1)} {title[: m.start()]}"


_ASCII_FOLD = str.maketrans({chr(i): " " for i in range(128) if not chr(i).isalnum()})


def _fold(text: str) -> str:
    """normalize_title's folding (case, accents, "&", punctuation) without dropping an article."""
    if text.isascii():
        # Most names and titles: the same result without the per-character Unicode work.
        return " ".join(text.lower().replace("&", " and ").translate(_ASCII_FOLD).split())
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c)).replace("&", " and ")
    return " ".join("".join(c if c.isalnum() else " " for c in folded).split())


@dataclass(frozen=True, slots=True)
class TitleForm:
    key: str  # leading article dropped (like normalize_title), roman numerals as digits
    full: str  # the same with its article kept; equal to `key` when there was none


def title_form(title: str) -> TitleForm:
    words = [_ROMAN_TO_DIGIT.get(w, w) for w in _fold(_uninvert(title) or title).split()]
    full = " ".join(words)
    key = " ".join(words[1:]) if len(words) > 1 and words[0] in _ARTICLES else full
    return TitleForm(key, full)


def title_forms(titles: Iterable[str | None]) -> tuple[TitleForm, ...]:
    return tuple(dict.fromkeys(f for t in titles if t for f in [title_form(t)] if f.key))


def _typo_repairs(key: str) -> list[str]:
    """Keys that undo one typo in the first two letters: an extra letter, or two swapped ones.
    The sorted-neighbourhood window cannot find those (the typo moves the title far away in sort
    order); a typo further in keeps the title next to its original and the window finds it."""
    out = []
    for p in (0, 1):
        if p < len(key):
            out.append(key[:p] + key[p + 1 :])
        if p + 1 < len(key):
            out.append(key[:p] + key[p + 1] + key[p] + key[p + 2 :])
    return [" ".join(v.split()) for v in out]


def blocking_keys(titles: Iterable[str | None]) -> list[str]:
    """Values of `content.title_normalized` (plain normalize_title of the stored title) that a record
    with these titles may match exactly: as written, uninverted, inverted, numerals swapped, a
    misspelt leading "the" dropped, one typo in the first two letters undone."""
    keys: dict[str, None] = {}
    for title in titles:
        if not title:
            continue
        base = normalize_title(title)
        variants = [base]
        uninverted = _uninvert(title)
        if uninverted is not None:
            variants.append(normalize_title(uninverted))
        first = normalize_title(title.split(maxsplit=1)[0]) if title.split() else ""
        if first in _ARTICLES and base != first:
            # Stored inverted ("Matrix, The" is stored as "matrix the").
            variants.append(f"{base} {first}")
        for v in list(variants):
            words = v.split()
            for table in (_ROMAN_TO_DIGIT, _DIGIT_TO_ROMAN):
                swapped = " ".join(table.get(w, w) for w in words)
                if swapped != v:
                    variants.append(swapped)
        words = base.split()
        if len(words) > 1 and words[0] not in _ARTICLES and OSA.distance(words[0], "the") == 1:
            variants.append(" ".join(words[1:]))
        variants.extend(_typo_repairs(base))
        for v in variants:
            if v:
                keys[v] = None
    return list(keys)


def normalize_name(name: str) -> str:
    return _fold(name)


def _numbers(key: str) -> frozenset[str]:
    return frozenset(w for w in key.split() if w.isdigit())


@dataclass(frozen=True, slots=True)
class Features:
    """One side of a comparison, pre-normalized once."""

    titles: tuple[TitleForm, ...]
    year: int | None
    runtime: int | None
    directors: tuple[str, ...]
    cast: tuple[str, ...]
    strong_ids: frozenset[tuple[str, str]]

    @classmethod
    def build(
        cls,
        titles: Sequence[str | None],
        year: int | None,
        runtime: int | None,
        directors: Iterable[str],
        cast: Iterable[str],
        ids: Iterable[tuple[str, str]] = (),
    ) -> Features:
        return cls(
            titles=title_forms(titles),
            year=year,
            runtime=runtime or None,  # 0 means "unknown" in several feeds
            directors=tuple(dict.fromkeys(n for n in map(normalize_name, directors) if n)),
            cast=tuple(dict.fromkeys(n for n in map(normalize_name, cast) if n))[:TOP_CAST],
            strong_ids=frozenset((t, v) for t, v in ids if t in STRONG_ID_TYPES),
        )


@dataclass(frozen=True, slots=True)
class MatchScore:
    total: float
    title: float
    year: float | None
    runtime: float | None
    directors: float | None
    cast: float | None
    veto: str | None = None

    @property
    def merges(self) -> bool:
        return self.veto is None and self.total >= MERGE_THRESHOLD


def title_similarity(a: Sequence[TitleForm], b: Sequence[TitleForm]) -> float:
    best = 0.0
    for x in a:
        for y in b:
            pairs = [(x.key, y.key)]
            if (x.key == x.full) != (y.key == y.full):
                # Only one side lost a leading article: compare the forms that keep it, so that a
                # misspelt article ("Teh Dark Knight") is one typo rather than an extra word.
                pairs.append((x.full, y.full))
            for p, q in pairs:
                if _numbers(p) == _numbers(q):
                    best = max(best, fuzz.ratio(p, q), fuzz.token_sort_ratio(p, q))
    return best / 100.0


def name_overlap(a: Sequence[str], b: Sequence[str]) -> float | None:
    if not a or not b:
        return None
    matched = sum(1 for x in a if any(fuzz.token_sort_ratio(x, y) >= NAME_MATCH for y in b))
    return min(1.0, matched / min(len(a), len(b)))


def year_similarity(a: int | None, b: int | None) -> float | None:
    if a is None or b is None:
        return None
    return {0: 1.0, 1: 0.7}.get(abs(a - b), 0.0)


def runtime_similarity(a: int | None, b: int | None) -> float | None:
    if a is None or b is None:
        return None
    return max(0.0, min(1.0, 1.0 - (abs(a - b) - 5) / 20.0))


def _conflicting_ids(a: frozenset[tuple[str, str]], b: frozenset[tuple[str, str]]) -> str | None:
    for id_type in STRONG_ID_TYPES:
        mine = {v for t, v in a if t == id_type}
        theirs = {v for t, v in b if t == id_type}
        if mine and theirs and not mine & theirs:
            return id_type
    return None


def score(record: Features, candidate: Features) -> MatchScore:
    title = title_similarity(record.titles, candidate.titles)
    parts: dict[str, float | None] = {
        "title": title,
        "year": year_similarity(record.year, candidate.year),
        "runtime": runtime_similarity(record.runtime, candidate.runtime),
        "directors": name_overlap(record.directors, candidate.directors),
        "cast": name_overlap(record.cast, candidate.cast),
    }
    known = {k: v for k, v in parts.items() if v is not None}
    total = sum(WEIGHTS[k] * v for k, v in known.items()) / sum(WEIGHTS[k] for k in known)
    veto: str | None = None
    if (
        record.year is not None
        and candidate.year is not None
        and abs(record.year - candidate.year) > MAX_YEAR_DISTANCE
    ):
        veto = "year"
    if veto is None and title < MIN_TITLE_SIMILARITY:
        veto = "title"
    if veto is None:
        conflict = _conflicting_ids(record.strong_ids, candidate.strong_ids)
        if conflict is not None:
            veto = f"id:{conflict}"
    return MatchScore(
        total=round(total, 4),
        title=round(title, 4),
        year=parts["year"],
        runtime=parts["runtime"],
        directors=parts["directors"],
        cast=parts["cast"],
        veto=veto,
    )
