"""Three replicas, random operations, random delivery order, duplicates and partitions: every replica
converges, to the set the OR-Set semantics predict, and nothing removed comes back."""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media_gateway.sync.crdt import HybridLogicalClock, LWWRegister, ORSet, Timestamp

REPLICAS = 3
ITEMS = [f"c{i}" for i in range(12)]


@dataclass(frozen=True)
class Op:
    origin: int
    kind: str  # add, remove, progress
    element: str
    tags: frozenset[Hashable]
    value: int = 0
    hlc: Timestamp | None = None


class Replica:
    def __init__(self, index: int, wall: list[int]) -> None:
        self.index = index
        self.set: ORSet[str] = ORSet()
        self.progress: dict[str, LWWRegister[int]] = {}
        self.clock = HybridLogicalClock(f"r{index}", wall=lambda: wall[0])
        self.seen: set[int] = set()

    def deliver(self, op_id: int, op: Op) -> None:
        if op.kind == "add":
            (tag,) = op.tags
            self.set.apply_add(op.element, tag)
        elif op.kind == "remove":
            self.set.apply_remove(op.element, op.tags)
        else:
            assert op.hlc is not None
            self.clock.observe(op.hlc)
            register = LWWRegister(op.value, op.hlc, f"d{op.origin}")
            self.progress[op.element] = register.merge(self.progress.get(op.element))
        self.seen.add(op_id)


@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(2_000, 6_000))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_replicas_converge_under_reordering_duplicates_and_partitions(seed: int, steps: int) -> None:
    rng = random.Random(seed)
    wall = [1_000]
    replicas = [Replica(i, wall) for i in range(REPLICAS)]
    log: list[Op] = []
    # Per replica: ops not yet delivered to it (op ids; duplicates allowed).
    inbox: list[list[int]] = [[] for _ in range(REPLICAS)]
    partitioned: set[int] = set()

    for step in range(steps):
        wall[0] += rng.choice((0, 0, 1, 3))
        action = rng.random()
        if action < 0.05:
            partitioned = {rng.randrange(REPLICAS)} if rng.random() < 0.7 else set()
            continue
        if action < 0.55:
            origin = replicas[rng.randrange(REPLICAS)]
            element = rng.choice(ITEMS)
            kind = rng.choices(("add", "remove", "progress"), weights=(5, 4, 2))[0]
            if kind == "add":
                op = Op(origin.index, "add", element, frozenset({f"tag{step}"}))
            elif kind == "remove":
                op = Op(origin.index, "remove", element, origin.set.observed(element))
            else:
                op = Op(
                    origin.index, "progress", element, frozenset(), rng.randrange(10_000), origin.clock.now()
                )
            log.append(op)
            op_id = len(log) - 1
            origin.deliver(op_id, op)
            for other in range(REPLICAS):
                if other != origin.index:
                    inbox[other].append(op_id)
            continue
        # Deliver a random pending op (maybe a duplicate) to a reachable replica.
        target = rng.randrange(REPLICAS)
        if target in partitioned or not inbox[target]:
            continue
        pick = rng.randrange(len(inbox[target]))
        op_id = inbox[target][pick] if rng.random() < 0.1 else inbox[target].pop(pick)
        replicas[target].deliver(op_id, log[op_id])

    # Heal: everything reaches everyone, in a random order, some twice.
    for index, pending in enumerate(inbox):
        everything = pending + rng.sample(range(len(log)), k=min(len(log), 20))
        rng.shuffle(everything)
        for op_id in everything:
            replicas[index].deliver(op_id, log[op_id])

    states = [r.set.elements() for r in replicas]
    assert states[0] == states[1] == states[2]
    registers = [{k: (v.value, v.hlc) for k, v in r.progress.items()} for r in replicas]
    assert registers[0] == registers[1] == registers[2]

    # The OR-Set's meaning: an element is present iff one of its add tags was never observed by a
    # remove. In particular an add whose tag a remove named never comes back.
    removed_tags = {tag for op in log if op.kind == "remove" for tag in op.tags}
    expected = {op.element for op in log if op.kind == "add" and not (op.tags & removed_tags)}
    assert states[0] == expected
    for op in log:
        if op.kind == "add" and op.tags & removed_tags:
            assert all(not (r.set.entries.get(op.element, {}).keys() & op.tags) for r in replicas)
    # LWW: each register holds the operation with the greatest (hlc, device).
    for element in {op.element for op in log if op.kind == "progress"}:
        best = max(
            (op for op in log if op.kind == "progress" and op.element == element),
            key=lambda o: (o.hlc, f"d{o.origin}"),
        )
        assert registers[0][element] == (best.value, best.hlc)
