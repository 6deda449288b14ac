"""Where raw platform records come from: file feeds and the availability aggregator API.

Webhook deliveries are pushed instead of pulled; they live in `ingestion.webhooks`."""

from media_gateway.ingestion.sources.aggregator import (
    API_KEY_HEADER,
    AggregatorAuthError,
    AggregatorError,
    AggregatorResponseError,
    AggregatorSource,
    AggregatorUnavailableError,
)
from media_gateway.ingestion.sources.base import CatalogSource, SourceStats
from media_gateway.ingestion.sources.file import FileFeedSource
from media_gateway.ingestion.sources.ratelimit import TokenBucket

__all__ = [
    "API_KEY_HEADER",
    "AggregatorAuthError",
    "AggregatorError",
    "AggregatorResponseError",
    "AggregatorSource",
    "AggregatorUnavailableError",
    "CatalogSource",
    "FileFeedSource",
    "SourceStats",
    "TokenBucket",
]
