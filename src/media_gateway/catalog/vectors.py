"""The catalog's vectors for the processes that search by them (discovery, SONA): a private replica of
`catalog.content_vectors` per process (core.vectors.replica), so any number of them can run beside
ingestion, which writes the table."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.catalog.repository.vectors import vector_changes
from media_gateway.core.embeddings import Embedder
from media_gateway.core.settings import Settings
from media_gateway.core.vectors.replica import ReplicaVectorIndex, VectorChange


class CatalogVectorChanges:
    """`VectorChangeSource` over `catalog.content_vectors`; a connection per read."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def changes_since(self, after: int, limit: int, model: str, dimension: int) -> list[VectorChange]:
        async with self._engine.connect() as conn:
            return await vector_changes(conn, after, limit, model, dimension)


def replica_root(settings: Settings) -> Path:
    """Where the replicas of this data dir keep their private shards (one subdirectory each)."""
    return Path(settings.data_dir) / "vectors" / f"{settings.vectors.collection}-replicas"


def catalog_vector_replica(
    settings: Settings, engine: AsyncEngine, embedder: Embedder, registry: CollectorRegistry | None = None
) -> ReplicaVectorIndex:
    """The catalog's vectors as `embedder` makes them; call `open()` before use."""
    return ReplicaVectorIndex(
        CatalogVectorChanges(engine),
        model_id=embedder.model_id,
        dimension=embedder.dimension,
        root=replica_root(settings),
        settings=settings.vectors,
        registry=registry,
    )
