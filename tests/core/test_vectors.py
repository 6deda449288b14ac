from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
import qdrant_edge as qe

from media_gateway.core.embeddings import Embedder, get_embedder
from media_gateway.core.vectors import (
    WRITE_BATCH,
    EdgeVectorIndex,
    Range,
    VectorDimensionMismatchError,
    VectorFilter,
    VectorHit,
    VectorIndex,
    VectorIndexError,
    VectorPoint,
    make_vector_index,
)
from tests.conftest import make_settings

DIM = 384

CATALOG: list[dict[str, Any]] = [
    {
        "title": "Arrival",
        "type": "movie",
        "genres": ["Science Fiction", "Drama"],
        "year": 2016,
        "popularity": 61.2,
        "platforms": ["netflix", "prime"],
        "overview": "A linguist works with the military to communicate with alien lifeforms after twelve "
        "mysterious spacecraft appear around the world.",
    },
    {
        "title": "The Martian",
        "type": "movie",
        "genres": ["Science Fiction", "Adventure"],
        "year": 2015,
        "popularity": 70.5,
        "platforms": ["disney"],
        "overview": "An astronaut becomes stranded on Mars after his team assume him dead, and must rely "
        "on his ingenuity to signal to Earth that he is alive.",
    },
    {
        "title": "Paddington 2",
        "type": "movie",
        "genres": ["Family", "Comedy"],
        "year": 2017,
        "popularity": 25.0,
        "platforms": ["netflix"],
        "overview": "A friendly bear from Peru searches for the thief who stole a rare pop-up book he "
        "bought as a present for his aunt.",
    },
    {
        "title": "The Great British Bake Off",
        "type": "series",
        "genres": ["Reality"],
        "year": 2010,
        "popularity": 18.3,
        "platforms": ["netflix"],
        "overview": "Amateur bakers compete in a tent in the English countryside, tackling cakes, "
        "breads and pastries to be crowned the best.",
    },
    {
        "title": "Chernobyl",
        "type": "series",
        "genres": ["Drama", "History"],
        "year": 2019,
        "popularity": 55.1,
        "platforms": ["max"],
        "overview": "The true story of the 1986 nuclear disaster and the scientists who sacrificed "
        "everything to contain the radiation.",
    },
    {
        "title": "Jaws",
        "type": "movie",
        "genres": ["Thriller", "Horror"],
        "year": 1975,
        "popularity": 40.7,
        "platforms": ["prime"],
        "overview": "A police chief, a marine biologist and a fisherman hunt a giant great white shark "
        "terrorizing a beach resort town.",
    },
    {
        "title": "Spirited Away",
        "type": "movie",
        "genres": ["Animation", "Fantasy"],
        "year": 2001,
        "popularity": 80.9,
        "platforms": ["max"],
        "overview": "A young girl wanders into a world ruled by gods and witches where humans are "
        "changed into beasts, and must work in a bathhouse to free her parents.",
    },
    {
        "title": "Planet Earth",
        "type": "series",
        "genres": ["Documentary"],
        "year": 2006,
        "popularity": 33.3,
        "platforms": ["prime", "max"],
        "overview": "A nature documentary exploring the planet's habitats and the wildlife of deserts, "
        "oceans, jungles and ice.",
    },
]
IDS = {item["title"]: uuid.uuid5(uuid.NAMESPACE_URL, f"test:{item['title']}") for item in CATALOG}


@pytest.fixture(scope="module")
async def embedder() -> AsyncIterator[Embedder]:
    shared = get_embedder(make_settings())
    yield shared
    await shared.aclose()


@pytest.fixture(scope="module")
async def points(embedder: Embedder) -> list[VectorPoint]:
    vectors = await embedder.embed([item["overview"] for item in CATALOG])
    return [
        VectorPoint(
            # Half as strings, half as UUIDs: both are accepted.
            id=str(IDS[item["title"]]) if i % 2 else IDS[item["title"]],
            vector=vectors[i],
            payload={k: v for k, v in item.items() if k != "overview"},
        )
        for i, item in enumerate(CATALOG)
    ]


