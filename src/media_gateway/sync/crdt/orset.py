"""Observed-remove set with tags and tombstones (add-wins).

Every add carries a fresh tag. A remove names the tags it observed and tombstones only those, so an
add concurrent with a remove (its tag unseen by the remover) survives: add wins. Operations commute,
so delivery may be out of order and duplicated: a tombstone that arrives before its add is kept and
the late add stays dead.

Tombstones are collected after a horizon (30 days in the service). That is safe only for tags whose
add every replica has already seen; the service guarantees it by deduplicating replays on the
operation log, which outlives the tombstones.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

E = TypeVar("E", bound=Hashable)
Tag = Hashable


@dataclass
class ORSet(Generic[E]):
    # element -> live tags (tag -> time of the add, ms)
    entries: dict[E, dict[Tag, int]] = field(default_factory=dict)
    # tag -> (element, time of the remove, ms)
    tombstones: dict[Tag, tuple[E, int]] = field(default_factory=dict)

    def apply_add(self, element: E, tag: Tag, at_ms: int = 0) -> bool:
        """True if the add changed the set's state."""
        if tag in self.tombstones:
            return False
        tags = self.entries.setdefault(element, {})
        if tag in tags:
            return False
        tags[tag] = at_ms
        return True

    def observed(self, element: E) -> frozenset[Tag]:
        """The tags a remove issued now must carry."""
        return frozenset(self.entries.get(element, {}))

    def apply_remove(self, element: E, tags: Iterable[Tag], at_ms: int = 0) -> bool:
        changed = False
        live = self.entries.get(element)
        for tag in tags:
            if tag not in self.tombstones:
                self.tombstones[tag] = (element, at_ms)
                changed = True
            if live is not None and live.pop(tag, None) is not None:
                changed = True
        if live is not None and not live:
            del self.entries[element]
        return changed

    def __contains__(self, element: object) -> bool:
        return element in self.entries

    def elements(self) -> set[E]:
        return set(self.entries)

    def merge(self, other: ORSet[E]) -> None:
        """State-based merge: the union of adds minus the union of tombstones."""
        for tag, (element, at_ms) in other.tombstones.items():
            self.apply_remove(element, [tag], at_ms)
        for element, tags in other.entries.items():
            for tag, at_ms in tags.items():
                self.apply_add(element, tag, at_ms)

    def collect_garbage(self, now_ms: int, horizon_ms: int) -> int:
        """Forget tombstones older than the horizon; returns how many were dropped."""
        cutoff = now_ms - horizon_ms
        expired = [tag for tag, (_, at_ms) in self.tombstones.items() if at_ms < cutoff]
        for tag in expired:
            del self.tombstones[tag]
        return len(expired)
