"""What callers of the vector index speak: the `VectorIndex` protocol, its errors, and the point,
hit and filter types. Nothing here knows the engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

PayloadFieldType = Literal["keyword", "integer", "float", "bool"]

# The filterable fields of the `content` collection (DESIGN §5).
CONTENT_PAYLOAD_INDEXES: Mapping[str, PayloadFieldType] = {
    "type": "keyword",
    "genres": "keyword",
    "platforms": "keyword",
    "regions": "keyword",
    "monetization": "keyword",
    "year": "integer",
    "popularity": "float",
}


class VectorIndexError(RuntimeError):
    """The vector index cannot be opened, or the engine rejected an operation."""


class VectorDimensionMismatchError(VectorIndexError):
    """The index on disk stores vectors of another size than the configured embedder makes."""


KeywordMatch = str | int | bool | list[str] | list[int]


@dataclass(frozen=True, slots=True)
class VectorPoint:
    id: uuid.UUID | str
    vector: Sequence[float] | NDArray[np.floating[Any]]
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VectorHit:
    id: uuid.UUID
    score: float
    payload: dict[str, Any]


class Range(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> Range:
        if self.gte is None and self.gt is None and self.lte is None and self.lt is None:
            raise ValueError("a range needs at least one of gte, gt, lte, lt")
        return self


class VectorFilter(BaseModel):
    """Conditions that must all hold.

    - `match`: field equals the value; a list means any of its values (`genres: ["Drama"]` keeps
      every title that has Drama among its genres).
    - `exclude`: field equals none of the values.
    - `ranges`: numeric bounds, e.g. `{"year": Range(gte=1990, lte=1999)}`.
    - `exclude_ids`: points never returned (the seed title of "more like this", watched titles).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: dict[str, KeywordMatch] = {}
    exclude: dict[str, KeywordMatch] = {}
    ranges: dict[str, Range] = {}
    exclude_ids: frozenset[uuid.UUID] = frozenset()

    @field_validator("match", "exclude")
    @classmethod
    def _no_empty_any_of(cls, value: dict[str, KeywordMatch]) -> dict[str, KeywordMatch]:
        for key, wanted in value.items():
            if not key:
                raise ValueError("field names must not be empty")
            if isinstance(wanted, list) and not wanted:
                # "Any of nothing" would silently match no point; omitting the key is what callers mean.
                raise ValueError(f"{key}: an empty list matches nothing; omit the field instead")
        return value

    def is_empty(self) -> bool:
        return not (self.match or self.exclude or self.ranges or self.exclude_ids)


@runtime_checkable
class VectorIndex(Protocol):
    dimension: int

    async def open(self) -> None: ...

    async def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    async def query(
        self,
        vector: Sequence[float] | NDArray[np.floating[Any]],
        limit: int = 10,
        filter: VectorFilter | None = None,
        *,
        offset: int = 0,
        score_threshold: float | None = None,
        with_payload: bool = True,
    ) -> list[VectorHit]: ...

    async def nearest_ids(
        self,
        vector: Sequence[float] | NDArray[np.floating[Any]],
        limit: int = 10,
        filter: VectorFilter | None = None,
        *,
        score_threshold: float | None = None,
    ) -> list[str]:
        """`query`'s ids alone, nearest first, as canonical UUID text: what a caller that only ranks
        by id needs, without a `VectorHit` and a parsed UUID per hit."""
        ...

    async def replace_payloads(self, payloads: Mapping[uuid.UUID | str, Mapping[str, Any]]) -> None: ...

    async def vectors(self, ids: Iterable[uuid.UUID | str]) -> dict[uuid.UUID, list[float]]:
        """The stored vectors of those of `ids` that are in the index ("more like this" seeds)."""
        ...

    async def delete(self, ids: Iterable[uuid.UUID | str]) -> None: ...

    async def count(self, filter: VectorFilter | None = None) -> int: ...

    async def flush(self) -> None: ...

    async def optimize(self) -> bool:
        """Build search structures after a bulk load; a no-op where the engine does it itself."""
        ...

    async def aclose(self) -> None: ...
