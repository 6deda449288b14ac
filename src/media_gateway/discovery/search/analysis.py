"""The keyword index's schema, its text analyzers, and how a `KeywordDoc` becomes an index document.

Queries are tokenized in Python with the very analyzers the index uses, so a query term is always
spelled like the indexed term it should meet."""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import orjson
import tantivy

from media_gateway.discovery.search.documents import KeywordDoc, OfferKey

# Names, titles: words kept whole (no stemming), case and accents folded, so "Amélie" meets "amelie".
TEXT_ANALYZER = "mg_text"
# Plot and keywords: stemmed and without stop words, so "aliens" meets "alien" and "the" costs nothing.
STEM_ANALYZER = "mg_stem"
# Longer tokens are noise (URLs, hashes) and would make fuzzy automata needlessly large.
MAX_TOKEN_CHARS = 40
# Leading articles a user often leaves out of a title ("dark knight").
ARTICLES = frozenset({"the", "a", "an"})
# People per document: the top of the billing is what anyone searches for.
MAX_PEOPLE = 20
# Popularity at which the prior reaches half its range; around the median of TMDB's scale.
PRIOR_HALF_POPULARITY = 20.0
PERSON_KEY_SEPARATOR = "\x1f"
MAX_NAME_CHARS = 120
# Later words of a name that can start a person search: surnames, including "de niro".
MAX_NAME_WORDS = 3


def _text_analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_CHARS))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def _stem_analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_CHARS))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


TEXT = _text_analyzer()
STEM = _stem_analyzer()


