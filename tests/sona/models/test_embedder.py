"""The configurable base-model path, and LoRA applied to real MiniLM vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from media_gateway.core.embeddings import EmbeddingError, get_embedder, minilm_model_path
from media_gateway.core.embeddings.quantize import default_cache_dir, dynamic_int8_model
from media_gateway.sona.models import personalize, train_adapter
from tests.conftest import make_settings

TEXTS = ["dark sci-fi about first contact", "feel-good family comedy", "true crime documentary"]


async def test_embedder_loads_the_model_from_the_configured_path(tmp_path: Path) -> None:
    copy = tmp_path / "models" / "minilm.onnx"
    copy.parent.mkdir()
    # The model the default embedder runs: the bundled one as converted to int8.
    shutil.copyfile(dynamic_int8_model(minilm_model_path(), default_cache_dir()), copy)
    bundled = get_embedder(make_settings())
    configured = get_embedder(make_settings(embedder={"model_path": str(copy)}))
    try:
        assert configured is not bundled
        vectors = await configured.embed(TEXTS)
        np.testing.assert_allclose(vectors, await bundled.embed(TEXTS), atol=1e-5)
    finally:
        await configured.aclose()
        await bundled.aclose()


async def test_a_missing_model_path_is_a_clear_error(tmp_path: Path) -> None:
    embedder = get_embedder(make_settings(embedder={"model_path": str(tmp_path / "absent.onnx")}))
    try:
        with pytest.raises(EmbeddingError, match=r"absent\.onnx"):
            await embedder.embed_one("anything")
    finally:
        await embedder.aclose()


async def test_a_trained_adapter_personalizes_real_embeddings() -> None:
    embedder = get_embedder(make_settings())
    try:
        liked = await embedder.embed(
            ["space exploration epic", "alien contact drama", "time travel thriller"]
        )
        query = await embedder.embed_one("a quiet romantic comedy")
    finally:
        await embedder.aclose()
    adapter = train_adapter(liked, np.ones(len(liked)), epochs=50, lr=0.05)
    personalized = personalize(query, adapter)
    assert personalized.shape == (384,)
    assert np.linalg.norm(personalized) == pytest.approx(1.0, abs=1e-5)
    assert float(personalized @ query) < 0.9999
    np.testing.assert_allclose(personalize(query, None), query, atol=1e-6)
