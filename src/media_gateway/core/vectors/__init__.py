"""The vector index: one `VectorIndex` interface, implemented in-process by qdrant-edge; a
`ReplicaVectorIndex` is a read-only one any number of processes can hold, fed from PostgreSQL.

Callers speak `VectorPoint`, `VectorFilter` and `VectorHit` only; no qdrant type leaks out.

qdrant-edge is synchronous and, as of qdrant-edge-py 0.9, keeps the GIL while it works (measured:
a 20k-point upsert stalls other Python threads ~0.4 s, `optimize()` for its whole run). So calls
go through one worker thread per shard, writes are cut into small batches, and `optimize()` is
for offline use only (see its docstring).
"""

from __future__ import annotations

from collections.abc import Mapping

from media_gateway.core.settings import Settings
from media_gateway.core.vectors.base import (
    CONTENT_PAYLOAD_INDEXES,
    KeywordMatch,
    PayloadFieldType,
    Range,
    VectorDimensionMismatchError,
    VectorFilter,
    VectorHit,
    VectorIndex,
    VectorIndexError,
    VectorPoint,
)
from media_gateway.core.vectors.edge import WRITE_BATCH, EdgeVectorIndex, to_qdrant_filter
from media_gateway.core.vectors.replica import ReplicaVectorIndex, VectorChange, VectorChangeSource

__all__ = [
    "CONTENT_PAYLOAD_INDEXES",
    "WRITE_BATCH",
    "EdgeVectorIndex",
    "KeywordMatch",
    "PayloadFieldType",
    "Range",
    "ReplicaVectorIndex",
    "VectorChange",
    "VectorChangeSource",
    "VectorDimensionMismatchError",
    "VectorFilter",
    "VectorHit",
    "VectorIndex",
    "VectorIndexError",
    "VectorPoint",
    "make_vector_index",
    "to_qdrant_filter",
]


def make_vector_index(
    settings: Settings,
    dimension: int,
    *,
    payload_indexes: Mapping[str, PayloadFieldType] = CONTENT_PAYLOAD_INDEXES,
) -> VectorIndex:
    """The configured index for `settings.vectors.collection`; call `open()` before use."""
    return EdgeVectorIndex(
        settings.vectors_path, dimension, settings.vectors, payload_indexes=payload_indexes
    )
