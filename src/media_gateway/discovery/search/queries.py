"""Keyword queries built term by term.

User text never reaches tantivy's query-language parser: it is tokenized with the index's own
analyzers and each token becomes a TermQuery, FuzzyTermQuery or prefix query. No input can
therefore fail to parse, name a field, or smuggle in operators.

Scores come in tiers. A whole-title match (exact, then within an edit or two) carries a constant
far above anything the per-word BM25 clauses can add up to, so an exact or near-exact title ranks
first. Fuzzy matches score as a constant in tantivy, so each is paired with the exact term in a
disjunction-max: a document matching exactly gets its (higher) BM25 score, one matching only
through a typo gets the constant. In search, only a word the index does not know as spelled (in
any text field) gets fuzzy clauses: a correctly spelled word costs no automaton walk, the dearest
part of a query by far, and a typo that happens to be another word is still caught by the
whole-title tier.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from tantivy import FieldType, Occur, Query, Schema, Searcher

from media_gateway.discovery.search.analysis import clean, offer_key, stems, title_keys, words
from media_gateway.discovery.search.documents import KeywordFilters

# BM25 boosts per field.
FIELD_BOOSTS = {"title": 3.0, "original_title": 2.0, "people": 1.5, "keywords": 1.0, "overview": 0.6}
# A typo-only match of a word scores like a fairly strong exact hit on the same field (BM25 per
# term lands around 2-8 here), and below the exact hit of that word.
FUZZY_FACTOR = 3.0
# Whole-title tiers for search.
EXACT_TITLE = 1000.0
NEAR_TITLE = 300.0
# Autocomplete tiers (constant scores; popularity multiplies them by at most 2).
AC_EXACT = 1000.0
AC_STARTS = 100.0
AC_STARTS_FUZZY = 30.0
# A person whose name has a later word (a surname) starting with what was typed.
AC_LATER_WORD = 30.0
AC_PERSON_PHRASE = 50.0
AC_WORD = 10.0
AC_WORD_FUZZY = 4.0
# Typos are tolerated only in words this long: shorter ones have too many neighbours.
FUZZY_MIN_CHARS = 4
# Two edits only for whole titles this long.
TWO_EDITS_MIN_CHARS = 10
# Bounds on the work one request can cause, however long its text.
MAX_QUERY_WORDS = 24
MAX_PREFIX_WORDS = 8
MAX_TITLE_WORDS = 64
MAX_FUZZY_TITLE_CHARS = 120


def _const(query: Query, score: float) -> Query:
    return Query.const_score_query(query, score)


def _fuzzy(schema: Schema, field: str, text: str, *, distance: int = 1, prefix: bool = False) -> Query:
    return Query.fuzzy_term_query(schema, field, text, distance, True, prefix)


def _unique(tokens: Sequence[str], limit: int) -> list[str]:
    return list(dict.fromkeys(tokens))[:limit]


def _known(searcher: Searcher, token: str) -> bool:
    """Whether some document has `token` as spelled, in a word field or (stemmed) in the plot."""
    if any(searcher.doc_freq(field, token) for field in ("title", "original_title", "people")):
        return True
    stemmed = stems(token)
    # No stem: a stop word, which is a word.
    return not stemmed or any(searcher.doc_freq(field, stemmed[0]) for field in ("keywords", "overview"))


def _word_clause(schema: Schema, field: str, token: str, *, typo: bool) -> Query:
    boost = FIELD_BOOSTS[field]
    exact = Query.boost_query(Query.term_query(schema, field, token), boost)
    if not typo:
        return exact
    near = _const(_fuzzy(schema, field, token), boost * FUZZY_FACTOR)
    return Query.disjunction_max_query([exact, near])


def text_query(schema: Schema, searcher: Searcher, text: str) -> Query | None:
    """BM25 OR over the boosted fields, typo-tolerant words, and the whole-title tiers."""
    all_tokens = words(text)
    tokens = _unique(all_tokens, MAX_QUERY_WORDS)
    stemmed = _unique(stems(text), MAX_QUERY_WORDS)
    if not tokens and not stemmed:
        return None
    clauses: list[tuple[Occur, Query]] = []
    typos = False
    for token in tokens:
        typo = len(token) >= FUZZY_MIN_CHARS and not _known(searcher, token)
        typos = typos or typo
        for field in ("title", "original_title", "people"):
            # Original titles are too rarely typed to be worth a typo automaton of their own.
            fuzzy = typo and field != "original_title"
            clauses.append((Occur.Should, _word_clause(schema, field, token, typo=fuzzy)))
    for stem in stemmed:
        for field in ("keywords", "overview"):
            boost = FIELD_BOOSTS[field]
            clauses.append((Occur.Should, Query.boost_query(Query.term_query(schema, field, stem), boost)))
    # From the words as typed, repeats included: "New York, New York" is a title.
    for key in title_keys(" ".join(all_tokens[:MAX_TITLE_WORDS])):
        clauses.append((Occur.Should, _const(Query.term_query(schema, "title_key", key), EXACT_TITLE)))
        # With an exact title in the catalog, near ones would rank below it anyway.
        exists = searcher.doc_freq("title_key", key) > 0
        if not exists and FUZZY_MIN_CHARS <= len(key) <= MAX_FUZZY_TITLE_CHARS:
            # Two edits (three times dearer) only when a word is misspelled for sure; one still
            # catches a title whose typo made another word ("forest gump").
            distance = 2 if typos and len(key) >= TWO_EDITS_MIN_CHARS else 1
            near = _fuzzy(schema, "title_key", key, distance=distance)
            clauses.append((Occur.Should, _const(near, NEAR_TITLE)))
    return Query.boolean_query(clauses)


def _values(values: Sequence[str]) -> list[str]:
    return [*dict.fromkeys(clean(v) for v in values)]


def filter_queries(schema: Schema, filters: KeywordFilters) -> list[Query]:
    found: list[Query] = []
    if filters.genres:
        found.append(Query.term_set_query(schema, "genres", _values(filters.genres)))
    if filters.platforms or filters.regions or filters.monetization:
        # An absent dimension is the `*` of the offer terms (see `analysis.offer_terms`).
        dimensions: list[list[str | None]] = [
            [*_values(values)] or [None]
            for values in (filters.platforms, filters.regions, filters.monetization)
        ]
        keys = [offer_key(p, r, m) for p, r, m in itertools.product(*dimensions)]
        found.append(Query.term_set_query(schema, "offer_keys", keys))
    if filters.year_min is not None or filters.year_max is not None:
        found.append(Query.range_query(schema, "year", FieldType.Integer, filters.year_min, filters.year_max))
    if filters.min_rating is not None:
        found.append(Query.range_query(schema, "rating", FieldType.Float, float(filters.min_rating), None))
    if filters.max_runtime is not None:
        found.append(Query.range_query(schema, "runtime", FieldType.Integer, None, filters.max_runtime))
    if filters.kind:
        found.append(Query.term_query(schema, "kind", clean(filters.kind)))
    for terms in filters.people:
        found.append(Query.term_set_query(schema, "people_key", list(terms)))
    return found


def search_query(schema: Schema, searcher: Searcher, text: str, filters: KeywordFilters | None) -> Query:
    """Text AND every filter; filters add nothing to the score.

    Blank text browses: every document passing the filters, at a constant score that the
    popularity prior then orders. Text without a single searchable word ("*", punctuation)
    matches nothing."""
    clauses: list[tuple[Occur, Query]] = []
    if text.strip():
        matched = text_query(schema, searcher, text)
        clauses.append((Occur.Must, matched if matched is not None else Query.empty_query()))
    else:
        # Constant-scored: a bare AllQuery among other MUST clauses is optimized away with its score.
        clauses.append((Occur.Must, _const(Query.all_query(), 1.0)))
    for query in filter_queries(schema, filters or KeywordFilters()):
        clauses.append((Occur.Must, _const(query, 0.0)))
    return clauses[0][1] if len(clauses) == 1 else Query.boolean_query(clauses)


def prefix_tokens(text: str) -> list[str]:
    """The words of a partly typed query; the last one may be unfinished."""
    return words(text)[:MAX_PREFIX_WORDS]


def _typed_word(
    schema: Schema, fields: Sequence[str], token: str, *, last: bool, typos: bool = True
) -> Query:
    """One typed word on any of `fields`: whole (or, if `last`, as a prefix), else within one edit."""
    alternatives: list[Query] = []
    for field in fields:
        if last:
            exact = _fuzzy(schema, field, token, distance=0, prefix=True)
        else:
            exact = Query.term_query(schema, field, token)
        alternatives.append(_const(exact, AC_WORD))
        if typos and len(token) >= FUZZY_MIN_CHARS:
            alternatives.append(_const(_fuzzy(schema, field, token, prefix=last), AC_WORD_FUZZY))
    return Query.disjunction_max_query(alternatives)


def title_prefix_query(schema: Schema, tokens: Sequence[str], *, typos: bool = True) -> Query:
    """Titles containing every typed word (the last as a prefix), tiered by how the whole title
    compares: equal, starting with what was typed, or (with `typos`) starting with it give or take
    one edit. With `typos`, words of four characters or more also match within one edit."""
    clauses: list[tuple[Occur, Query]] = [
        (
            Occur.Must,
            _typed_word(schema, ("title", "original_title"), t, last=i == len(tokens) - 1, typos=typos),
        )
        for i, t in enumerate(tokens)
    ]
    typed = " ".join(tokens)
    clauses.append((Occur.Should, _const(Query.term_query(schema, "title_key", typed), AC_EXACT)))
    starts = _fuzzy(schema, "title_key", typed, distance=0, prefix=True)
    clauses.append((Occur.Should, _const(starts, AC_STARTS)))
    if typos and len(typed) >= FUZZY_MIN_CHARS:
        clauses.append(
            (Occur.Should, _const(_fuzzy(schema, "title_key", typed, prefix=True), AC_STARTS_FUZZY))
        )
    return Query.boolean_query(clauses)


def people_prefix_query(schema: Schema, tokens: Sequence[str]) -> Query:
    """Documents with people matching every typed word; a phrase bonus for words within one name."""
    clauses: list[tuple[Occur, Query]] = [
        (Occur.Must, _typed_word(schema, ("people",), t, last=i == len(tokens) - 1))
        for i, t in enumerate(tokens)
    ]
    if len(tokens) > 1:
        phrase = Query.phrase_prefix_query(schema, "people", list(tokens))
        clauses.append((Occur.Should, _const(phrase, AC_PERSON_PHRASE)))
    return Query.boolean_query(clauses)
