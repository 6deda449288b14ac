"""The interface every pulled catalog source keeps, so the pipeline drives them all the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from media_gateway.ingestion.schemas import RawBatch

# Enough to diagnose a bad feed without letting one broken file grow the report without bound.
MAX_REPORTED_PROBLEMS = 50


@dataclass
class SourceStats:
    """What one `fetch()` run saw; the pipeline copies it into the job's counts."""

    batches: int = 0
    records: int = 0
    # Input that could not become a record (bad JSON, not an object, a change without a platform).
    # Skipped so that one bad line cannot stall a feed forever; counted so it is not silent.
    skipped: int = 0
    requests: int = 0
    problems: list[str] = field(default_factory=list)

    def skip(self, problem: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(problem)

    def as_counts(self) -> dict[str, int]:
        return {
            "batches": self.batches,
            "records": self.records,
            "skipped": self.skipped,
            "requests": self.requests,
        }


@runtime_checkable
class CatalogSource(Protocol):
    """A resumable producer of `RawBatch`es.

    Delivery is at-least-once: `fetch()` starts from the last *committed* cursor, and the pipeline
    calls `commit(batch)` only after the batch's records are written. A crash between the two makes
    the next run fetch that batch again (the pipeline is idempotent), never skip it. Batches must be
    committed in the order they were yielded.
    """

    name: str
    stats: SourceStats

    def fetch(self) -> AsyncIterator[RawBatch]:
        """Yield batches from the persisted cursor onward; `stats` is reset at the start of a run."""
        ...

    async def commit(self, batch: RawBatch) -> None:
        """Persist `batch.cursor` (a batch without a cursor is not resumable: nothing to persist)."""
        ...
