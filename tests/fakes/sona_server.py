"""A local stand-in for SONA's personalization scoring, until the real SONA lands (issue 4 allows it).

It speaks exactly the contract discovery calls:

    POST /api/v1/personalization/score   Authorization: Bearer <the user's access token>
    {"content_ids": ["<uuid>", ... at most 500]}
    -> 200 {"scores": {"<uuid>": 0..1}, "components": {...}, "weight": float | null,
            "experiment": {"id": "...", "variant": "..."} | null}

Scores come from `affinities` (content id -> score; others 0). Knobs: `delay_sec` (a slow SONA),
`status` (a failing one), `weight` and `experiment`. Every call is recorded with its
Authorization header and ids, and a call without a bearer token gets 401.

    with FakeSonaServer() as sona:
        settings = make_settings(service_urls={"sona": sona.url})
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.threaded import ThreadedServer

MAX_IDS = 500


@dataclass(frozen=True)
class ScoreCall:
    authorization: str | None
    content_ids: list[str]


class FakeSonaServer(ThreadedServer):
    name = "fake-sona"

    def __init__(self) -> None:
        super().__init__()
        self.affinities: dict[str, float] = {}
        self.weight: float | None = None
        self.experiment: dict[str, str] | None = {"id": "search-personalization", "variant": "medium"}
        self.delay_sec = 0.0
        self.status = 200
        self._lock = threading.Lock()
        self._calls: list[ScoreCall] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def calls(self) -> list[ScoreCall]:
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/v1/personalization/score", self._score, methods=["POST"])])

    async def _score(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        try:
            body: Any = orjson.loads(await request.body())
            ids = [str(uuid.UUID(i)) for i in body["content_ids"]]
        except (ValueError, KeyError, TypeError):
            return _problem(422, "content_ids must be a list of content ids")
        with self._lock:
            self._calls.append(ScoreCall(authorization, ids))
        if self.delay_sec:
            await asyncio.sleep(self.delay_sec)
        if not authorization or not authorization.startswith("Bearer "):
            return _problem(401, "a user's bearer token is required")
        if len(ids) > MAX_IDS:
            return _problem(422, f"at most {MAX_IDS} content ids")
        if self.status != 200:
            return _problem(self.status, "SONA is unwell")
        scores = {i: self.affinities.get(i, 0.0) for i in ids}
        answer = {
            "scores": scores,
            "components": {"collaborative": scores, "content": {}},
            "weight": self.weight,
            "experiment": self.experiment,
        }
        return Response(orjson.dumps(answer), media_type="application/json")


def _problem(status: int, detail: str) -> Response:
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail}
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json")
