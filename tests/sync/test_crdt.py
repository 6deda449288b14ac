"""The pure CRDTs: hybrid logical clock, LWW register and OR-Set."""

from __future__ import annotations

import itertools

import pytest

from media_gateway.sync.crdt import ClockDriftError, HybridLogicalClock, LWWRegister, ORSet, Timestamp


class FakeWall:
    def __init__(self, millis: int) -> None:
        self.millis = millis

    def __call__(self) -> int:
        return self.millis


def test_encoding_sorts_like_the_timestamps() -> None:
    stamps = [
        Timestamp(1, 0, "b"),
        Timestamp(1, 1, "a"),
        Timestamp(0xFFF, 0, "a"),
        Timestamp(0x1000, 0, "a"),
        Timestamp((1 << 48) - 1, 0xFFFF, "z"),
        Timestamp(1, 0, "a"),
    ]
    assert sorted(stamps) == sorted(stamps, key=lambda s: s.encode().encode())
    for stamp in stamps:
        assert Timestamp.parse(stamp.encode()) == stamp
    for bad in ("", "1-2-3", "00000000000g-0000-a", "000000000001-0000-", "000000000001-0000-a b"):
        with pytest.raises(ValueError, match="malformed"):
            Timestamp.parse(bad)
    with pytest.raises(ValueError, match="out of range"):
        Timestamp(1 << 48, 0, "a")


def test_clock_is_monotonic_even_when_the_wall_clock_stalls_or_goes_back() -> None:
    wall = FakeWall(1_000)
    clock = HybridLogicalClock("n1", wall=wall)
    first = clock.now()
    second = clock.now()
    wall.millis = 900  # NTP stepped back
    third = clock.now()
    assert first < second < third
    assert third.millis == 1_000
    assert third.counter == 2


def test_counter_overflow_borrows_the_next_millisecond() -> None:
    clock = HybridLogicalClock("n1", wall=FakeWall(5))
    merged = clock.update(Timestamp(5, 0xFFFF, "n2"))  # the counter is exhausted at 5 ms
    assert merged > Timestamp(5, 0xFFFF, "n2")
    assert (merged.millis, merged.counter) == (6, 0)
    stamps = [clock.now() for _ in range(1_000)]
    assert all(a < b for a, b in itertools.pairwise([merged, *stamps]))


def test_update_orders_after_the_remote_event() -> None:
    clock = HybridLogicalClock("server", wall=FakeWall(1_000))
    remote = Timestamp(30_000, 7, "phone")  # 29 s ahead: within the bound
    merged = clock.update(remote)
    assert merged > remote
    assert clock.now() > merged


def test_drift_beyond_bound_is_rejected_by_update_and_clamped_by_receive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = HybridLogicalClock("server", wall=FakeWall(1_000), max_drift_ms=60_000)
    far = Timestamp(1_000 + 61_000, 0, "phone")
    with pytest.raises(ClockDriftError):
        clock.update(far)
    stored = clock.receive(far)
    assert stored.millis == 1_000
    assert stored.node == "phone"
    assert "clock drift" in caplog.text
    # The clock itself was not dragged into the future.
    assert clock.now().millis == 1_000


def test_lww_prefers_newer_clock_then_device_id() -> None:
    older = LWWRegister(10, Timestamp(1, 0, "x"), "tv")
    newer = LWWRegister(20, Timestamp(2, 0, "x"), "phone")
    assert newer.merge(older) is newer
    assert older.merge(newer) is newer
    tie_a = LWWRegister(1, Timestamp(3, 0, "x"), "a")
    tie_b = LWWRegister(2, Timestamp(3, 0, "x"), "b")
    assert tie_a.merge(tie_b) is tie_b
    assert tie_b.merge(tie_a) is tie_b
    assert newer.wins_over(None)
    assert not older.wins_over(newer)


def test_orset_add_wins_and_remove_only_deletes_observed_tags() -> None:
    phone: ORSet[str] = ORSet()
    tv: ORSet[str] = ORSet()
    phone.apply_add("dune", "t1")
    tv.apply_add("dune", "t1")
    observed = tv.observed("dune")
    # Concurrently: the phone re-adds (new tag), the TV removes what it saw.
    phone.apply_add("dune", "t2")
    tv.apply_remove("dune", observed)
    assert "dune" not in tv
    phone.apply_remove("dune", observed)
    tv.apply_add("dune", "t2")
    assert "dune" in phone
    assert "dune" in tv
    assert phone.elements() == tv.elements() == {"dune"}


def test_orset_remove_before_add_keeps_the_late_add_dead() -> None:
    replica: ORSet[str] = ORSet()
    replica.apply_remove("x", ["t1"], at_ms=5)
    assert not replica.apply_add("x", "t1")
    assert "x" not in replica


def test_orset_merge_and_tombstone_gc() -> None:
    a: ORSet[str] = ORSet()
    b: ORSet[str] = ORSet()
    a.apply_add("x", "t1", 0)
    b.merge(a)
    b.apply_remove("x", b.observed("x"), at_ms=1_000)
    a.merge(b)
    assert a.elements() == b.elements() == set()
    day = 86_400_000
    assert a.collect_garbage(now_ms=1_000 + 29 * day, horizon_ms=30 * day) == 0
    assert a.collect_garbage(now_ms=1_001 + 30 * day, horizon_ms=30 * day) == 1
    assert a.tombstones == {}
    assert a.elements() == set()
