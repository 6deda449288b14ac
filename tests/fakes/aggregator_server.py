"""A local stand-in for a Streaming-Availability-style aggregator API, over real HTTP (uvicorn in a
thread), speaking the protocol `AggregatorSource` is written against:

    GET /changes?country=US&limit=50[&since=<cursor>]      X-API-Key: <key>
    200 {"changes": [{"platform": ..., "record": {...}}], "next_cursor": "...", "has_more": bool}
    401 {"message": ...} for a missing or wrong key; 400 for a bad limit, country or cursor

Cursors are opaque to clients (base64 of the position in the country's change log) and stay valid
when changes are appended, so a client that resumes from a cursor sees exactly the newer changes.
Tests queue failures with `fail_next` (5xx, or 429 with Retry-After) or any answer with
`respond_next`, and read `calls()` / `requests()`, which record the arrival time of each request for
rate measurements.

    with FakeAggregatorServer() as server:
        server.add_changes("US", [{"platform": "netflix", "record": {...}}])
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.threaded import ThreadedServer

DEFAULT_API_KEY = "agg-test-key-0123456789"
API_KEY_HEADER = "X-API-Key"
MAX_LIMIT = 1000


@dataclass
class RecordedRequest:
    at: float  # time.monotonic() on arrival
    params: dict[str, str]
    headers: dict[str, str]
    status: int = 0


@dataclass
class _Canned:
    status: int
    body: Any
    retry_after: str | None


@dataclass
class _State:
    changes: dict[str, list[Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    canned: deque[_Canned] = field(default_factory=deque)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def encode_cursor(country: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{country}|{position}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, int] | None:
    try:
        country, _, position = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (country, int(position)) if position.isdigit() else None


class FakeAggregatorServer(ThreadedServer):
    name = "fake-aggregator"

    def __init__(self, *, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self._lock = threading.Lock()
        self._state = _State()

    # -- test-facing API --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v4"

    def add_changes(self, country: str, changes: list[Any]) -> None:
        """Append to the country's change log (entries are served as given, malformed ones included)."""
        with self._lock:
            self._state.changes.setdefault(country, []).extend(changes)

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next `times` authorized requests with `status` (and Retry-After, if given)."""
        for _ in range(times):
            self.respond_next(status, {"message": f"injected {status}"}, retry_after=retry_after)

    def respond_next(self, status: int, body: Any, *, retry_after: str | None = None) -> None:
        """Answer the next authorized request with this body (bytes are sent as they are)."""
        with self._lock:
            self._state.canned.append(_Canned(status, body, retry_after))

    def calls(self) -> int:
        with self._lock:
            return len(self._state.requests)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    # -- HTTP ---------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v4/changes", self._changes, methods=["GET"])])

    async def _changes(self, request: Request) -> Response:
        recorded = RecordedRequest(time.monotonic(), dict(request.query_params), dict(request.headers))
        with self._lock:
            self._state.requests.append(recorded)
            response = self._answer(request)
        recorded.status = response.status_code
        return response

    def _answer(self, request: Request) -> Response:
        key = request.headers.get(API_KEY_HEADER)
        if not key:
            return _json(401, {"message": "Missing API key. Send it in the X-API-Key header."})
        if key != self.api_key:
            return _json(401, {"message": "Invalid API key."})
        if self._state.canned:
            canned = self._state.canned.popleft()
            headers = {"Retry-After": canned.retry_after} if canned.retry_after is not None else None
            if isinstance(canned.body, bytes):
                return Response(canned.body, status_code=canned.status, headers=headers)
            return _json(canned.status, canned.body, headers)

        params = request.query_params
        country = params.get("country", "")
        if len(country) != 2 or not country.isalpha():
            return _json(400, {"message": "country must be a two-letter ISO 3166-1 code"})
        limit_text = params.get("limit", "25")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            return _json(400, {"message": f"limit must be between 1 and {MAX_LIMIT}"})
        limit = int(limit_text)
        start = 0
        since = params.get("since")
        if since is not None:
            decoded = decode_cursor(since)
            if decoded is None or decoded[0] != country:
                return _json(400, {"message": "invalid cursor"})
            start = decoded[1]
        log = self._state.changes.get(country, [])
        page = log[start : start + limit]
        end = start + len(page)
        return _json(
            200,
            {"changes": page, "next_cursor": encode_cursor(country, end), "has_more": end < len(log)},
        )
