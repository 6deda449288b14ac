"""Every SQL statement on the `catalog` schema except entity mappings (ingestion.resolution owns those).

Writes come only from ingestion (`writes`, and `vectors` for the vector table); discovery and SONA read
through `reads` (and their vector replicas through `vectors.vector_changes`). Import from this
package: it re-exports both sides."""

from media_gateway.catalog.repository.reads import (
    OfferChange,
    PlatformTitles,
    count_content,
    count_offers,
    genre_title_counts,
    get_content,
    list_content,
    offer_changes,
    offers_by_platform,
    platform_has_offers,
    platform_title_counts,
    region_offers,
    trending_content,
)
from media_gateway.catalog.repository.vectors import (
    count_vectors,
    store_vector_payloads,
    store_vectors,
    vector_changes,
)
from media_gateway.catalog.repository.writes import (
    EmbeddingWork,
    OfferChanges,
    WriteOutcome,
    embedding_text,
    load_embedding_work,
    mark_embedded,
    merge_metadata,
    metadata_hash,
    refresh_statistics,
    replace_platform_offers,
    stale_embedding_ids,
    store_quality,
    text_hash,
    write_content,
)

__all__ = [
    "EmbeddingWork",
    "OfferChange",
    "OfferChanges",
    "PlatformTitles",
    "WriteOutcome",
    "count_content",
    "count_offers",
    "count_vectors",
    "embedding_text",
    "genre_title_counts",
    "get_content",
    "list_content",
    "load_embedding_work",
    "mark_embedded",
    "merge_metadata",
    "metadata_hash",
    "offer_changes",
    "offers_by_platform",
    "platform_has_offers",
    "platform_title_counts",
    "refresh_statistics",
    "region_offers",
    "replace_platform_offers",
    "stale_embedding_ids",
    "store_quality",
    "store_vector_payloads",
    "store_vectors",
    "text_hash",
    "trending_content",
    "vector_changes",
    "write_content",
]
