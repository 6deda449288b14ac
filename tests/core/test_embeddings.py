from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from media_gateway.core.embeddings import (
    Embedder,
    EmbeddingError,
    OnnxMiniLMEmbedder,
    OpenAIEmbedder,
    get_embedder,
)
from media_gateway.core.embeddings.onnx import minilm_model_path
from media_gateway.core.embeddings.quantize import dynamic_int8_model
from media_gateway.core.settings import Settings
from tests.conftest import make_settings
from tests.fakes.openai_server import DEFAULT_API_KEY, FakeOpenAIServer, fake_embedding

# ---------------------------------------------------------------------------------------------
# Local ONNX model (real weights)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def onnx() -> AsyncIterator[OnnxMiniLMEmbedder]:
    embedder = OnnxMiniLMEmbedder(threads=2, max_tokens=256, batch_size=32)
    await embedder.load()
    yield embedder
    await embedder.aclose()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


async def test_onnx_rows_are_384_d_and_unit_norm(onnx: OnnxMiniLMEmbedder) -> None:
    vectors = await onnx.embed(["The Matrix", "a heist movie set in space", "Amélie 🎬"])
    assert isinstance(onnx, Embedder)
    assert onnx.dimension == 384
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Different texts must give different vectors (catches a constant or padding-only output).
    assert cosine(vectors[0], vectors[1]) < 0.9


async def test_onnx_batch_equals_single(onnx: OnnxMiniLMEmbedder) -> None:
    texts = [
        "A cat sits on the mat",
        "An astronaut stranded on Mars grows potatoes to survive until rescue arrives.",
        "heist",
        "Two lovers separated by war write letters for forty years.",
    ]
    batch = await onnx.embed(texts)
    singles = np.stack([await onnx.embed_one(text) for text in texts])
    np.testing.assert_allclose(batch, singles, atol=1e-4)


async def test_onnx_similar_sentences_score_higher_than_unrelated(onnx: OnnxMiniLMEmbedder) -> None:
    cat, kitten, taxes = await onnx.embed(
        ["A cat sits on the mat", "A kitten is sitting on a rug", "Quarterly tax filing deadlines"]
    )
    similar = float(cat @ kitten)
    unrelated = float(cat @ taxes)
    assert similar > unrelated + 0.3, (similar, unrelated)
    assert similar > 0.5


async def test_onnx_empty_input(onnx: OnnxMiniLMEmbedder) -> None:
    vectors = await onnx.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


async def test_onnx_chunked_batches_keep_input_order(onnx: OnnxMiniLMEmbedder) -> None:
    small_batches = OnnxMiniLMEmbedder(threads=1, max_tokens=256, batch_size=3)
    try:
        # Lengths deliberately out of order: the embedder regroups by length internally.
        texts = [f"{'very ' * (i * 7 % 11)}long plot number {i}" for i in range(11)]
        chunked = await small_batches.embed(texts)
        expected = await onnx.embed(texts)
        assert chunked.shape == (11, 384)
        np.testing.assert_allclose(chunked, expected, atol=1e-4)
    finally:
        await small_batches.aclose()


async def test_onnx_truncates_to_max_tokens() -> None:
    short_window = OnnxMiniLMEmbedder(threads=1, max_tokens=8)
    try:
        # [CLS] + 6 word pieces + [SEP] = 8 tokens, so everything after "six" is cut.
        long, prefix, other = await short_window.embed(
            [
                "one two three four five six seven eight nine ten",
                "one two three four five six",
                "one two three four five",
            ]
        )
        np.testing.assert_allclose(long, prefix, atol=1e-5)
        assert not np.allclose(prefix, other, atol=1e-3)
    finally:
        await short_window.aclose()


async def test_onnx_accepts_text_longer_than_the_model_window(onnx: OnnxMiniLMEmbedder) -> None:
    vector = await onnx.embed_one("a dark and stormy night " * 600)
    assert vector.shape == (384,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_onnx_rejects_a_window_the_model_cannot_hold() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        OnnxMiniLMEmbedder(max_tokens=513)


async def test_onnx_inference_runs_off_the_event_loop(onnx: OnnxMiniLMEmbedder) -> None:
    texts = [f"film {i}: a detective hunts a killer through a rain-soaked city " * 6 for i in range(96)]
    ticks: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.002)

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await onnx.embed(texts)
    elapsed = time.perf_counter() - started
    done.set()
    await beat
    during = [t for t in ticks if started <= t <= started + elapsed]
    # Inference on the loop would freeze the heartbeat for the whole call.
    assert elapsed > 0.05
    assert len(during) >= 5, (len(during), elapsed)


async def test_onnx_loads_lazily_on_first_use() -> None:
    lazy = OnnxMiniLMEmbedder(threads=1)
    try:
        assert not lazy.is_loaded
        vector = await lazy.embed_one("loads on demand")
        assert lazy.is_loaded
        assert vector.shape == (384,)
    finally:
        await lazy.aclose()
    with pytest.raises(EmbeddingError, match="closed"):
        await lazy.embed(["after close"])


