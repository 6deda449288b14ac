"""Generate `eval_set.jsonl`, the search relevance evaluation set, from the TMDB 5000 demo catalog.

Deterministic: the same data set and SEED give byte-identical output. Run from the repository root:

    python bench/relevance/make_eval_set.py

Titles are drawn evenly from five popularity bands (most to least popular), so the set is not just
blockbusters. See README.md in this directory for what each query type contains.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import defaultdict
from pathlib import Path

from media_gateway.ingestion.datasets import TmdbMovie, load_tmdb5000

SEED = 20261127
PER_TYPE = 55
BANDS = 5
DATASET = Path("/tmp/mg-test-datasets/datasets/tmdb5000")  # noqa: S108 - the test suite's data set cache
OUT = Path(__file__).resolve().with_name("eval_set.jsonl")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "one",
        "two",
        "three",
        "new",
        "must",
        "gets",
        "get",
        "finds",
        "find",
        "becomes",
        "become",
        "takes",
        "take",
        "make",
        "makes",
        "while",
        "who's",
        "it's",
        "he's",
        "she's",
        "they're",
        "their's",
        "upon",
        "among",
        "within",
        "without",
        "around",
        "whose",
        "soon",
        "however",
        "despite",
    ]
)

# Plain-English names for the genres used in structured queries.
GENRE_WORDS = {
    "Action": "action",
    "Adventure": "adventure",
    "Animation": "animated",
    "Comedy": "comedy",
    "Crime": "crime",
    "Documentary": "documentary",
    "Drama": "drama",
    "Family": "family",
    "Fantasy": "fantasy",
    "Horror": "horror",
    "Mystery": "mystery",
    "Romance": "romance",
    "Science Fiction": "science fiction",
    "Thriller": "thriller",
    "War": "war",
    "Western": "western",
}

KEYBOARD = {
    "a": "qwsz",
    "b": "vghn",
    "c": "xdfv",
    "d": "serfcx",
    "e": "wsdr",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "i": "ujko",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "m": "njk",
    "n": "bhjm",
    "o": "iklp",
    "p": "ol",
    "q": "wa",
    "r": "edft",
    "s": "awedxz",
    "t": "rfgy",
    "u": "yhji",
    "v": "cfgb",
    "w": "qase",
    "x": "zsdc",
    "y": "tghu",
    "z": "asx",
}

WORD = re.compile(r"[A-Za-z]+")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


def _bands(movies: list[TmdbMovie]) -> list[list[TmdbMovie]]:
    ordered = sorted(movies, key=lambda m: (-m.popularity, m.tmdb_id))
    size = -(-len(ordered) // BANDS)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _pick(rng: random.Random, bands: list[list[TmdbMovie]], n: int, ok, used: set[int]) -> list[TmdbMovie]:
    """`n` movies satisfying `ok`, round-robin over the popularity bands, each band shuffled once."""
    pools = []
    for band in bands:
        pool = [m for m in band if m.tmdb_id not in used and ok(m)]
        rng.shuffle(pool)
        pools.append(pool)
    chosen: list[TmdbMovie] = []
    while len(chosen) < n and any(pools):
        for pool in pools:
            if pool and len(chosen) < n:
                movie = pool.pop()
                chosen.append(movie)
                used.add(movie.tmdb_id)
    return chosen


def _typo(rng: random.Random, title: str) -> str | None:
    words = title.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return None
    i = rng.choice(candidates)
    word = words[i]
    op = rng.choice(("swap", "drop", "replace"))
    pos = rng.randrange(1, len(word) - 1)  # keep the first letter, like most real typos
    if op == "swap":
        if word[pos].casefold() == word[pos + 1].casefold():
            op = "drop"
        else:
            word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    if op == "drop":
        word = word[:pos] + word[pos + 1 :]
    elif op == "replace":
        near = KEYBOARD.get(word[pos].casefold(), "e")
        word = word[:pos] + rng.choice(near) + word[pos + 1 :]
    words[i] = word
    typo = " ".join(words)
    return typo if _norm(typo) != _norm(title) else None


def _partial(title: str, all_titles: list[str]) -> str | None:
    """The shortest word prefix of `title` (at least 2 words and 8 letters, not ending on a stopword,
    shorter than the title) that starts no other catalog title."""
    words = title.split(" ")
    for k in range(2, len(words)):
        prefix = re.sub(r"[\W_]+$", "", " ".join(words[:k]))
        folded = _norm(prefix)
        if len(folded.replace(" ", "")) < 8 or not folded or folded.split()[-1] in STOPWORDS:
            continue
        if sum(1 for t in all_titles if t.startswith(folded)) == 1:
            return prefix
    return None


def _plot(rng: random.Random, movie: TmdbMovie) -> str | None:
    if not movie.overview:
        return None
    banned = set(_norm(movie.title).split()) | set(_norm(movie.original_title).split())
    for member in movie.cast:
        banned |= set(_norm(member.name).split()) | set(_norm(member.character or "").split())
    for director in movie.directors:
        banned |= set(_norm(director).split())
    words = []
    for token in WORD.findall(movie.overview):
        # Capitalised words are mostly names and places: leave them out of the paraphrase.
        if token[0].isupper() or len(token) < 3:
            continue
        folded = _norm(token)
        if not folded or folded in STOPWORDS or folded in banned or folded in words:
            continue
        words.append(folded)
    if len(words) < 10:
        return None
    k = rng.randint(8, min(14, len(words)))
    sample = rng.sample(words, k)
    return " ".join(sample)


def _structured(rng: random.Random, movies: list[TmdbMovie], n: int) -> list[dict[str, object]]:
    forms = []
    for genre in GENRE_WORDS:
        for decade in range(1960, 2020, 10):
            forms.append((genre, decade, decade + 9, "decade"))
        for start, end in ((1980, 1999), (2000, 2009), (2005, 2015), (1990, 2005), (2010, 2016)):
            forms.append((genre, start, end, "between"))
        forms.append((genre, 2010, 2017, "since"))
        forms.append((genre, 1900, 1979, "before"))
    rng.shuffle(forms)
    rows: list[dict[str, object]] = []
    seen_genres: dict[str, int] = defaultdict(int)
    for genre, start, end, form in forms:
        if len(rows) >= n or seen_genres[genre] >= 4:
            continue
        relevant = sorted(
            m.tmdb_id for m in movies if genre in m.genres and m.year is not None and start <= m.year <= end
        )
        if len(relevant) < 10:
            continue
        word = GENRE_WORDS[genre]
        query = {
            "decade": f"{word} movies from the {start}s",
            "between": f"{word} movies between {start} and {end}",
            "since": f"{word} movies released after {start - 1}",
            "before": f"{word} movies from before {end + 1}",
        }[form]
        seen_genres[genre] += 1
        rows.append(
            {
                "type": "structured",
                "query": query,
                "relevant_tmdb_ids": relevant,
                "constraints": {"genres": [genre], "year_from": start, "year_to": end},
            }
        )
    return rows


def build(movies: list[TmdbMovie]) -> list[dict[str, object]]:
    rng = random.Random(SEED)
    movies = [m for m in movies if m.title]
    bands = _bands(movies)
    title_counts: dict[str, int] = defaultdict(int)
    for m in movies:
        title_counts[_norm(m.title)] += 1
    unique = lambda m: title_counts[_norm(m.title)] == 1 and len(_norm(m.title)) >= 2  # noqa: E731
    all_titles = sorted(_norm(m.title) for m in movies)
    rows: list[dict[str, object]] = []
    used: set[int] = set()

    for m in _pick(rng, bands, PER_TYPE, unique, used):
        rows.append({"type": "exact_title", "query": m.title, "relevant_tmdb_ids": [m.tmdb_id]})

    typos: dict[int, str] = {}
    for m in movies:
        if unique(m):
            typo = _typo(rng, m.title)
            if typo and title_counts[_norm(typo)] == 0:
                typos[m.tmdb_id] = typo
    for m in _pick(rng, bands, PER_TYPE, lambda m: m.tmdb_id in typos, used):
        rows.append({"type": "typo_title", "query": typos[m.tmdb_id], "relevant_tmdb_ids": [m.tmdb_id]})

    partials = {m.tmdb_id: p for m in movies if unique(m) and (p := _partial(m.title, all_titles))}
    for m in _pick(rng, bands, PER_TYPE, lambda m: m.tmdb_id in partials, used):
        rows.append({"type": "partial_title", "query": partials[m.tmdb_id], "relevant_tmdb_ids": [m.tmdb_id]})

    by_person: dict[str, set[int]] = defaultdict(set)
    for m in movies:
        for name in {*(c.name for c in m.cast[:5]), *m.directors}:
            by_person[name].add(m.tmdb_id)
    people_used: set[str] = set()
    person_of: dict[int, str] = {}
    for m in movies:
        names = [c.name for c in m.cast[:3]] + list(m.directors)
        names = [n for n in names if len(n.split()) >= 2]
        if names:
            person_of[m.tmdb_id] = rng.choice(names)
    person_used_movies: set[int] = set()
    for m in _pick(rng, bands, PER_TYPE * 3, lambda m: m.tmdb_id in person_of, person_used_movies):
        name = person_of[m.tmdb_id]
        if name in people_used or len(people_used) >= PER_TYPE:
            continue
        people_used.add(name)
        rows.append({"type": "person", "query": name, "relevant_tmdb_ids": sorted(by_person[name])})

    rows.extend(_structured(rng, movies, PER_TYPE))

    plots = {m.tmdb_id: p for m in sorted(movies, key=lambda m: m.tmdb_id) if (p := _plot(rng, m))}
    for m in _pick(rng, bands, PER_TYPE, lambda m: m.tmdb_id in plots, used):
        rows.append({"type": "plot", "query": plots[m.tmdb_id], "relevant_tmdb_ids": [m.tmdb_id]})

    counters: dict[str, int] = defaultdict(int)
    out = []
    for row in rows:
        counters[str(row["type"])] += 1
        out.append({"id": f"{row['type']}-{counters[str(row['type'])]:03d}", **row})
    return out


def main() -> None:
    movies = asyncio.run(load_tmdb5000(DATASET))
    rows = build(movies)
    with OUT.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[str(row["type"])] += 1
    print(json.dumps({"written": str(OUT), "queries": len(rows), "by_type": counts}))


if __name__ == "__main__":
    main()
