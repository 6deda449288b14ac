"""Result cards (`ContentSummary`) of recently shown titles, kept in process.

A card holds a title's offers watchable *today* in one region, so entries are keyed by (region,
day) under the content id, and the id's entries are dropped whenever the keyword index rewrites
that title (every catalog event reaches the index; a full rebuild drops all). A read that started
before an invalidation is not stored, so a card read from the old row cannot outlive the event.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import date
from typing import Final

from media_gateway.discovery.schemas import ContentSummary

DEFAULT_TITLES: Final = 20_000


class CardCache:
    def __init__(self, max_titles: int = DEFAULT_TITLES) -> None:
        self._max = max_titles
        self._cards: OrderedDict[uuid.UUID, dict[tuple[str, date], ContentSummary]] = OrderedDict()
        self.generation = 0

    def get(
        self, ids: Iterable[uuid.UUID], region: str, day: date
    ) -> tuple[dict[uuid.UUID, ContentSummary], list[uuid.UUID]]:
        """(cards found, ids missing)."""
        found: dict[uuid.UUID, ContentSummary] = {}
        missing: list[uuid.UUID] = []
        for content_id in ids:
            card = self._cards.get(content_id, {}).get((region, day))
            if card is None:
                missing.append(content_id)
            else:
                found[content_id] = card
                self._cards.move_to_end(content_id)
        return found, missing

    def put(self, cards: dict[uuid.UUID, ContentSummary], region: str, day: date, generation: int) -> None:
        """Store cards read while `generation` was current; dropped if anything changed since."""
        if generation != self.generation:
            return
        for content_id, card in cards.items():
            self._cards.setdefault(content_id, {})[(region, day)] = card
            self._cards.move_to_end(content_id)
        while len(self._cards) > self._max:
            self._cards.popitem(last=False)

    def invalidate(self, ids: Iterable[str] | None) -> None:
        """Forget `ids` (content ids as text), or everything for None."""
        self.generation += 1
        if ids is None:
            self._cards.clear()
            return
        for value in ids:
            try:
                self._cards.pop(uuid.UUID(value), None)
            except ValueError:
                continue
