"""Discovery search: the keyword index (tantivy) and what keeps it in step with the catalog."""

from __future__ import annotations

from media_gateway.discovery.search.documents import (
    KeywordDoc,
    KeywordFilters,
    KeywordPage,
    OfferKey,
    Suggestion,
)
from media_gateway.discovery.search.keyword import KeywordIndex

__all__ = ["KeywordDoc", "KeywordFilters", "KeywordIndex", "KeywordPage", "OfferKey", "Suggestion"]
