"""The keyword index on its own: ranking, typos, prefixes, people, filters, writes, hostile input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_gateway.discovery.search import KeywordDoc, KeywordFilters, KeywordIndex
from media_gateway.discovery.search.suggest import prefix_within_one_edit, within_one_edit
from tests.discovery.keyword_corpus import CORPUS, NOLAN, doc


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keyword-index")


@pytest.fixture(scope="module")
async def index(index_dir: Path) -> AsyncIterator[KeywordIndex]:
    built = KeywordIndex(index_dir / "shared")
    await built.build(CORPUS)
    yield built
    await built.aclose()


@pytest.fixture
async def scratch_index(tmp_path: Path) -> AsyncIterator[KeywordIndex]:
    """An index of its own, for tests that write."""
    fresh = KeywordIndex(tmp_path / "index")
    await fresh.build(CORPUS)
    yield fresh
    await fresh.aclose()


async def ids(index: KeywordIndex, text: str, filters: KeywordFilters | None = None) -> list[str]:
    page = await index.search(text, filters, limit=50)
    return [doc_id for doc_id, _ in page.hits]


# -- ranking -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("Alien", "alien"),
        ("aliens", "aliens"),
        ("interstellar", "interstellar"),
        ("The Dark Knight", "dark-knight"),
        ("dark knight", "dark-knight"),
        ("the dark knight rises", "dark-knight-rises"),
        ("DARK", "dark"),
        ("amelie", "amelie"),
        ("Le fabuleux destin d'Amélie Poulain", "amelie"),
        ("千と千尋の神隠し", "spirited-away"),
    ],
)
async def test_an_exact_title_ranks_first(index: KeywordIndex, text: str, first: str) -> None:
    assert (await ids(index, text))[0] == first


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("Interstelar", "interstellar"),
        ("intersteller", "interstellar"),
        ("The Shawshenk Redemption", "shawshank"),
        ("shawshank redemtion", "shawshank"),
        ("forest gump", "forrest-gump"),
        ("Amelei", "amelie"),
    ],
)
async def test_typos_recover_the_title(index: KeywordIndex, text: str, first: str) -> None:
    assert (await ids(index, text))[0] == first


async def test_fuzzy_matches_rank_below_exact_ones(index: KeywordIndex) -> None:
    page = await index.search("interstellar")
    scores = dict(page.hits)
    assert scores["interstellar"] > scores["interstellar-wars"]
    typo = dict((await index.search("Interstelar")).hits)
    assert typo["interstellar"] > typo["interstellar-wars"]


async def test_people_and_overview_are_searched(index: KeywordIndex) -> None:
    assert set((await ids(index, "christopher nolan"))[:3]) == {
        "interstellar",
        "dark-knight",
        "dark-knight-rises",
    }
    assert set((await ids(index, "tom hanks"))[:2]) == {"cast-away", "forrest-gump"}
    assert (await ids(index, "Sigourney Wever"))[:2] in (["aliens", "alien"], ["alien", "aliens"])
    # Stemmed plot words: "wormholes" meets "wormhole".
    assert (await ids(index, "wormholes"))[0] == "interstellar"


async def test_total_counts_every_match_and_pages_move_through_them(index: KeywordIndex) -> None:
    everything = await index.search("", limit=5)
    assert everything.total == len(CORPUS)
    assert len(everything.hits) == 5
    second = await index.search("", limit=5, offset=5)
    assert not {i for i, _ in everything.hits} & {i for i, _ in second.hits}
    past_the_end = await index.search("", limit=5, offset=100)
    assert past_the_end.hits == []
    assert past_the_end.total == len(CORPUS)


async def test_blank_text_browses_by_popularity(index: KeywordIndex) -> None:
    browsed = await ids(index, "  ")
    assert browsed[0] == "alien-planet"
    assert browsed[-1] == "no-data"


# -- filters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (KeywordFilters(genres=["Horror"]), {"alien"}),
        (KeywordFilters(genres=["Horror", "Animation"]), {"alien", "spirited-away"}),
        (KeywordFilters(platforms=["netflix"]), {"interstellar", "shawshank", "dark"}),
        (KeywordFilters(regions=["GB"]), {"interstellar", "dark-knight-rises", "shawshank"}),
        (KeywordFilters(monetization=["free"]), {"dark-knight"}),
        (KeywordFilters(platforms=["netflix"], regions=["US"]), {"interstellar", "dark"}),
        # On one offer together: Interstellar is on Netflix (US) and for rent (GB), not rentable on Netflix.
        (KeywordFilters(platforms=["netflix"], monetization=["rent"]), set()),
        (KeywordFilters(platforms=["prime", "tubi"], regions=["US"]), {"cast-away", "dark-knight"}),
        (
            KeywordFilters(year_min=2010),
            {"interstellar", "interstellar-wars", "alien-planet", "dark-knight-rises", "dark"},
        ),
        (KeywordFilters(year_min=1990, year_max=1999), {"shawshank", "forrest-gump"}),
        (KeywordFilters(min_rating=8.45), {"dark-knight", "shawshank", "spirited-away"}),
        (KeywordFilters(max_runtime=125), {"alien", "amelie", "spirited-away"}),
        (KeywordFilters(kind="series"), {"dark"}),
        (KeywordFilters(genres=["Drama"], year_max=2000, min_rating=8.5), {"shawshank"}),
    ],
)
async def test_each_filter_restricts_results(
    index: KeywordIndex, filters: KeywordFilters, expected: set[str]
) -> None:
    assert set(await ids(index, "", filters)) == expected


async def test_filters_do_not_change_the_order_of_text_matches(index: KeywordIndex) -> None:
    plain = await index.search("dark knight")
    filtered = await index.search("dark knight", KeywordFilters(genres=["Action"]))
    assert [i for i, _ in filtered.hits] == [i for i, _ in plain.hits if i != "dark"]
    assert dict(filtered.hits)["dark-knight"] == pytest.approx(dict(plain.hits)["dark-knight"])


@pytest.mark.parametrize(
    "text", ["dark", "dark knight", "alien", "interstellar", "tom hanks", "spirted away"]
)
@pytest.mark.parametrize("filters", [None, KeywordFilters(regions=["US"]), KeywordFilters(year_min=2000)])
async def test_a_short_page_is_the_head_of_a_long_one(
    index: KeywordIndex, text: str, filters: KeywordFilters | None
) -> None:
    # Hybrid search takes its title hits from the head of the keyword page when both would ask the
    # same query: that must be exactly what asking for fewer hits returns.
    long = await index.search(text, filters, limit=200)
    for limit in (1, 2, 3):
        short = await index.search(text, filters, limit=limit)
        assert short.hits == long.hits[:limit]
        assert short.total == long.total


# -- autocomplete --------------------------------------------------------------------------------


async def test_autocomplete_completes_title_prefixes(index: KeywordIndex) -> None:
    found = await index.autocomplete("inter")
    assert [(s.kind, s.id) for s in found[:2]] == [("title", "interstellar"), ("title", "interstellar-wars")]
    assert found[0].title == "Interstellar"
    assert found[0].year == 2014
    assert found[0].content_kind == "movie"
    dark_kn = await index.autocomplete("the dark kn")
    assert {s.id for s in dark_kn[:2]} == {"dark-knight", "dark-knight-rises"}
    # The article may be left out, and the whole title typed is the best match.
    assert (await index.autocomplete("dark knight"))[0].id == "dark-knight"
    assert (await index.autocomplete("dark"))[0].id == "dark"


async def test_autocomplete_tolerates_a_typo(index: KeywordIndex) -> None:
    assert (await index.autocomplete("intersetl"))[0].id == "interstellar"
    assert (await index.autocomplete("shawshenk"))[0].id == "shawshank"


async def test_autocomplete_finds_people_by_first_name_or_surname(index: KeywordIndex) -> None:
    people = [s for s in await index.autocomplete("christ") if s.kind == "person"]
    # Both names start with it; Nolan is in more titles.
    assert [p.title for p in people] == [NOLAN, "Christian Bale"]
    nolan = next(p for p in people if p.title == NOLAN)
    assert nolan.id is None
    assert set(nolan.known_for) == {"interstellar", "dark-knight", "dark-knight-rises"}
    by_surname = await index.autocomplete("nola")
    assert [s.title for s in by_surname if s.kind == "person"] == [NOLAN]
    assert (await index.autocomplete("tom hanks"))[0].title == "Tom Hanks"
    # A typo in a name: found through the fuzzy fallback.
    typo = await index.autocomplete("tom hnaks")
    assert typo[0].kind == "person"
    assert typo[0].title == "Tom Hanks"
    assert set(typo[0].known_for) == {"cast-away", "forrest-gump"}


async def test_autocomplete_respects_the_limit(index: KeywordIndex) -> None:
    assert len(await index.autocomplete("a", limit=3)) == 3
    assert len(await index.autocomplete("a", limit=1)) == 1


# -- writes --------------------------------------------------------------------------------------


async def test_upsert_replaces_and_delete_removes(scratch_index: KeywordIndex) -> None:
    await scratch_index.upsert([doc("alien", "Alien Resurrection", year=1997, popularity=20.0)])
    assert (await ids(scratch_index, "alien resurrection"))[0] == "alien"
    assert (await scratch_index.search("alien", KeywordFilters(year_max=1980))).hits == []
    assert await scratch_index.count() == len(CORPUS)

    await scratch_index.upsert([doc("new", "Zyzzyva Chronicles", people=["Zelda Quux"], popularity=5.0)])
    assert await ids(scratch_index, "zyzzyva") == ["new"]
    assert [s.title for s in await scratch_index.autocomplete("zel")] == ["Zelda Quux"]

    await scratch_index.delete(["new", "missing-id"])
    assert await ids(scratch_index, "zyzzyva") == []
    # The short-prefix cache is dropped with each write; the person went with their only title.
    assert await scratch_index.autocomplete("zel") == []
    assert await scratch_index.count() == len(CORPUS)


async def test_a_rebuild_swaps_generations_without_a_gap(scratch_index: KeywordIndex, tmp_path: Path) -> None:
    before = scratch_index.directory
    assert before is not None
    stop = asyncio.Event()
    seen: list[int] = []

    async def keep_searching() -> None:
        while not stop.is_set():
            seen.append((await scratch_index.search("")).total)

    reader = asyncio.create_task(keep_searching())
    await asyncio.sleep(0.01)
    await scratch_index.build([*CORPUS, doc("extra", "Extra Title")])
    await asyncio.sleep(0.01)
    stop.set()
    await reader
    assert seen
    # Every search saw a whole index: the old one or the new one, never an empty or partial one.
    assert set(seen) <= {len(CORPUS), len(CORPUS) + 1}
    assert seen[-1] == len(CORPUS) + 1
    after = scratch_index.directory
    assert after is not None
    assert after != before
    assert not before.exists()
    assert (tmp_path / "index" / "current").resolve() == after.resolve()


async def test_writes_before_any_build_start_an_empty_index(tmp_path: Path) -> None:
    fresh = KeywordIndex(tmp_path / "unbuilt")
    try:
        assert (await fresh.search("anything")).hits == []
        assert await fresh.autocomplete("any") == []
        await fresh.upsert([doc("one", "Only One")])
        assert await ids(fresh, "only one") == ["one"]
    finally:
        await fresh.aclose()


async def test_a_build_from_an_async_source(tmp_path: Path) -> None:
    async def source() -> AsyncIterator[KeywordDoc]:
        for item in CORPUS:
            yield item

    fresh = KeywordIndex(tmp_path / "async")
    try:
        stats = await fresh.build(source())
        assert stats.documents == len(CORPUS)
        assert await fresh.count() == len(CORPUS)
    finally:
        await fresh.aclose()


# -- hostile input -------------------------------------------------------------------------------

HOSTILE = [
    'title:"',
    "AND OR (",
    "*",
    "?",
    "title:*",
    "id:interstellar",
    "year:[1900 TO 3000]",
    '+-!(){}[]^"~*?:\\/',
    "interstellar~2",
    "/.*/",
    "a" * 10_000,
    "interstellar " * 500,
    "\x00\x01\x1f",
    "\ud800 lone surrogate",
    "😀🎬 emoji",
    "\ufdfa \U0001d518\U0001d52b\U0001d526 \u216b",  # ligature, Fraktur letters, Roman numeral
    "   ",
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_input_never_raises(index: KeywordIndex, text: str) -> None:
    page = await index.search(text, KeywordFilters(genres=[text], platforms=[text], kind=text))
    assert page.total == 0
    await index.search(text)
    await index.autocomplete(text)


async def test_query_syntax_is_not_interpreted(index: KeywordIndex) -> None:
    # A field name typed as text is just a word: nothing is titled "id" or "interstellar2".
    assert await ids(index, "id:interstellar") == ["interstellar", "interstellar-wars"]
    assert await ids(index, "year:[1900 TO 3000]") == []


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises(index: KeywordIndex, text: str) -> None:
    index.search_sync(text, None, 10, 0)
    index.autocomplete_sync(text, 10)


# -- the name matcher behind people autocomplete ---------------------------------------------------


def osa_distance(a: str, b: str) -> int:
    rows = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


@given(a=st.text("abc", max_size=7), b=st.text("abc", max_size=8))
def test_edit_checks_agree_with_the_definition(a: str, b: str) -> None:
    assert within_one_edit(a, b) == (osa_distance(a, b) <= 1)
    assert prefix_within_one_edit(a, b) == any(osa_distance(a, b[:k]) <= 1 for k in range(len(b) + 1))
