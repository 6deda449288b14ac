"""`ReplicaVectorIndex` over the real `catalog.content_vectors` table: loading at open, following
writes, deletes and model changes by polling, refusing writes, and never skipping a change that
commits late."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.catalog import repository as catalog
from media_gateway.catalog.vectors import CatalogVectorChanges
from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings, VectorSettings
from media_gateway.core.vectors import ReplicaVectorIndex, VectorFilter, VectorIndexError, VectorPoint

DIM = 8
MODEL = "test:model-a"
OTHER = "test:model-b"
POLL = VectorSettings(replica_poll_sec=0.05)


def unit(seed: int, dim: int = DIM) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture
async def engine(scratch_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(scratch_settings)
    yield engine
    await engine.dispose()


async def write(
    engine: AsyncEngine, items: dict[uuid.UUID, int], model: str = MODEL, dim: int = DIM, genre: str = "Drama"
) -> None:
    async with engine.begin() as conn:
        await catalog.store_vectors(
            conn, {i: (unit(seed, dim), {"genres": [genre]}) for i, seed in items.items()}, model, dim
        )


@asynccontextmanager
async def replica(
    engine: AsyncEngine, root: Path, model: str = MODEL, dim: int = DIM, **kwargs: object
) -> AsyncIterator[ReplicaVectorIndex]:
    index = ReplicaVectorIndex(
        CatalogVectorChanges(engine), model_id=model, dimension=dim, root=root, settings=POLL, **kwargs
    )  # type: ignore[arg-type]
    await index.open()
    try:
        yield index
    finally:
        await index.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, "the replica did not catch up"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_open_loads_everything_and_queries_answer_from_the_private_shard(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    ids = {uuid.uuid4(): seed for seed in range(2_500)}
    await write(engine, ids)
    # Pages of 1,000: the load reads past its first page.
    async with replica(engine, tmp_path) as index, replica(engine, tmp_path) as twin:
        assert await index.count() == len(ids)
        some, seed = next(iter(ids.items()))
        assert (await index.nearest_ids(unit(seed), 1)) == [str(some)]
        hit = (await index.query(unit(seed), 1))[0]
        assert hit.payload == {"genres": ["Drama"]}
        assert np.allclose((await index.vectors([some]))[some], unit(seed), atol=1e-6)
        # Two replicas in one process never share a directory.
        assert index.path is not None
        assert twin.path is not None
        assert index.path != twin.path
        assert index.path.parent == twin.path.parent == tmp_path
        path = index.path
        assert path.is_dir()
    assert not path.exists()


async def test_writes_are_refused(engine: AsyncEngine, tmp_path: Path) -> None:
    async with replica(engine, tmp_path) as index:
        with pytest.raises(VectorIndexError, match="read-only"):
            await index.upsert([VectorPoint(uuid.uuid4(), unit(1))])
        with pytest.raises(VectorIndexError, match="read-only"):
            await index.replace_payloads({uuid.uuid4(): {}})
        with pytest.raises(VectorIndexError, match="read-only"):
            await index.delete([uuid.uuid4()])


async def test_new_vectors_payload_changes_and_deleted_titles_reach_an_open_replica(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    first = {uuid.uuid4(): seed for seed in range(3)}
    await write(engine, first)
    async with replica(engine, tmp_path) as index:
        assert await index.count() == 3
        later = uuid.uuid4()
        await write(engine, {later: 99})

        async def has_later() -> bool:
            return await index.nearest_ids(unit(99), 1) == [str(later)]

        await eventually(has_later)

        # A payload change alone (what an offer change does), seen through a filter on it.
        changed = next(iter(first))
        async with engine.begin() as conn:
            assert await catalog.store_vector_payloads(conn, {changed: {"genres": ["Comedy"]}}, MODEL) == {
                changed
            }
        comedy = VectorFilter(match={"genres": "Comedy"})

        async def is_comedy() -> bool:
            return await index.count(comedy) == 1

        await eventually(is_comedy)

        # A title deleted from the catalog leaves a tombstone the replica follows.
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO catalog.content (id, kind, title, title_normalized, content_hash)"
                    " VALUES (:id, 'movie', 'Gone', 'gone', 'x')"
                ),
                {"id": later},
            )
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM catalog.content WHERE id = :id"), {"id": later})

        async def later_gone() -> bool:
            return await index.count() == 3

        await eventually(later_gone)
        assert str(later) not in await index.nearest_ids(unit(99), 10)
    # A replica opened now starts without it too.
    async with replica(engine, tmp_path) as fresh:
        assert await fresh.count() == 3
        assert await fresh.count(comedy) == 1


async def test_vectors_of_another_model_are_left_out_and_said_so(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ours = {uuid.uuid4(): seed for seed in range(3)}
    theirs = {uuid.uuid4(): seed for seed in range(10, 14)}
    await write(engine, ours)
    # Another model, and a model of the same name but another size: neither fits our queries.
    await write(engine, dict(list(theirs.items())[:2]), model=OTHER)
    await write(engine, dict(list(theirs.items())[2:]), dim=DIM * 2)
    with caplog.at_level(logging.WARNING, logger="media_gateway.core.vectors.replica"):
        async with replica(engine, tmp_path) as index:
            assert await index.count() == 3
            assert index.foreign_models() == {f"{OTHER} ({DIM}-d)": 2, f"{MODEL} ({DIM * 2}-d)": 2}
            warning = next(r for r in caplog.records if "another embedding model" in r.getMessage())
            assert warning.others == index.foreign_models()  # type: ignore[attr-defined]

            # Ingestion re-embeds them with our model: they join.
            await write(engine, theirs)

            async def all_ours() -> bool:
                return await index.count() == 7

            await eventually(all_ours)
            assert index.foreign_models() == {}

            # And a title re-embedded by another model leaves this replica.
            moved = next(iter(ours))
            await write(engine, {moved: 5}, model=OTHER)

            async def moved_out() -> bool:
                return await index.count() == 6

            await eventually(moved_out)
            assert index.foreign_models() == {f"{OTHER} ({DIM}-d)": 1}

    # Nothing of our model at all: an empty replica, not a failure.
    async with replica(engine, tmp_path, model="test:model-c") as empty:
        assert await empty.count() == 0
        assert sum(empty.foreign_models().values()) == 7


async def test_a_change_that_commits_after_a_later_one_is_not_skipped(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    early, late = uuid.uuid4(), uuid.uuid4()
    async with replica(engine, tmp_path) as index:
        # `early` draws its seq first but commits last; `late` must wait for it (the seq lock), or
        # the replica would move past `early`'s seq before it became visible.
        async with engine.connect() as slow:
            transaction = await slow.begin()
            await catalog.store_vectors(slow, {early: (unit(1), {})}, MODEL, DIM)
            second = asyncio.create_task(write(engine, {late: 2}))
            await asyncio.sleep(0.3)
            await index.sync()
            await transaction.commit()
        await second

        async def both() -> bool:
            return await index.count() == 2

        await eventually(both)


async def test_a_replica_left_behind_by_a_dead_process_is_removed(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    import socket

    dead = tmp_path / f"{socket.gethostname()}-{2**22 + 12345}-deadbeef"
    dead.mkdir()
    # The same pid as ours, not opened by this process: a container restarted with the same pids.
    previous_life = tmp_path / f"{socket.gethostname()}-{os.getpid()}-0ldc0de0"
    previous_life.mkdir()
    foreign_host = tmp_path / "elsewhere-1-cafecafe"
    foreign_host.mkdir()
    async with replica(engine, tmp_path):
        assert not dead.exists()
        assert not previous_life.exists()
        # Another host's directory may belong to a live process there.
        assert foreign_host.exists()
