"""Search-query intent parsing (issue 4, TASK-007): rules offline, an LLM when configured, cached."""

from media_gateway.discovery.intent.llm import LlmIntentClient, LlmIntentError
from media_gateway.discovery.intent.parser import IntentMetrics, IntentParser, cache_key, merge
from media_gateway.discovery.intent.rules import RuleBasedIntentParser, normalize_query
from media_gateway.discovery.intent.schemas import MOODS, Intent, IntentSource, ReferencedTitle
from media_gateway.discovery.intent.titles import CatalogTitleResolver, TitleResolver

__all__ = [
    "MOODS",
    "CatalogTitleResolver",
    "Intent",
    "IntentMetrics",
    "IntentParser",
    "IntentSource",
    "LlmIntentClient",
    "LlmIntentError",
    "ReferencedTitle",
    "RuleBasedIntentParser",
    "TitleResolver",
    "cache_key",
    "merge",
    "normalize_query",
]
