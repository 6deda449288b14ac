"""A local stand-in for the OpenAI HTTP API, served over real HTTP by uvicorn in a thread.

It speaks the wire protocol of the real service (paths under `/v1`, Bearer auth, OpenAI error
bodies), so the code under test uses its production HTTP client unchanged. Responses are
deterministic functions of the request, and every call is recorded for assertions.

Endpoints live in `FakeOpenAIServer.routes()`: embeddings and chat completions, each reusing
`_authorize`, `_record` and the canned-response queue.

    with FakeOpenAIServer(embedding_dimension=64) as server:
        settings = make_settings(embedder={"backend": "openai", "url": server.url, ...})

Chat completions answer with whatever `chat_reply(last user message)` returns (a dict is sent as
JSON text, a str as is) inside the real response envelope; `chat_delay_sec` makes the model slow.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
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

# What the fake model answers to a user message: a dict (sent as JSON text) or raw content.
ChatReply = Callable[[str], dict[str, Any] | str]
_CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


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


def default_chat_reply(user_message: str) -> dict[str, Any]:
    """A confident, nearly empty intent: tests that care about the content set their own reply."""
    return {"keywords": user_message.split()[:5], "confidence": 0.9}


def chat_completion(
    content: str,
    *,
    model: str = "gpt-4o-mini",
    finish_reason: str = "stop",
    prompt_tokens: int = 0,
) -> dict[str, Any]:
    """The body of a `chat.completion` as the real API returns it; usable with `respond_next`."""
    completion_tokens = len(content.split())
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_fake",
    }


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
        chat_reply: ChatReply = default_chat_reply,
        chat_delay_sec: float = 0.0,
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
        # Plain attributes, so a test can change the model's answer or speed between calls.
        self.chat_reply = chat_reply
        self.chat_delay_sec = chat_delay_sec
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
        return [
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
        ]

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

    async def _chat(self, request: Request) -> Response:
        body = await self._json_body(request)
        canned = self._record("chat", request, body)
        denied = self._authorize(request)
        if denied is not None:
            return denied
        if self.chat_delay_sec > 0:
            await asyncio.sleep(self.chat_delay_sec)
        if canned is not None:
            return Response(canned.body, status_code=canned.status, media_type=canned.content_type)
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter")
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict) and m.get("role") in _CHAT_ROLES and isinstance(m.get("content"), str)
                for m in messages
            )
        ):
            return openai_error(400, "Invalid value for 'messages'.")
        temperature = body.get("temperature", 1)
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            return openai_error(400, "Invalid 'temperature': expected a number between 0 and 2.")
        response_format = body.get("response_format")
        if response_format is not None:
            kind = response_format.get("type") if isinstance(response_format, dict) else None
            if kind not in ("text", "json_object", "json_schema"):
                return openai_error(400, "Invalid value for 'response_format.type'.")
            if kind == "json_object" and not any("json" in m["content"].casefold() for m in messages):
                return openai_error(
                    400,
                    "'messages' must contain the word 'json' in some form, to use 'response_format' "
                    "of type 'json_object'.",
                )
        user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        reply = self.chat_reply(user)
        content = reply if isinstance(reply, str) else orjson.dumps(reply).decode()
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        payload = chat_completion(content, model=model, prompt_tokens=prompt_tokens)
        return Response(orjson.dumps(payload), media_type="application/json")
