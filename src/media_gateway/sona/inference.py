"""The embedding inference API: base MiniLM vectors, optionally through one of the user's LoRA adapters."""

from __future__ import annotations

import asyncio
import uuid

from media_gateway.core.embeddings import EmbeddingError
from media_gateway.core.errors import ProblemError
from media_gateway.core.security.tokens import Principal
from media_gateway.sona.models import LoraAdapter, personalize
from media_gateway.sona.profile import adapter_info
from media_gateway.sona.repository import artifacts
from media_gateway.sona.runtime import SonaRuntime
from media_gateway.sona.schemas import EmbeddingRequest, EmbeddingResponse

PERSONAL = "personal"


async def embed(runtime: SonaRuntime, principal: Principal, request: EmbeddingRequest) -> EmbeddingResponse:
    user_id = principal.user_id
    assert user_id is not None
    row: artifacts.AdapterRow | None = None
    if request.adapter is not None:
        async with runtime.engine.connect() as conn:
            if request.adapter == PERSONAL:
                # No adapter yet means the base space: personalization degrades, it does not fail.
                row = await artifacts.active_adapter(conn, user_id)
            else:
                try:
                    adapter_id = uuid.UUID(request.adapter)
                except ValueError:
                    raise ProblemError(
                        422, "adapter must be 'personal' or the id of one of your adapters"
                    ) from None
                row = await artifacts.adapter_by_id(conn, user_id, adapter_id)
                if row is None:
                    raise ProblemError(404, f"you have no adapter {adapter_id}")
    try:
        vectors = await runtime.embedder.embed(list(request.texts))
    except EmbeddingError as exc:
        raise ProblemError(503, f"the embedding model is unavailable: {exc}") from exc
    if row is not None:
        if row.dimension != vectors.shape[1]:
            raise ProblemError(409, f"adapter {row.id} was trained for {row.dimension}-d vectors")
        adapter = LoraAdapter.from_bytes(row.weights)
        vectors = await asyncio.to_thread(personalize, vectors, adapter)
    return EmbeddingResponse(
        model="all-MiniLM-L6-v2"
        if runtime.settings.embedder.backend == "onnx"
        else runtime.settings.embedder.model,
        dimension=int(vectors.shape[1]),
        adapter=adapter_info(row),
        vectors=vectors.astype(float).tolist(),
    )