@pytest.fixture
async def index(tmp_path: Path, points: list[VectorPoint]) -> AsyncIterator[EdgeVectorIndex]:
    idx = EdgeVectorIndex(tmp_path / "content", DIM)
    await idx.open()
    await idx.upsert(points)
    yield idx
    await idx.aclose()


def titles(hits: list[VectorHit]) -> list[str]:
    return [hit.payload["title"] for hit in hits]


async def search(
    index: VectorIndex, embedder: Embedder, text: str, limit: int = 3, flt: VectorFilter | None = None
) -> list[VectorHit]:
    return await index.query(await embedder.embed_one(text), limit, flt)


async def test_nearest_neighbour_is_the_matching_title(index: EdgeVectorIndex, embedder: Embedder) -> None:
    assert isinstance(index, VectorIndex)
    assert await index.count() == len(CATALOG)
    hits = await search(index, embedder, "a shark attacks swimmers at the beach")
    assert titles(hits)[0] == "Jaws"
    assert hits[0].id == IDS["Jaws"]
    assert isinstance(hits[0].id, uuid.UUID)
    assert hits[0].payload["genres"] == ["Thriller", "Horror"]
    assert hits[0].score > hits[1].score >= hits[2].score
    hits = await search(index, embedder, "astronaut left alone on another planet")
    assert titles(hits)[0] == "The Martian"


async def test_query_score_is_cosine_similarity(
    index: EdgeVectorIndex, embedder: Embedder, points: list[VectorPoint]
) -> None:
    query = await embedder.embed_one("bakers make cakes")
    [hit] = await index.query(query, limit=1)
    stored = np.asarray(points[3].vector, dtype=np.float32)
    assert hit.payload["title"] == "The Great British Bake Off"
    assert hit.score == pytest.approx(float(query @ stored), abs=1e-4)


async def test_keyword_filters_keep_only_matching_points(index: EdgeVectorIndex, embedder: Embedder) -> None:
    aliens = "aliens land on earth and scientists try to talk to them"
    series = await search(index, embedder, aliens, limit=10, flt=VectorFilter(match={"type": "series"}))
    assert set(titles(series)) == {"The Great British Bake Off", "Chernobyl", "Planet Earth"}

    drama = await search(index, embedder, aliens, limit=10, flt=VectorFilter(match={"genres": ["Drama"]}))
    assert titles(drama)[0] == "Arrival"
    assert set(titles(drama)) == {"Arrival", "Chernobyl"}

    any_of = VectorFilter(match={"genres": ["Comedy", "Documentary"], "type": "movie"})
    assert titles(await search(index, embedder, aliens, limit=10, flt=any_of)) == ["Paddington 2"]

    on_netflix = VectorFilter(match={"platforms": ["netflix"]}, exclude={"type": "series"})
    assert set(titles(await search(index, embedder, aliens, limit=10, flt=on_netflix))) == {
        "Arrival",
        "Paddington 2",
    }
    assert await index.count(VectorFilter(match={"platforms": ["max"]})) == 3


async def test_nearest_ids_are_the_query_ids_as_text(index: EdgeVectorIndex, embedder: Embedder) -> None:
    query = await embedder.embed_one("aliens land on earth")
    drama = VectorFilter(match={"genres": ["Drama"]})
    for flt, threshold in ((None, None), (drama, None), (None, 0.2)):
        hits = await index.query(query, limit=5, filter=flt, score_threshold=threshold, with_payload=False)
        ids = await index.nearest_ids(query, limit=5, filter=flt, score_threshold=threshold)
        assert ids == [str(hit.id) for hit in hits]
        assert ids
    assert all(str(uuid.UUID(i)) == i for i in ids)


async def test_range_filters(index: EdgeVectorIndex, embedder: Embedder) -> None:
    from_2001_to_2015 = VectorFilter(ranges={"year": Range(gte=2001, lte=2015)})
    hits = await search(index, embedder, "space", limit=10, flt=from_2001_to_2015)
    assert set(titles(hits)) == {"The Martian", "The Great British Bake Off", "Spirited Away", "Planet Earth"}

    popular = VectorFilter(ranges={"popularity": Range(gt=60.0)}, exclude={"genres": ["Animation"]})
    hits = await search(index, embedder, "space", limit=10, flt=popular)
    assert set(titles(hits)) == {"Arrival", "The Martian"}


