"""Entity resolution (TASK-009): which canonical entity an incoming record is."""

from media_gateway.ingestion.resolution.cache import EntityCache
from media_gateway.ingestion.resolution.resolver import EntityResolver, Method, Resolution, record_ids
from media_gateway.ingestion.resolution.scoring import MERGE_THRESHOLD, MatchScore

__all__ = [
    "MERGE_THRESHOLD",
    "EntityCache",
    "EntityResolver",
    "MatchScore",
    "Method",
    "Resolution",
    "record_ids",
]
