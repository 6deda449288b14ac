"""The remote embedder: any OpenAI-compatible `/embeddings` API."""

from __future__ import annotations

import httpx
import numpy as np
import orjson
from numpy.typing import NDArray
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from media_gateway.core.embeddings.base import EmbeddingError, FloatMatrix, _empty, _normalize_rows

# Keeps each request well under the API's per-request token cap even for long overviews.
OPENAI_MAX_INPUTS_PER_REQUEST = 256
# The statuses the official OpenAI client retries.
_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class OpenAIEmbedder:
    """`POST {url}/embeddings` of any OpenAI-compatible server.

    Rows are re-normalized here because not every compatible server returns unit vectors.
    """

    def __init__(
        self,
        *,
        url: str,
        model: str,
        api_key: str,
        dimension: int,
        timeout_sec: float = 10.0,
        retries: int = 2,
        backoff_base_sec: float = 0.05,
        backoff_max_sec: float = 1.0,
        max_inputs_per_request: int = OPENAI_MAX_INPUTS_PER_REQUEST,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension}")
        self.dimension = dimension
        self.model = model
        self.endpoint = url.rstrip("/") + "/embeddings"
        self._api_key = api_key
        self._retries = max(0, retries)
        self._backoff_base = backoff_base_sec
        self._backoff_max = backoff_max_sec
        self._max_inputs = max(1, max_inputs_per_request)
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(timeout=timeout_sec, headers=headers, transport=transport)

    @property
    def model_id(self) -> str:
        return f"openai:{self.model}:{self.dimension}"

    def __repr__(self) -> str:
        # The api key stays out of reprs, which end up in logs and tracebacks.
        return f"OpenAIEmbedder(endpoint={self.endpoint!r}, model={self.model!r}, dimension={self.dimension})"

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    async def embed(self, texts: list[str]) -> FloatMatrix:
        if not texts:
            return _empty(self.dimension)
        parts = [
            await self._embed_request(texts[start : start + self._max_inputs])
            for start in range(0, len(texts), self._max_inputs)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def embed_one(self, text: str) -> NDArray[np.float32]:
        row: NDArray[np.float32] = (await self.embed([text]))[0]
        return row

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _embed_request(self, texts: list[str]) -> FloatMatrix:
        body = orjson.dumps({"model": self.model, "input": texts})
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retries + 1),
            wait=wait_random_exponential(multiplier=self._backoff_base, max=self._backoff_max),
            retry=retry_if_exception(lambda e: isinstance(e, _RetryableStatus | httpx.TransportError)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._client.post(
                        self.endpoint, content=body, headers={"Content-Type": "application/json"}
                    )
                    if response.status_code in _RETRYABLE_STATUS:
                        raise _RetryableStatus(response)
        except _RetryableStatus as exc:
            raise EmbeddingError(
                f"embeddings API {self.endpoint} answered HTTP {exc.response.status_code} "
                f"after {self._retries + 1} attempts: {self._redact(exc.response.text[:300])}"
            ) from None
        except httpx.HTTPError as exc:
            raise EmbeddingError(
                f"embeddings API {self.endpoint} unreachable: {type(exc).__name__}: {self._redact(str(exc))}"
            ) from None
        if not response.is_success:
            detail = self._redact(response.text[:300])
            raise EmbeddingError(
                f"embeddings API {self.endpoint} answered HTTP {response.status_code}: {detail}"
            )
        return self._parse(response.content, len(texts))

    def _parse(self, content: bytes, expected: int) -> FloatMatrix:
        try:
            payload = orjson.loads(content)
            data = payload["data"]
            if not isinstance(data, list):
                raise TypeError("'data' is not a list")
            items = sorted(data, key=lambda item: int(item["index"]))
            indexes = [int(item["index"]) for item in items]
            matrix = np.asarray([item["embedding"] for item in items], dtype=np.float32)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"malformed embeddings response from {self.endpoint}: {exc}") from None
        if indexes != list(range(expected)):
            raise EmbeddingError(
                f"embeddings response from {self.endpoint} has indexes {indexes[:10]}..., "
                f"want 0..{expected - 1}"
            )
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            got = matrix.shape[1] if matrix.ndim == 2 else "ragged"
            raise EmbeddingError(
                f"embeddings from {self.endpoint} have dimension {got}, configured {self.dimension} "
                "(set MG_EMBEDDER__DIMENSION to the model's size)"
            )
        if not np.isfinite(matrix).all():
            raise EmbeddingError(f"embeddings from {self.endpoint} contain non-finite values")
        if (np.linalg.norm(matrix, axis=1) == 0).any():
            raise EmbeddingError(f"embeddings from {self.endpoint} contain an all-zero vector")
        return _normalize_rows(matrix)