async def test_exclude_ids_and_pagination(index: EdgeVectorIndex, embedder: Embedder) -> None:
    query = "astronaut left alone on another planet"
    first_page = await search(index, embedder, query, limit=2)
    no_martian = VectorFilter(exclude_ids=frozenset({IDS["The Martian"]}))
    hits = await search(index, embedder, query, limit=10, flt=no_martian)
    assert "The Martian" not in titles(hits)
    assert len(hits) == len(CATALOG) - 1
    second_page = await index.query(await embedder.embed_one(query), limit=2, offset=2)
    everything = await search(index, embedder, query, limit=4)
    assert titles(first_page) + titles(second_page) == titles(everything)


async def test_delete_removes_points(index: EdgeVectorIndex, embedder: Embedder) -> None:
    await index.delete([IDS["Jaws"], str(IDS["Paddington 2"]), uuid.uuid4()])
    assert await index.count() == len(CATALOG) - 2
    hits = await search(index, embedder, "a shark attacks swimmers at the beach", limit=10)
    assert "Jaws" not in titles(hits)
    assert "Paddington 2" not in titles(hits)


async def test_upsert_replaces_an_existing_point(
    index: EdgeVectorIndex, embedder: Embedder, points: list[VectorPoint]
) -> None:
    jaws = points[5]
    await index.upsert([VectorPoint(jaws.id, jaws.vector, {**jaws.payload, "platforms": ["netflix"]})])
    assert await index.count() == len(CATALOG)
    [hit] = await search(index, embedder, "shark", limit=1, flt=VectorFilter(match={"platforms": "netflix"}))
    assert hit.payload["title"] == "Jaws"


async def test_data_survives_reopen(tmp_path: Path, embedder: Embedder, points: list[VectorPoint]) -> None:
    settings = make_settings(data_dir=tmp_path)
    index = make_vector_index(settings, DIM)
    assert isinstance(index, EdgeVectorIndex)
    assert index.path == (tmp_path / "vectors" / "content").resolve()
    await index.open()
    await index.upsert(points)
    await index.delete([IDS["Chernobyl"]])
    await index.aclose()

    reopened = make_vector_index(settings, DIM)
    await reopened.open()
    try:
        assert await reopened.count() == len(CATALOG) - 1
        hits = await search(reopened, embedder, "a bear looking for a stolen book", limit=1)
        assert hits[0].id == IDS["Paddington 2"]
        assert hits[0].payload["platforms"] == ["netflix"]
        assert await reopened.count(VectorFilter(match={"type": "series"})) == 2
    finally:
        await reopened.aclose()

    # The payload indexes were created with the shard and persisted with it.
    shard = qe.EdgeShard.load(str(tmp_path / "vectors" / "content"))
    try:
        schema = shard.info().payload_schema
        assert schema["genres"].data_type == qe.PayloadSchemaType.Keyword
        assert schema["type"].data_type == qe.PayloadSchemaType.Keyword
        assert schema["year"].data_type == qe.PayloadSchemaType.Integer
        assert schema["popularity"].data_type == qe.PayloadSchemaType.Float
        assert {"platforms", "regions", "monetization"} <= set(schema)
    finally:
        shard.close()


async def test_reopen_with_another_dimension_fails(tmp_path: Path, points: list[VectorPoint]) -> None:
    path = tmp_path / "content"
    first = EdgeVectorIndex(path, DIM)
    await first.open()
    await first.upsert(points[:2])
    await first.aclose()

    wrong = EdgeVectorIndex(path, 1536)
    with pytest.raises(VectorDimensionMismatchError, match="384-d"):
        await wrong.open()
    assert not wrong.is_open

    # The failed attempt must leave the shard intact and unlocked.
    again = EdgeVectorIndex(path, DIM)
    await again.open()
    try:
        assert await again.count() == 2
    finally:
        await again.aclose()


