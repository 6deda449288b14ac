"""Watchlist, progress, history and delta-sync endpoints; the user always comes from the token."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Header, Query, Request, Response

from media_gateway.core.errors import ProblemError
from media_gateway.core.security.dependencies import CurrentUser
from media_gateway.core.security.tokens import Principal
from media_gateway.sync.devices.schemas import DEVICE_ID_PATTERN
from media_gateway.sync.mutations import MutationResult, ProgressState
from media_gateway.sync.oplog import decode_cursor, encode_cursor
from media_gateway.sync.runtime import sync_service
from media_gateway.sync.schemas import ContentId, OperationBatch, ProgressReport, WatchlistChange
from media_gateway.sync.service import SyncService

router = APIRouter(prefix="/api/v1/sync", tags=["sync"])
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)

DeviceHeader = Annotated[
    str | None,
    Header(
        alias="X-Device-ID",
        description="The calling device; recorded on the operation and excluded from its live push.",
    ),
]


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def _service(request: Request) -> SyncService:
    return sync_service(request.app.state.ctx)


def _user(principal: Principal) -> UUID:
    assert principal.user_id is not None  # CurrentUser guarantees a user token
    return principal.user_id


def _device(device_id: str | None) -> str | None:
    if device_id is None:
        return None
    if not _DEVICE_ID.fullmatch(device_id):
        raise ProblemError(400, "X-Device-ID must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'")
    return device_id


def _progress(p: ProgressState) -> dict[str, Any]:
    return {
        "content_id": p.content_id,
        "position_seconds": p.position_seconds,
        "duration_seconds": p.duration_seconds,
        "completion": p.completion,
        "state": p.state,
        "watched": p.completed,
        "device_id": p.device_id or None,
        "hlc": p.hlc,
        "updated_at": p.updated_at.isoformat(),
    }


def _watchlist_result(content_id: str, result: MutationResult) -> Response:
    ops = [op.to_json() for op in result.operations]
    return _json(
        {
            "content_id": content_id,
            "in_watchlist": result.in_watchlist,
            "operation": ops[0] if ops else None,
            "cursor": encode_cursor(result.operations[-1].seq) if result.operations else None,
        }
    )


@router.get("/watchlist")
async def get_watchlist(request: Request, principal: CurrentUser) -> Response:
    """Every item with its add tags (a remove may name them), plus the cursor to poll changes from."""
    snapshot = await _service(request).watchlist(_user(principal))
    # The item list arrives as JSON from PostgreSQL; only the envelope is built here.
    tail = orjson.dumps({"count": snapshot.count, "cursor": encode_cursor(snapshot.head_seq)})
    body = b'{"items":' + snapshot.items_json.encode() + b"," + tail[1:]
    return Response(body, media_type="application/json")


@router.post("/watchlist")
async def change_watchlist(
    request: Request, body: WatchlistChange, principal: CurrentUser, device_id: DeviceHeader = None
) -> Response:
    result = await _service(request).change_watchlist(
        _user(principal), body.operation, body.content_id, _device(device_id), body.tags
    )
    return _watchlist_result(body.content_id, result)


@router.put("/watchlist/{content_id}")
async def add_to_watchlist(
    request: Request, content_id: ContentId, principal: CurrentUser, device_id: DeviceHeader = None
) -> Response:
    result = await _service(request).add_to_watchlist(_user(principal), content_id, _device(device_id))
    return _watchlist_result(content_id, result)


@router.delete("/watchlist/{content_id}")
async def remove_from_watchlist(
    request: Request, content_id: ContentId, principal: CurrentUser, device_id: DeviceHeader = None
) -> Response:
    result = await _service(request).remove_from_watchlist(_user(principal), content_id, _device(device_id))
    return _watchlist_result(content_id, result)


@router.get("/progress")
async def get_progress(
    request: Request,
    principal: CurrentUser,
    content_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> Response:
    """Titles in progress (newest first), or one title's resume point, watched or not."""
    found = await _service(request).progress(_user(principal), content_id)
    if content_id is None:
        return _json({"items": [_progress(p) for p in found]})
    if not found:
        raise ProblemError(404, f"no progress recorded for {content_id!r}")
    return _json(_progress(found[0]))


@router.post("/progress")
async def record_progress(
    request: Request, body: ProgressReport, principal: CurrentUser, device_id: DeviceHeader = None
) -> Response:
    result = await _service(request).record_progress(_user(principal), body, _device(device_id))
    if result is None:
        return _json(
            {"recorded": False, "applied": False, "completed": False, "progress": None, "operations": []}
        )
    return _json(
        {
            "recorded": True,
            # False when a write with a newer clock already holds the register.
            "applied": result.progress_won,
            "completed": result.completed,
            "progress": _progress(result.progress) if result.progress else None,
            "operations": [op.to_json() for op in result.operations],
        }
    )


@router.get("/history")
async def get_history(request: Request, principal: CurrentUser) -> Response:
    items = await _service(request).history(_user(principal))
    return _json(
        {
            "items": [
                {
                    "content_id": h.content_id,
                    "completed_at": h.completed_at,
                    "position_seconds": h.position_seconds,
                    "duration_seconds": h.duration_seconds,
                    "device_id": h.device_id or None,
                }
                for h in items
            ]
        }
    )


@router.get("/changes")
async def get_changes(
    request: Request,
    principal: CurrentUser,
    since: Annotated[str, Query(description="a cursor from a previous answer; 0 for everything")] = "0",
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Response:
    try:
        since_seq = decode_cursor(since)
    except ValueError as exc:
        raise ProblemError(400, "invalid cursor") from exc
    ops = await _service(request).changes(_user(principal), since_seq, limit)
    return _json(
        {
            "operations": [op.to_json() for op in ops],
            "cursor": encode_cursor(ops[-1].seq if ops else since_seq),
            "has_more": len(ops) == limit,
        }
    )


@router.post("/batch")
async def replay_batch(
    request: Request, body: OperationBatch, principal: CurrentUser, device_id: DeviceHeader = None
) -> Response:
    """Replay an offline queue (client op ids and hybrid-clock timestamps), in order and atomically.
    Operations already in the log come back as `duplicate` and change nothing."""
    outcomes = await _service(request).replay(_user(principal), _device(device_id), body.operations)
    return _json(
        {
            "results": [
                {
                    "op_id": str(o.op_id),
                    "status": o.status,
                    "operations": [op.to_json() for op in o.operations],
                }
                for o in outcomes
            ]
        }
    )
