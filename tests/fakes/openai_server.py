"""A local stand-in for the OpenAI HTTP API, served over real HTTP by uvicorn in a thread.

It speaks the wire protocol of the real service (paths under `/v1`, Bearer auth, OpenAI error
bodies), so the code under test uses its production HTTP client unchanged. Responses are
deterministic functions of the request, and every call is recorded for assertions.

Endpoints live in `FakeOpenAIServer.routes()`; a new one (chat completions) is one handler plus
one `Route`, reusing `_authorize`, `_record` and the canned-response queue.

    with FakeOpenAIServer(embedding_dimension=64) as server:
        settings = make_settings(embedder={"backend": "openai", "url": server.url, ...})
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.threaded import ThreadedServer

DEFAULT_API_KEY = "sk-test-fake-key-0123456789"


def fake_embedding(text: str, dimension: int, *, normalized: bool = False) -> list[float]:
    """The vector the fake returns for `text`: seeded by its sha256, so stable across runs."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dimension)
    if normalized:
        vector /= np.linalg.norm(vector)
    else:
        # Scaled away from unit norm so a client that forgets to normalize is caught.
        vector *= 2.5
    return [float(x) for x in vector]


@dataclass
class RecordedRequest:
    endpoint: str
    headers: dict[str, str]
    body: Any


@dataclass
class CannedResponse:
    status: int
    body: bytes
    content_type: str = "application/json"


def openai_error(
    status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None
) -> Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@dataclass
class _State:
    calls: Counter[str] = field(default_factory=Counter)
    requests: list[RecordedRequest] = field(default_factory=list)
    canned: dict[str, deque[CannedResponse]] = field(default_factory=dict)


class FakeOpenAIServer(ThreadedServer):
    name = "fake-openai"

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        embedding_dimension: int = 64,
        normalized: bool = False,
        shuffle_embeddings: bool = False,
        reject_inputs_containing: str | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.embedding_dimension = embedding_dimension
        self.normalized = normalized
        # The real API returns rows in input order but documents `index`; shuffling checks that
        # clients rely on `index`, as the contract says.
        self.shuffle_embeddings = shuffle_embeddings
        # Lets a test poison one item: the real API answers 400 for a request with an input it
        # refuses (too long, flagged), which fails the whole request.
        self.reject_inputs_containing = reject_inputs_containing
        self._lock = threading.Lock()
        self._state = _State()

    # -- test-facing API --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL clients are configured with (like https://api.openai.com/v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def calls(self, endpoint: str) -> int:
        with self._lock:
            return self._state.calls[endpoint]

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._state.requests if endpoint is None or r.endpoint == endpoint]

    def respond_next(
        self, endpoint: str, status: int, body: bytes | dict[str, Any], *, times: int = 1
    ) -> None:
        """Serve this response instead of the real one to the next `times` authorized calls."""
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        with self._lock:
            queue = self._state.canned.setdefault(endpoint, deque())
            queue.extend(CannedResponse(status, raw) for _ in range(times))

    def reset(self) -> None:
        with self._lock:
            self._state = _State()

    # -- HTTP ---------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route("/v1/embeddings", self._embeddings, methods=["POST"])]

    def app(self) -> Starlette:
        return Starlette(routes=self.routes())

    def _record(self, endpoint: str, request: Request, body: Any) -> CannedResponse | None:
        with self._lock:
            self._state.calls[endpoint] += 1
            self._state.requests.append(RecordedRequest(endpoint, dict(request.headers), body))
            queue = self._state.canned.get(endpoint)
            return queue.popleft() if queue else None

    def _authorize(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if header.removeprefix("Bearer ") != self.api_key:
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        return None

    async def _json_body(self, request: Request) -> Any:
        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None

    async def _embeddings(self, request: Request) -> Response:
        body = await self._json_body(request)
        canned = self._record("embeddings", request, body)
        denied = self._authorize(request)
        if denied is not None:
            return denied
        if canned is not None:
            return Response(canned.body, status_code=canned.status, media_type=canned.content_type)
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter")
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(text, str) and text for text in inputs)
        ):
            return openai_error(400, "'$.input' is invalid. Please check the API reference.")
        if self.reject_inputs_containing and any(self.reject_inputs_containing in text for text in inputs):
            return openai_error(400, "This model's maximum context length was exceeded.")
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": fake_embedding(text, self.embedding_dimension, normalized=self.normalized),
            }
            for i, text in enumerate(inputs)
        ]
        if self.shuffle_embeddings:
            data.reverse()
        tokens = sum(len(text.split()) for text in inputs)
        payload = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Response(orjson.dumps(payload), media_type="application/json")