async def test_indexes_at_one_path_share_the_shard(tmp_path: Path, points: list[VectorPoint]) -> None:
    # Several services in one process open the same directory; the engine locks it per open.
    path = tmp_path / "content"
    writer = EdgeVectorIndex(path, DIM)
    reader = EdgeVectorIndex(path, DIM)
    await writer.open()
    await reader.open()
    await writer.upsert(points[:3])
    assert await reader.count() == 3
    with pytest.raises(VectorDimensionMismatchError):
        await EdgeVectorIndex(path, 8).open()
    await writer.aclose()
    assert await reader.count() == 3
    with pytest.raises(VectorIndexError, match="not open"):
        await writer.count()
    await reader.aclose()
    # The last owner released the engine's lock.
    qe.EdgeShard.load(str(path)).close()


async def test_invalid_points_are_rejected_before_any_write(
    index: EdgeVectorIndex, points: list[VectorPoint]
) -> None:
    fresh = VectorPoint(uuid.uuid4(), points[0].vector, {"title": "valid"})
    with pytest.raises(ValueError, match="shape"):
        await index.upsert([fresh, VectorPoint(uuid.uuid4(), [0.1] * (DIM - 1), {})])
    with pytest.raises(ValueError, match="UUID"):
        await index.upsert([fresh, VectorPoint("tt0075148", points[0].vector, {})])
    with pytest.raises(ValueError, match="zeros"):
        await index.upsert([fresh, VectorPoint(uuid.uuid4(), np.zeros(DIM), {})])
    with pytest.raises(ValueError, match="NaN"):
        await index.upsert([fresh, VectorPoint(uuid.uuid4(), [float("nan")] * DIM, {})])
    with pytest.raises(ValueError, match="JSON"):
        await index.upsert([fresh, VectorPoint(uuid.uuid4(), points[0].vector, {"when": object()})])
    assert await index.count() == len(CATALOG)
    with pytest.raises(ValueError, match="shape"):
        await index.query([1.0, 0.0], limit=3)
    with pytest.raises(ValueError, match="limit"):
        await index.query(points[0].vector, limit=0)


def test_filter_validation() -> None:
    with pytest.raises(pydantic.ValidationError, match="empty list"):
        VectorFilter(match={"genres": []})
    with pytest.raises(pydantic.ValidationError, match="at least one"):
        Range()
    with pytest.raises(pydantic.ValidationError):
        VectorFilter(match={"genres": ["Drama", 3.5]})
    with pytest.raises(pydantic.ValidationError):
        VectorFilter(matches={"genres": ["Drama"]})  # type: ignore[call-arg]


async def test_use_before_open_fails(tmp_path: Path) -> None:
    index = EdgeVectorIndex(tmp_path / "never-opened", DIM)
    with pytest.raises(VectorIndexError, match="open"):
        await index.count()
    await index.aclose()  # closing an unopened index is harmless


async def test_large_batches_are_written_in_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((WRITE_BATCH * 2 + 17, DIM)).astype(np.float32)
    ids = [uuid.uuid4() for _ in vectors]
    index = EdgeVectorIndex(tmp_path / "bulk", DIM)
    await index.open()
    try:
        await index.upsert(
            [
                VectorPoint(i, v, {"year": 1900 + n % 100})
                for n, (i, v) in enumerate(zip(ids, vectors, strict=True))
            ]
        )
        assert await index.count() == len(ids)
        await index.optimize()
        [hit] = await index.query(vectors[-1], limit=1)
        assert hit.id == ids[-1]
        assert hit.score == pytest.approx(1.0, abs=1e-4)
        assert await index.count(VectorFilter(ranges={"year": Range(lt=1950)})) == sum(
            1 for n in range(len(ids)) if n % 100 < 50
        )
        await index.delete(ids[: WRITE_BATCH + 1])
        assert await index.count() == len(ids) - WRITE_BATCH - 1
        await index.flush()
    finally:
        await index.aclose()