def clean(text: str) -> str:
    """`text` without lone surrogates, which cannot cross into Rust as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def words(text: str) -> list[str]:
    return TEXT.analyze(clean(text))


def stems(text: str) -> list[str]:
    return STEM.analyze(clean(text))


def title_keys(title: str) -> list[str]:
    """Whole-title terms: the folded words joined, and again without a leading article."""
    tokens = words(title)
    if not tokens:
        return []
    keys = [" ".join(tokens)]
    if len(tokens) > 1 and tokens[0] in ARTICLES:
        keys.append(" ".join(tokens[1:]))
    return keys


def squash(value: float | None, half: float) -> float:
    """`value` ≥ 0 mapped into [0, 2), reaching 1 at `half`."""
    if value is None or not math.isfinite(value) or value <= 0:
        return 0.0
    return 2.0 * value / (value + half)


def prior(popularity: float | None) -> float:
    """Popularity squashed into [0, 2): searched with `weight_by_field`, tantivy multiplies a score
    by log2(2 + prior), so popularity can at most double a score and never outweigh a tier."""
    return squash(popularity, PRIOR_HALF_POPULARITY)


def lift(prior_value: float) -> float:
    """The factor tantivy's `weight_by_field` applies for a prior, for scores computed in Python."""
    return math.log2(2.0 + max(0.0, min(2.0, prior_value)))


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    # The document's number in the index's own id table: a search reads hits' ids from this fast
    # column instead of loading each hit's stored document (about 1.2 ms for 200 hits).
    builder.add_unsigned_field("ordinal", fast=True)
    builder.add_text_field("kind", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    # Positions only where a phrase is queried (people, for names typed in full); BM25 needs freqs.
    builder.add_text_field("title", stored=True, tokenizer_name=TEXT_ANALYZER, index_option="freq")
    builder.add_text_field("original_title", tokenizer_name=TEXT_ANALYZER, index_option="freq")
    builder.add_text_field("title_key", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("people", stored=True, tokenizer_name=TEXT_ANALYZER)
    # Person autocomplete reads names straight from this field's term dictionary (see `person_keys`).
    builder.add_text_field("people_key", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("keywords", tokenizer_name=STEM_ANALYZER, index_option="freq")
    builder.add_text_field("overview", tokenizer_name=STEM_ANALYZER, index_option="freq")
    for name in ("genres", "platforms", "regions", "monetization"):
        builder.add_text_field(name, fast=True, tokenizer_name="raw", index_option="basic")
    # Every partial combination of one offer's platform, region and monetization, so a filter on any
    # subset of them is one term set over a single field (see `offer_terms`).
    builder.add_text_field("offer_keys", tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("year", stored=True, indexed=True, fast=True)
    builder.add_integer_field("runtime", indexed=True, fast=True)
    builder.add_float_field("rating", fast=True)
    builder.add_float_field("popularity", stored=True, fast=True)
    builder.add_float_field("prior", fast=True)
    return builder.build()


def register_analyzers(index: tantivy.Index) -> None:
    # Analyzers live with the Index object, not on disk: every open must register them again.
    index.register_tokenizer(TEXT_ANALYZER, TEXT)
    index.register_tokenizer(STEM_ANALYZER, STEM)


def offer_key(platform: str | None, region: str | None, monetization: str | None) -> str:
    return f"p={platform or '*'}|r={region or '*'}|m={monetization or '*'}"


def offer_terms(offer: OfferKey) -> list[str]:
    """The offer under every mask of its three dimensions (`*` standing for "any")."""
    p, r, m = offer
    return [
        f"p={p}|r=*|m=*",
        f"p=*|r={r}|m=*",
        f"p={p}|r={r}|m=*",
        f"p=*|r=*|m={m}",
        f"p={p}|r=*|m={m}",
        f"p=*|r={r}|m={m}",
        f"p={p}|r={r}|m={m}",
    ]


# A person recurs across a catalog's titles; a build meets each name many times.
@functools.lru_cache(maxsize=65_536)
def person_keys(name: str) -> tuple[str, ...]:
    """Terms under which a person is found by prefix: their folded name from each of its first words
    on, then a flag (0: from the first word, 1: from a later one) and the name as displayed.

    "Tom Hanks" gives `tom hanks␟0Tom Hanks` and `hanks␟1Tom Hanks`, so typing "tom h" or "hank"
    finds him with a walk of the term dictionary, and the term's document frequency is the number of
    titles he is in."""
    display = "".join(c for c in name if c.isprintable()).strip()[:MAX_NAME_CHARS]
    tokens = words(display)
    return tuple(
        f"{' '.join(tokens[i:])}{PERSON_KEY_SEPARATOR}{0 if i == 0 else 1}{display}"
        for i in range(min(len(tokens), MAX_NAME_WORDS))
    )


def parse_person_key(term: str) -> tuple[str, bool, str]:
    """(folded name from the matched word on, whether that is the first word, display name)."""
    key, _, rest = term.partition(PERSON_KEY_SEPARATOR)
    return key, rest[:1] == "0", rest[1:]


def _people(doc: KeywordDoc) -> list[str]:
    return list(dict.fromkeys(p for p in doc.people if p and p.strip()))[:MAX_PEOPLE]


def to_json(doc: KeywordDoc, ordinal: int = 0) -> str:
    """The document as the JSON `IndexWriter.add_json` takes: parsed in Rust, much cheaper than
    building a `tantivy.Document` field by field from Python. `ordinal`: see `build_schema`."""
    keys = title_keys(doc.title)
    if doc.original_title:
        keys.extend(title_keys(doc.original_title))
    offer_keys = sorted(set(itertools.chain.from_iterable(map(offer_terms, doc.offers))))
    people = _people(doc)
    values: dict[str, Any] = {
        "id": doc.id,
        "ordinal": ordinal,
        "kind": doc.kind,
        "title": doc.title,
        "title_key": list(dict.fromkeys(keys)),
        "people": people,
        # Distinct already: every key ends with the (distinct) display name.
        "people_key": list(itertools.chain.from_iterable(map(person_keys, people))),
        "keywords": list(doc.keywords),
        "genres": list(doc.genres),
        "platforms": doc.platforms,
        "regions": doc.regions,
        "monetization": doc.monetization,
        "offer_keys": offer_keys,
        "prior": prior(doc.popularity),
    }
    if doc.original_title and doc.original_title != doc.title:
        values["original_title"] = doc.original_title
    if doc.overview:
        values["overview"] = doc.overview
    if doc.year is not None:
        values["year"] = doc.year
    if doc.runtime_minutes is not None:
        values["runtime"] = doc.runtime_minutes
    # float(): JSON 7 would not be accepted by a float field; 7.0 is.
    if doc.rating is not None and math.isfinite(doc.rating):
        values["rating"] = float(doc.rating)
    if doc.popularity is not None and math.isfinite(doc.popularity):
        values["popularity"] = float(doc.popularity)
    return orjson.dumps({k: v for k, v in values.items() if v != []}).decode()