async def test_bundled_model_is_converted_once_to_int8_and_keeps_its_meaning(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    texts = ["a heist thriller in new york", "tom hanks", "space exploration with a sad ending"]
    converted = OnnxMiniLMEmbedder(threads=1, cache_dir=cache)
    bundled = OnnxMiniLMEmbedder(threads=1, model_path=minilm_model_path())
    try:
        ours, theirs = await converted.embed(texts), await bundled.embed(texts)
        [model] = list(cache.glob("*.onnx"))
        # Integer matrix products: the weights of every MatMul became MatMulInteger.
        assert "MatMulInteger" in model.read_bytes()[:5_000_000].decode("latin-1")
        made = model.stat().st_mtime_ns
        assert np.diag(ours @ theirs.T).min() > 0.98
        again = OnnxMiniLMEmbedder(threads=1, cache_dir=cache)
        try:
            np.testing.assert_allclose(await again.embed(texts), ours, atol=1e-6)
        finally:
            await again.aclose()
        assert model.stat().st_mtime_ns == made
        assert [p.name for p in cache.glob("*.onnx")] == [model.name]
    finally:
        await converted.aclose()
        await bundled.aclose()


def test_an_unwritable_model_cache_falls_back_to_the_temp_dir(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    model = dynamic_int8_model(minilm_model_path(), blocked / "models")
    assert model.is_file()
    assert model.parent == Path(tempfile.gettempdir()) / "media-gateway-models"


async def test_get_embedder_shares_one_model_per_config() -> None:
    # A batch size no other test uses, so no other holder of the shared model skews the counts.
    config = {"onnx_threads": 2, "max_tokens": 256, "batch_size": 17}
    settings = make_settings(embedder=config)
    first = get_embedder(settings)
    second = get_embedder(make_settings(embedder=config))
    other_threads = get_embedder(make_settings(embedder={**config, "onnx_threads": 1}))
    try:
        assert isinstance(first, OnnxMiniLMEmbedder)
        assert second is first
        assert other_threads is not first
        await first.embed_one("warm up")
        # One app shutting down must not unload the model under another.
        await first.aclose()
        vector = await second.embed_one("still serving")
        assert vector.shape == (384,)
    finally:
        await second.aclose()
        await other_threads.aclose()
    with pytest.raises(EmbeddingError, match="closed"):
        await second.embed_one("gone")
    fresh = get_embedder(settings)
    try:
        assert fresh is not first
        assert (await fresh.embed_one("reloaded")).shape == (384,)
    finally:
        await fresh.aclose()


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible API, against a local fake speaking the real protocol over HTTP
# ---------------------------------------------------------------------------------------------

DIM = 64


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(embedding_dimension=DIM) as server:
        yield server


@pytest.fixture
def openai_server(fake_openai: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    fake_openai.reset()
    fake_openai.shuffle_embeddings = False
    yield fake_openai
    fake_openai.reset()


def openai_settings(server: FakeOpenAIServer, **embedder: object) -> Settings:
    values: dict[str, object] = {
        "backend": "openai",
        "url": server.url,
        "model": "text-embedding-3-small",
        "api_key": DEFAULT_API_KEY,
        "dimension": DIM,
        "timeout_sec": 5.0,
    }
    values.update(embedder)
    return make_settings(
        embedder=values, http={"retries": 2, "backoff_base_sec": 0.01, "backoff_max_sec": 0.02}
    )


@pytest.fixture
async def openai_embedder(openai_server: FakeOpenAIServer) -> AsyncIterator[Embedder]:
    embedder = get_embedder(openai_settings(openai_server))
    yield embedder
    await embedder.aclose()


def expected_rows(texts: list[str]) -> np.ndarray:
    rows = np.array([fake_embedding(t, DIM) for t in texts], dtype=np.float32)
    normalized: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalized


async def test_get_embedder_selects_openai_by_config(
    openai_server: FakeOpenAIServer, openai_embedder: Embedder
) -> None:
    assert isinstance(openai_embedder, OpenAIEmbedder)
    assert openai_embedder.dimension == DIM
    vector = await openai_embedder.embed_one("Arrival")
    assert vector.shape == (DIM,)
    assert openai_server.calls("embeddings") == 1


async def test_openai_vectors_are_normalized_and_match_the_server(
    openai_server: FakeOpenAIServer, openai_embedder: Embedder
) -> None:
    texts = ["Arrival", "Blade Runner 2049", "Paddington 2"]
    vectors = await openai_embedder.embed(texts)
    assert vectors.shape == (3, DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, expected_rows(texts), atol=1e-6)
    [request] = openai_server.requests("embeddings")
    assert request.body == {"model": "text-embedding-3-small", "input": texts}
    assert request.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"


async def test_openai_rows_follow_index_not_response_order(
    openai_server: FakeOpenAIServer, openai_embedder: Embedder
) -> None:
    openai_server.shuffle_embeddings = True
    texts = ["first", "second", "third", "fourth"]
    vectors = await openai_embedder.embed(texts)
    np.testing.assert_allclose(vectors, expected_rows(texts), atol=1e-6)


async def test_openai_empty_input_makes_no_request(
    openai_server: FakeOpenAIServer, openai_embedder: Embedder
) -> None:
    vectors = await openai_embedder.embed([])
    assert vectors.shape == (0, DIM)
    assert openai_server.calls("embeddings") == 0


async def test_openai_large_inputs_are_split_into_requests(openai_server: FakeOpenAIServer) -> None:
    embedder = OpenAIEmbedder(
        url=openai_server.url,
        model="m",
        api_key=DEFAULT_API_KEY,
        dimension=DIM,
        max_inputs_per_request=2,
    )
    try:
        texts = [f"title {i}" for i in range(5)]
        vectors = await embedder.embed(texts)
    finally:
        await embedder.aclose()
    np.testing.assert_allclose(vectors, expected_rows(texts), atol=1e-6)
    assert [r.body["input"] for r in openai_server.requests("embeddings")] == [
        ["title 0", "title 1"],
        ["title 2", "title 3"],
        ["title 4"],
    ]


async def test_openai_server_error_raises_after_retries(
    openai_server: FakeOpenAIServer, openai_embedder: Embedder
) -> None:
    openai_server.respond_next(
        "embeddings", 500, {"error": {"message": "The server had an error", "type": "server_error"}}, times=3
    )
    with pytest.raises(EmbeddingError, match="HTTP 500"):
        await openai_embedder.embed(["Arrival"])
    assert openai_server.calls("embeddings") == 3  # the first try and settings.http.retries more


async def test_openai_transient_error_is_retried(
    openai_server: FakeOpenAIServer, openai_embedder: Embedder
) -> None:
    openai_server.respond_next("embeddings", 503, {"error": {"message": "overloaded"}})
    vectors = await openai_embedder.embed(["Arrival"])
    np.testing.assert_allclose(vectors, expected_rows(["Arrival"]), atol=1e-6)
    assert openai_server.calls("embeddings") == 2


async def test_openai_client_error_is_not_retried(
    openai_server: FakeOpenAIServer, openai_embedder: Embedder
) -> None:
    openai_server.respond_next("embeddings", 400, {"error": {"message": "'$.input' is invalid"}})
    with pytest.raises(EmbeddingError, match="HTTP 400"):
        await openai_embedder.embed(["x"])
    assert openai_server.calls("embeddings") == 1


async def test_openai_wrong_key_fails_without_leaking_it(
    openai_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-this-key-is-wrong-and-secret"
    embedder = get_embedder(openai_settings(openai_server, api_key=secret))
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(EmbeddingError, match="HTTP 401") as info:
            await embedder.embed(["Arrival"])
    finally:
        await embedder.aclose()
    assert secret not in str(info.value)
    assert secret not in repr(embedder)
    assert secret not in caplog.text
    [request] = openai_server.requests("embeddings")
    assert request.headers["authorization"] == f"Bearer {secret}"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>gateway timeout</html>", "malformed"),
        ({"object": "list"}, "malformed"),
        ({"data": [{"embedding": [0.1] * DIM}]}, "malformed"),
        ({"data": [{"embedding": [0.1] * (DIM - 1), "index": 0}]}, "dimension"),
        ({"data": [{"embedding": [0.1] * DIM, "index": 3}]}, "indexes"),
        ({"data": []}, "indexes"),
        ({"data": [{"embedding": [0.0] * DIM, "index": 0}]}, "zero"),
    ],
)
async def test_openai_malformed_responses_raise(
    openai_server: FakeOpenAIServer, openai_embedder: Embedder, body: bytes | dict[str, object], match: str
) -> None:
    openai_server.respond_next("embeddings", 200, body)
    with pytest.raises(EmbeddingError, match=match):
        await openai_embedder.embed(["Arrival"])


async def test_openai_dimension_must_match_configuration(openai_server: FakeOpenAIServer) -> None:
    embedder = get_embedder(openai_settings(openai_server, dimension=1536))
    try:
        with pytest.raises(EmbeddingError, match="dimension 64, configured 1536"):
            await embedder.embed(["Arrival"])
    finally:
        await embedder.aclose()


async def test_openai_unreachable_server_raises() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedder = OpenAIEmbedder(
        url=f"http://127.0.0.1:{port}/v1",
        model="m",
        api_key="k",
        dimension=DIM,
        retries=1,
        backoff_base_sec=0.01,
    )
    try:
        with pytest.raises(EmbeddingError, match="unreachable"):
            await embedder.embed(["Arrival"])
    finally:
        await embedder.aclose()
