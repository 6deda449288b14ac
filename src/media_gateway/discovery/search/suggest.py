"""Autocomplete: titles by a tiered prefix query, people from the index's term dictionary.

The index holds titles, not people. A person is found by walking the `people_key` terms that start
with what was typed (see `analysis.person_keys`): no document is read, and a term's document
frequency says how many titles the person is in. Only when that finds nobody and the last word is
long enough for a typo are documents searched with fuzzy people clauses, and the matching names
picked out of them with the same rules the query used (whole words, the last one as a prefix, one
edit allowed from four characters on)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tantivy import DocAddress, Query, Schema, Searcher

from media_gateway.discovery.search.analysis import lift, parse_person_key, squash, words
from media_gateway.discovery.search.documents import Suggestion
from media_gateway.discovery.search.queries import (
    AC_EXACT,
    AC_LATER_WORD,
    AC_STARTS,
    AC_STARTS_FUZZY,
    AC_WORD,
    AC_WORD_FUZZY,
    FUZZY_MIN_CHARS,
    people_prefix_query,
    title_prefix_query,
)

MAX_KNOWN_FOR = 3
# A person in this many titles gets half the popularity lift.
PERSON_HALF_TITLES = 5.0
# Person terms read per request, before ranking; the walk returns the most frequent first.
PERSON_TERMS = 60
# Documents read by the typo fallback to find names in.
FALLBACK_DOCS = 30


def _first_difference(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    i = 0
    while i < limit and a[i] == b[i]:
        i += 1
    return i


def within_one_edit(a: str, b: str) -> bool:
    """Optimal-string-alignment distance ≤ 1 (a swap of neighbours counts once, as in tantivy)."""
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = _first_difference(a, b)
    if i == min(la, lb):
        return True
    if la == lb:
        return a[i + 1 :] == b[i + 1 :] or (
            i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
        )
    return a[i + 1 :] == b[i:] if la > lb else a[i:] == b[i + 1 :]


def prefix_within_one_edit(token: str, word: str) -> bool:
    """Whether some prefix of `word` is within one edit of `token` (tantivy's fuzzy prefix)."""
    n = len(token)
    i = _first_difference(token, word)
    if i == n:
        return True
    if i == len(word):
        # `word` is a proper prefix of `token`: one edit covers exactly one missing character.
        return n - len(word) <= 1
    rest = token[i + 1 :]
    return (
        word[i + 1 : n] == rest  # substitution
        or word[i : n - 1] == rest  # `token` has an extra character
        or word[i + 1 : n + 1] == token[i:]  # `word` has an extra character
        or (
            i + 1 < n
            and token[i] == word[i + 1 : i + 2]
            and token[i + 1] == word[i]
            and word[i + 2 : n] == token[i + 2 :]
        )
    )


def word_matches(token: str, word: str, *, prefix: bool) -> float:
    """AC_WORD for an exact match (or prefix), AC_WORD_FUZZY within one edit, else 0."""
    if word.startswith(token) if prefix else word == token:
        return AC_WORD
    if len(token) < FUZZY_MIN_CHARS:
        return 0.0
    if prefix:
        return AC_WORD_FUZZY if prefix_within_one_edit(token, word) else 0.0
    return AC_WORD_FUZZY if within_one_edit(token, word) else 0.0


def person_tier(name: Sequence[str], typed: Sequence[str]) -> float:
    """How well a name (as index words) matches what was typed; 0 for no match."""
    if not typed or not name:
        return 0.0
    n = len(typed)
    # Every typed word must match some word of the name; the last (a prefix) is the usual miss,
    # so it is tried first.
    best = [0.0] * n
    for i in range(n - 1, -1, -1):
        best[i] = max(word_matches(typed[i], w, prefix=i == n - 1) for w in name)
        if not best[i]:
            return 0.0
    if list(name) == list(typed):
        return AC_EXACT
    if len(name) >= n:
        pairs = enumerate(zip(typed, name, strict=False))
        leading = [word_matches(t, w, prefix=i == n - 1) for i, (t, w) in pairs]
        if all(s == AC_WORD for s in leading):
            return AC_STARTS
        if all(leading):
            return AC_STARTS_FUZZY
    return sum(best)


@dataclass(slots=True)
class _Person:
    name: str
    tier: float
    prior: float = 0.0
    # People index terms (exact) under which the person's titles are found.
    term: str | None = None
    known_for: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(self.tier * lift(self.prior), 4)

    def suggestion(self) -> Suggestion:
        return Suggestion(kind="person", id=None, title=self.name, known_for=self.known_for, score=self.score)


def autocomplete(searcher: Searcher, schema: Schema, typed: Sequence[str], limit: int) -> list[Suggestion]:
    """Titles and people for `typed` (index words, the last one possibly unfinished), best first;
    on a tie a title before a person."""
    hits = _title_hits(searcher, schema, typed, limit, typos=False)
    as_typed = bool(hits)
    if len(hits) < limit and max(len(t) for t in typed) >= FUZZY_MIN_CHARS:
        # Too few titles as typed: let typos in. Otherwise exact matches are what the user wants,
        # and the query skips its dearest clauses.
        hits = _title_hits(searcher, schema, typed, limit, typos=True)
    titles = title_suggestions(searcher, hits)
    people = people_by_terms(searcher, typed, limit)
    if not people and not as_typed and len(typed[-1]) >= FUZZY_MIN_CHARS:
        # Nobody's name starts with it and no title has it as typed: likely a misspelled name.
        people = people_by_documents(searcher, schema, typed, limit)
    ranked: list[tuple[float, bool, str, Suggestion | _Person]] = [
        *((t.score, False, t.title.casefold(), t) for t in titles),
        *((p.score, True, p.name.casefold(), p) for p in people),
    ]
    ranked.sort(key=lambda entry: (-entry[0], entry[1], entry[2]))
    result: list[Suggestion] = []
    for _, _, _, entry in ranked[:limit]:
        if isinstance(entry, Suggestion):
            result.append(entry)
            continue
        if entry.term is not None:
            entry.known_for = _titles_of(searcher, schema, entry.term)
            if not entry.known_for:
                # Term counts include deleted documents until segments merge: a ghost.
                continue
        result.append(entry.suggestion())
    return result


def _title_hits(
    searcher: Searcher, schema: Schema, typed: Sequence[str], limit: int, *, typos: bool
) -> list[tuple[Any, DocAddress]]:
    query = title_prefix_query(schema, typed, typos=typos)
    return searcher.search(query, limit, count=False, weight_by_field="prior").hits


def title_suggestions(searcher: Searcher, hits: Sequence[tuple[Any, DocAddress]]) -> list[Suggestion]:
    suggestions = []
    for score, address in hits:
        doc = searcher.doc(address)
        year = doc.get_first("year")
        kind = doc.get_first("kind")
        suggestions.append(
            Suggestion(
                kind="title",
                id=str(doc.get_first("id")),
                title=str(doc.get_first("title") or ""),
                year=int(year) if year is not None else None,
                content_kind=str(kind) if kind else None,
                score=round(float(score), 4),
            )
        )
    return suggestions


def people_by_terms(searcher: Searcher, typed: Sequence[str], limit: int) -> list[_Person]:
    text = " ".join(typed)
    people: dict[str, _Person] = {}
    for term, titles in searcher.terms_with_prefix("people_key", text, limit=max(PERSON_TERMS, 3 * limit)):
        key, first_word, name = parse_person_key(term)
        if key == text and first_word:
            tier = AC_EXACT
        elif first_word:
            tier = AC_STARTS
        else:
            tier = AC_LATER_WORD
        person = _Person(name=name, tier=tier, prior=squash(titles, PERSON_HALF_TITLES), term=term)
        best = people.get(name)
        if best is None or person.score > best.score:
            people[name] = person
    return _ranked(people.values(), limit)


def people_by_documents(
    searcher: Searcher, schema: Schema, typed: Sequence[str], limit: int
) -> list[_Person]:
    """The typo path: names matching `typed` within one edit per word, among the people of the
    most popular documents the fuzzy people query finds."""
    found = searcher.search(
        people_prefix_query(schema, typed), FALLBACK_DOCS, count=False, weight_by_field="prior"
    )
    addresses = [address for _, address in found.hits]
    priors = searcher.fast_field_values("prior", addresses) if addresses else []
    people: dict[str, _Person] = {}
    for address, doc_prior in zip(addresses, priors, strict=True):
        doc = searcher.doc(address)
        doc_id = str(doc.get_first("id"))
        for value in doc.get_all("people"):
            name = str(value)
            key = " ".join(words(name))
            person = people.get(key)
            if person is None:
                tier = person_tier(key.split(" "), typed)
                if not tier:
                    continue
                person = people[key] = _Person(name=name, tier=tier)
            person.prior += float(doc_prior or 0.0)
            if len(person.known_for) < MAX_KNOWN_FOR and doc_id not in person.known_for:
                person.known_for.append(doc_id)
    return _ranked(people.values(), limit)


def _ranked(people: Iterable[_Person], limit: int) -> list[_Person]:
    return sorted(people, key=lambda p: (-p.score, p.name))[:limit]


def _titles_of(searcher: Searcher, schema: Schema, term: str) -> list[str]:
    found = searcher.search(
        Query.term_query(schema, "people_key", term), MAX_KNOWN_FOR, count=False, weight_by_field="prior"
    )
    return [str(searcher.doc(address).get_first("id")) for _, address in found.hits]
