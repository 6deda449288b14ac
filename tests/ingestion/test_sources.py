"""Catalog sources against the real PostgreSQL (cursors) and, for the aggregator, a fake provider
speaking its HTTP protocol on a real socket."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings
from media_gateway.ingestion.models import source_cursors
from media_gateway.ingestion.schemas import RawBatch
from media_gateway.ingestion.sources import (
    API_KEY_HEADER,
    AggregatorAuthError,
    AggregatorResponseError,
    AggregatorSource,
    AggregatorUnavailableError,
    CatalogSource,
    FileFeedSource,
)
from media_gateway.ingestion.sources.aggregator import retry_after_seconds
from media_gateway.ingestion.sources.repository import delete_cursor, get_cursor, set_cursor
from tests.fakes.aggregator_server import DEFAULT_API_KEY, FakeAggregatorServer, encode_cursor


@pytest.fixture
async def engine(migrated_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(migrated_settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def source_name() -> str:
    return f"test-{uuid.uuid4().hex}"


async def drain(source: CatalogSource, *, commit: bool = True) -> list[RawBatch]:
    batches = []
    async for batch in source.fetch():
        batches.append(batch)
        if commit:
            await source.commit(batch)
    return batches


def ids(batches: list[RawBatch]) -> list[str]:
    return [record["id"] for batch in batches for record in batch.records]


def jsonl(*records: Any) -> str:
    return "".join((r if isinstance(r, str) else orjson.dumps(r).decode()) + "\n" for r in records)


# -- cursor repository -----------------------------------------------------------------------------


async def test_cursor_upsert_keeps_one_row_with_the_latest_value(
    engine: AsyncEngine, source_name: str
) -> None:
    async with engine.begin() as conn:
        assert await get_cursor(conn, source_name) is None
        await set_cursor(conn, source_name, "a.jsonl:1")
        await set_cursor(conn, source_name, "a.jsonl:9")
    async with engine.connect() as conn:
        assert await get_cursor(conn, source_name) == "a.jsonl:9"
        rows = await conn.scalar(
            select(func.count()).select_from(source_cursors).where(source_cursors.c.source == source_name)
        )
    assert rows == 1
    async with engine.begin() as conn:
        assert await delete_cursor(conn, source_name) is True
        assert await get_cursor(conn, source_name) is None


# -- file feeds ------------------------------------------------------------------------------------

NETFLIX_LINES = jsonl(
    {"id": "n1"},
    {"id": "n2"},
    "not json {",
    {"id": "n3"},
    "",
    {"id": "n4"},
    [1, 2],
    {"id": "n5"},
    {"id": "n6"},
    {"id": "n7"},
)


@pytest.fixture
def feed_dir(tmp_path: Path) -> Path:
    (tmp_path / "hulu.jsonl").write_text(jsonl({"id": "h1"}, {"id": "h2"}, {"id": "h3"}))
    (tmp_path / "netflix.jsonl").write_text(NETFLIX_LINES)
    (tmp_path / "README.txt").write_text("not a feed\n")
    return tmp_path


async def test_file_source_batches_per_platform_and_counts_malformed_lines(
    migrated_settings: Settings, engine: AsyncEngine, feed_dir: Path, source_name: str
) -> None:
    source = FileFeedSource(migrated_settings, engine, feed_dir, name=source_name, batch_size=3)
    assert isinstance(source, CatalogSource)

    batches = await drain(source, commit=False)

    assert [(b.platform, [r["id"] for r in b.records], b.cursor) for b in batches] == [
        ("hulu", ["h1", "h2", "h3"], "hulu.jsonl:3"),
        ("netflix", ["n1", "n2", "n3"], "netflix.jsonl:4"),
        ("netflix", ["n4", "n5", "n6"], "netflix.jsonl:9"),
        ("netflix", ["n7"], "netflix.jsonl:10"),
    ]
    assert all(b.source == source_name for b in batches)
    assert source.stats.skipped == 2
    assert source.stats.records == 10
    assert any("netflix.jsonl:3" in p and "invalid JSON" in p for p in source.stats.problems)
    assert any("netflix.jsonl:7" in p and "not a JSON object" in p for p in source.stats.problems)


async def test_file_source_resumes_after_the_last_committed_batch(
    migrated_settings: Settings, engine: AsyncEngine, feed_dir: Path, source_name: str
) -> None:
    first = FileFeedSource(migrated_settings, engine, feed_dir, name=source_name, batch_size=3)
    seen = 0
    async for batch in first.fetch():
        await first.commit(batch)
        seen += 1
        if seen == 2:  # a crash after the second batch was written
            break

    # A new instance (a new process) on the same database resumes where the commits stopped.
    second = FileFeedSource(migrated_settings, engine, feed_dir, name=source_name, batch_size=3)
    assert ids(await drain(second)) == ["n4", "n5", "n6", "n7"]

    third = FileFeedSource(migrated_settings, engine, feed_dir, name=source_name, batch_size=3)
    assert await drain(third) == []

    # Growth: lines appended to the last file and a new file that sorts later.
    with (feed_dir / "netflix.jsonl").open("a") as fh:
        fh.write(jsonl({"id": "n8"}))
    (feed_dir / "prime_video.jsonl").write_text(jsonl({"id": "p1"}))
    fourth = FileFeedSource(migrated_settings, engine, feed_dir, name=source_name, batch_size=3)
    batches = await drain(fourth)
    assert [(b.platform, ids([b])) for b in batches] == [("netflix", ["n8"]), ("prime_video", ["p1"])]


async def test_file_source_refetches_uncommitted_batches(
    migrated_settings: Settings, engine: AsyncEngine, feed_dir: Path, source_name: str
) -> None:
    source = FileFeedSource(migrated_settings, engine, feed_dir, name=source_name, batch_size=3)
    first = await drain(source, commit=False)
    again = FileFeedSource(migrated_settings, engine, feed_dir, name=source_name, batch_size=3)
    assert ids(await drain(again, commit=False)) == ids(first)
    assert len(ids(first)) == 10


async def test_single_file_feed_uses_the_settings_batch_size(
    migrated_settings: Settings, engine: AsyncEngine, tmp_path: Path, source_name: str
) -> None:
    feed = tmp_path / "peacock.jsonl"
    feed.write_text(jsonl(*({"id": f"p{i}"} for i in range(5))))
    settings = migrated_settings.model_copy(
        update={"ingestion": migrated_settings.ingestion.model_copy(update={"batch_size": 2})}
    )
    batches = await drain(FileFeedSource(settings, engine, feed, name=source_name))
    assert [len(b.records) for b in batches] == [2, 2, 1]
    assert {b.platform for b in batches} == {"peacock"}
    assert batches[-1].cursor == "peacock.jsonl:5"
    async with engine.connect() as conn:
        assert await get_cursor(conn, source_name) == "peacock.jsonl:5"


async def test_incomplete_last_line_is_left_for_the_next_run(
    migrated_settings: Settings, engine: AsyncEngine, tmp_path: Path, source_name: str
) -> None:
    feed = tmp_path / "hulu.jsonl"
    feed.write_text(jsonl({"id": "h1"}) + '{"id": "h')  # the writer is mid-line
    source = FileFeedSource(migrated_settings, engine, feed, name=source_name)
    assert ids(await drain(source)) == ["h1"]
    with feed.open("a") as fh:
        fh.write('2"}\n')
    assert ids(await drain(FileFeedSource(migrated_settings, engine, feed, name=source_name))) == ["h2"]


async def test_unreadable_persisted_cursor_is_refused(
    migrated_settings: Settings, engine: AsyncEngine, feed_dir: Path, source_name: str
) -> None:
    async with engine.begin() as conn:
        await set_cursor(conn, source_name, "garbage")
    source = FileFeedSource(migrated_settings, engine, feed_dir, name=source_name)
    with pytest.raises(ValueError, match="file feed cursor"):
        await drain(source)


# -- aggregator ------------------------------------------------------------------------------------

PLATFORMS = ("netflix", "hulu", "peacock")


def changes(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {"platform": PLATFORMS[i % len(PLATFORMS)], "record": {"id": f"c{i}", "title": f"Title {i}"}}
        for i in range(start, start + count)
    ]


@pytest.fixture
def aggregator() -> Iterator[FakeAggregatorServer]:
    with FakeAggregatorServer() as server:
        yield server


def aggregator_settings(base: Settings, server: FakeAggregatorServer, **ingestion: Any) -> Settings:
    values: dict[str, Any] = {
        "aggregator_url": server.url,
        "aggregator_api_key": DEFAULT_API_KEY,
        "aggregator_page_size": 10,
        "aggregator_rate_per_sec": 1000.0,
        **ingestion,
    }
    return base.model_copy(
        update={
            "ingestion": base.ingestion.model_validate(values),
            "http": base.http.model_copy(update={"backoff_base_sec": 0.01, "backoff_max_sec": 0.05}),
        }
    )


async def test_aggregator_pages_through_changes_and_resumes_from_the_persisted_cursor(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    aggregator.add_changes("US", changes(0, 25))
    settings = aggregator_settings(migrated_settings, aggregator)

    batches = await drain(AggregatorSource(settings, engine, name=source_name))

    assert sorted(ids(batches), key=lambda i: int(i[1:])) == [f"c{i}" for i in range(25)]
    # Three pages, each split into one batch per platform, each batch holding a single platform.
    assert len(batches) == 9
    for batch in batches:
        assert {r["id"] for r in batch.records} <= {
            c["record"]["id"] for c in changes(0, 25) if c["platform"] == batch.platform
        }
    requests = aggregator.requests()
    assert len(requests) == 3
    assert all(r.headers[API_KEY_HEADER.lower()] == DEFAULT_API_KEY for r in requests)
    assert all(r.params["country"] == "US" and r.params["limit"] == "10" for r in requests)
    assert "since" not in requests[0].params
    assert [r.params.get("since") for r in requests[1:]] == [encode_cursor("US", 10), encode_cursor("US", 20)]
    async with engine.connect() as conn:
        assert orjson.loads(await get_cursor(conn, source_name) or "") == {"US": encode_cursor("US", 25)}

    # A second run (new instance, as after a restart) asks only for what changed since.
    aggregator.add_changes("US", changes(25, 4))
    again = await drain(AggregatorSource(settings, engine, name=source_name))
    assert sorted(ids(again)) == ["c25", "c26", "c27", "c28"]
    assert aggregator.requests()[3].params["since"] == encode_cursor("US", 25)
    assert aggregator.calls() == 4


async def test_aggregator_never_moves_past_a_page_before_its_last_batch(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    aggregator.add_changes("US", changes(0, 20))
    settings = aggregator_settings(migrated_settings, aggregator)
    source = AggregatorSource(settings, engine, name=source_name)
    async for batch in source.fetch():
        # The first platform of page one is written and committed, then the process dies.
        await source.commit(batch)
        break

    resumed = await drain(AggregatorSource(settings, engine, name=source_name))
    # Page one is fetched again in full (at-least-once), so nothing of it is lost.
    assert sorted(ids(resumed), key=lambda i: int(i[1:])) == [f"c{i}" for i in range(20)]
    assert "since" not in aggregator.requests()[1].params


async def test_aggregator_keeps_a_cursor_per_country(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    aggregator.add_changes("US", changes(0, 3))
    aggregator.add_changes("GB", changes(100, 2))
    settings = aggregator_settings(migrated_settings, aggregator, aggregator_countries=["US", "gb"])
    assert sorted(ids(await drain(AggregatorSource(settings, engine, name=source_name)))) == [
        "c0",
        "c1",
        "c100",
        "c101",
        "c2",
    ]
    aggregator.add_changes("GB", changes(102, 1))
    again = await drain(AggregatorSource(settings, engine, name=source_name))
    assert ids(again) == ["c102"]


async def test_aggregator_retries_a_503(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    aggregator.add_changes("US", changes(0, 5))
    aggregator.fail_next(503, times=2)
    settings = aggregator_settings(migrated_settings, aggregator, aggregator_retries=3)
    batches = await drain(AggregatorSource(settings, engine, name=source_name))
    assert len(ids(batches)) == 5
    assert [r.status for r in aggregator.requests()] == [503, 503, 200]


async def test_aggregator_gives_up_after_its_retries(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    aggregator.add_changes("US", changes(0, 5))
    aggregator.fail_next(502, times=5)
    settings = aggregator_settings(migrated_settings, aggregator, aggregator_retries=1)
    with pytest.raises(AggregatorUnavailableError, match="HTTP 502"):
        await drain(AggregatorSource(settings, engine, name=source_name))
    assert aggregator.calls() == 2
    async with engine.connect() as conn:
        assert await get_cursor(conn, source_name) is None


async def test_aggregator_waits_out_a_429_for_its_retry_after(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    aggregator.add_changes("US", changes(0, 5))
    aggregator.fail_next(429, retry_after="1")
    settings = aggregator_settings(migrated_settings, aggregator)
    batches = await drain(AggregatorSource(settings, engine, name=source_name))
    first, second = aggregator.requests()
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.8
    assert len(ids(batches)) == 5


async def test_aggregator_refuses_to_wait_longer_than_configured(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    aggregator.fail_next(429, retry_after="3600")
    settings = aggregator_settings(migrated_settings, aggregator, aggregator_max_retry_after_sec=5)
    started = time.monotonic()
    with pytest.raises(AggregatorUnavailableError, match="3600"):
        await drain(AggregatorSource(settings, engine, name=source_name))
    assert time.monotonic() - started < 3


async def test_aggregator_spaces_requests_by_its_rate_limit(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    aggregator.add_changes("US", changes(0, 10))
    rate = 8.0
    settings = aggregator_settings(
        migrated_settings, aggregator, aggregator_page_size=2, aggregator_rate_per_sec=rate
    )
    await drain(AggregatorSource(settings, engine, name=source_name))
    arrivals = [r.at for r in aggregator.requests()]
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) / rate * 0.8


async def test_aggregator_wrong_key_is_a_clear_error(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    wrong_key = "definitely-not-the-key"
    settings = aggregator_settings(migrated_settings, aggregator, aggregator_api_key=wrong_key)
    with pytest.raises(AggregatorAuthError, match="rejected the API key") as caught:
        await drain(AggregatorSource(settings, engine, name=source_name))
    assert wrong_key not in str(caught.value)
    assert "Invalid API key" in str(caught.value)
    assert aggregator.calls() == 1  # a refused key is not retried


async def test_aggregator_skips_and_counts_malformed_changes(
    migrated_settings: Settings, engine: AsyncEngine, aggregator: FakeAggregatorServer, source_name: str
) -> None:
    aggregator.add_changes(
        "US", [*changes(0, 2), {"platform": "netflix"}, {"record": {"id": "x"}}, "nonsense", *changes(2, 1)]
    )
    source = AggregatorSource(aggregator_settings(migrated_settings, aggregator), engine, name=source_name)
    assert sorted(ids(await drain(source))) == ["c0", "c1", "c2"]
    assert source.stats.skipped == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "unreadable"),
        ({"changes": [], "next_cursor": None, "has_more": True}, "without advancing"),
        ({"next_cursor": "x", "has_more": False}, "unreadable"),
    ],
)
async def test_aggregator_protocol_violations_stop_the_run(
    migrated_settings: Settings,
    engine: AsyncEngine,
    aggregator: FakeAggregatorServer,
    source_name: str,
    body: Any,
    message: str,
) -> None:
    aggregator.respond_next(200, body)
    source = AggregatorSource(aggregator_settings(migrated_settings, aggregator), engine, name=source_name)
    with pytest.raises(AggregatorResponseError, match=message):
        await drain(source)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") == 1.0
    assert retry_after_seconds(None) == 1.0
