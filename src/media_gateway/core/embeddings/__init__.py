"""Text embeddings: the local all-MiniLM-L6-v2 int8 ONNX model, or an OpenAI-compatible API.

Every embedder returns float32 rows of unit L2 norm, so a dot product is the cosine similarity.
"""

from __future__ import annotations

from pathlib import Path

from media_gateway.core.embeddings.base import Embedder, EmbeddingError, FloatMatrix
from media_gateway.core.embeddings.onnx import (
    MINILM_DIMENSION,
    MINILM_MAX_POSITIONS,
    OnnxMiniLMEmbedder,
    minilm_model_path,
    minilm_session_options,
    minilm_tokenizer_path,
    shared_onnx_embedder,
)
from media_gateway.core.embeddings.openai import OPENAI_MAX_INPUTS_PER_REQUEST, OpenAIEmbedder
from media_gateway.core.settings import Settings

__all__ = [
    "MINILM_DIMENSION",
    "MINILM_MAX_POSITIONS",
    "OPENAI_MAX_INPUTS_PER_REQUEST",
    "Embedder",
    "EmbeddingError",
    "FloatMatrix",
    "OnnxMiniLMEmbedder",
    "OpenAIEmbedder",
    "get_embedder",
    "minilm_model_path",
    "minilm_session_options",
    "minilm_tokenizer_path",
]


def get_embedder(settings: Settings) -> Embedder:
    """The embedder the settings select. Balance each call with one `aclose()`.

    The ONNX model is shared by every app of the process with the same (threads, max_tokens,
    batch_size), so running all services in one process loads it once.
    """
    cfg = settings.embedder
    if cfg.backend == "openai":
        return OpenAIEmbedder(
            url=cfg.url,
            model=cfg.model,
            api_key=cfg.api_key,
            dimension=cfg.dimension,
            timeout_sec=cfg.timeout_sec,
            retries=settings.http.retries,
            backoff_base_sec=settings.http.backoff_base_sec,
            backoff_max_sec=settings.http.backoff_max_sec,
        )
    return shared_onnx_embedder(
        threads=cfg.onnx_threads,
        max_tokens=cfg.max_tokens,
        batch_size=cfg.batch_size,
        model_path=Path(cfg.model_path).expanduser() if cfg.model_path else None,
        cache_dir=Path(cfg.cache_dir).expanduser() if cfg.cache_dir else None,
    )
