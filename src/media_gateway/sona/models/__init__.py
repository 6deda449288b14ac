"""SONA's recommender models: pure, synchronous computation (numpy / scipy), no I/O.

The service trains and queries these from background tasks or `asyncio.to_thread`, never on the event
loop. Snapshots (`to_bytes`) are what it stores.
"""

from __future__ import annotations

from media_gateway.sona.models.blend import (
    MMR_LAMBDA,
    SOURCE_WEIGHTS,
    BlendedItem,
    apply_boost,
    blend,
    mmr,
    normalize,
)
from media_gateway.sona.models.collaborative import (
    EASE_MAX_ITEMS,
    EaseRecommender,
    ItemKnnRecommender,
    PopularityRecommender,
)
from media_gateway.sona.models.content import interaction_weight, preference_vector
from media_gateway.sona.models.context import context_multiplier
from media_gateway.sona.models.graph import (
    CAST_WEIGHT,
    DIRECTOR_WEIGHT,
    GENRE_WEIGHT,
    HOP_DECAY,
    KEYWORD_WEIGHT,
    GraphHit,
    GraphRecommender,
    ItemFeatures,
    content_edges,
    coview_edges,
)
from media_gateway.sona.models.interactions import Interaction, InteractionMatrix
from media_gateway.sona.models.lora import LORA_ALPHA, LORA_RANK, LoraAdapter, personalize, train_adapter

__all__ = [
    "CAST_WEIGHT",
    "DIRECTOR_WEIGHT",
    "EASE_MAX_ITEMS",
    "GENRE_WEIGHT",
    "HOP_DECAY",
    "KEYWORD_WEIGHT",
    "LORA_ALPHA",
    "LORA_RANK",
    "MMR_LAMBDA",
    "SOURCE_WEIGHTS",
    "BlendedItem",
    "EaseRecommender",
    "GraphHit",
    "GraphRecommender",
    "Interaction",
    "InteractionMatrix",
    "ItemFeatures",
    "ItemKnnRecommender",
    "LoraAdapter",
    "PopularityRecommender",
    "apply_boost",
    "blend",
    "content_edges",
    "context_multiplier",
    "coview_edges",
    "interaction_weight",
    "mmr",
    "normalize",
    "personalize",
    "preference_vector",
    "train_adapter",
]
