"""The operation log's ordering rule, on the real database: a user's operations are numbered in
commit order, so a reader that saw seq n never later finds a smaller committed seq of that user."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from media_gateway.core.db import make_engine
from media_gateway.core.settings import Settings
from media_gateway.sync.oplog import (
    NewOperation,
    SyncOperation,
    append_operations,
    decode_cursor,
    encode_cursor,
    list_operations,
)


def _op(user_id: uuid.UUID, kind: str = "watchlist.add") -> NewOperation:
    return NewOperation(user_id, uuid.uuid4(), kind, "phone", "c1", {"n": 1}, "000000000001-0000-a")


async def test_a_second_writer_of_the_same_user_waits_for_the_first(migrated_settings: Settings) -> None:
    engine = make_engine(migrated_settings)
    user_id = uuid.uuid4()
    try:
        async with engine.connect() as first, engine.connect() as probe:
            await first.begin()
            (early,) = await append_operations(first, [_op(user_id)])
            first_pid = await first.scalar(text("SELECT pg_backend_pid()"))

            async def second_writer() -> tuple[SyncOperation, int]:
                async with engine.begin() as conn:
                    pid = await conn.scalar(text("SELECT pg_backend_pid()"))
                    (op,) = await append_operations(conn, [_op(user_id)])
                    return op, pid

            second = asyncio.create_task(second_writer())
            # The second writer must be blocked on the first one's advisory lock, not racing it.
            for _ in range(500):
                blocked = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE :first = ANY(pg_blocking_pids(pid)) AND wait_event = 'advisory'"
                    ),
                    {"first": first_pid},
                )
                await probe.rollback()
                if blocked:
                    break
                await asyncio.sleep(0.01)
            assert blocked == 1
            assert not second.done()
            await first.commit()
            late, _ = await second
        assert late.seq > early.seq

        async with engine.connect() as conn:
            listed = await list_operations(conn, user_id, 0, 10)
            assert [op.seq for op in listed] == [early.seq, late.seq]
            assert listed[0].to_json()["payload"] == {"n": 1}
            assert await list_operations(conn, user_id, late.seq, 10) == []
            assert await list_operations(conn, uuid.uuid4(), 0, 10) == []
            # A replayed op id is not appended twice.
            again = NewOperation(user_id, early.op_id, early.kind, None, None, {}, early.hlc)
            assert await append_operations(conn, [again]) == []
            await conn.rollback()
    finally:
        await engine.dispose()


def test_cursor_round_trip_and_rejects() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    for bad in ("", "-1", "abc", "1.5", "9" * 20):
        try:
            decode_cursor(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
