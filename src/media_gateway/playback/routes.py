"""Sessions, resume points and continue-watching; the user always comes from the token."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from media_gateway.core.security.dependencies import CurrentUser
from media_gateway.core.security.tokens import Principal
from media_gateway.playback.runtime import playback_service
from media_gateway.playback.schemas import (
    ContinueWatchingPage,
    PositionUpdate,
    ResumeOut,
    SessionEnd,
    SessionList,
    SessionOut,
    SessionStart,
)
from media_gateway.playback.service import PlaybackService, SessionFilter

router = APIRouter(prefix="/api/v1", tags=["playback"])

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")]


def _service(request: Request) -> PlaybackService:
    return playback_service(request.app.state.ctx)


def _user(principal: Principal) -> UUID:
    assert principal.user_id is not None  # CurrentUser guarantees a user token
    return principal.user_id


@router.post("/sessions", status_code=201)
async def start_session(request: Request, body: SessionStart, principal: CurrentUser) -> SessionOut:
    """Start watching a title: from the resume point unless a position is given (from 0 once the
    title was finished)."""
    return await _service(request).start(_user(principal), body)


@router.get("/sessions")
async def list_sessions(
    request: Request,
    principal: CurrentUser,
    state: Annotated[SessionFilter | None, Query(description="`active`: not ended.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SessionList:
    """The user's sessions, newest first."""
    return await _service(request).sessions(_user(principal), state, limit, cursor)


@router.get("/sessions/{session_id}")
async def get_session(request: Request, session_id: UUID, principal: CurrentUser) -> SessionOut:
    return await _service(request).get(_user(principal), session_id)


@router.patch("/sessions/{session_id}/position")
async def update_position(
    request: Request, session_id: UUID, body: PositionUpdate, principal: CurrentUser
) -> SessionOut:
    """Report the position (and play/pause); it becomes the user's resume point for the title."""
    return await _service(request).update_position(_user(principal), session_id, body)


@router.post("/sessions/{session_id}/end")
async def end_session(
    request: Request, session_id: UUID, principal: CurrentUser, body: SessionEnd | None = None
) -> SessionOut:
    """End the session (idempotent: ending an ended session changes nothing)."""
    return await _service(request).end(_user(principal), session_id, body or SessionEnd())


@router.get("/playback/resume/{content_id}")
async def get_resume_point(request: Request, content_id: UUID, principal: CurrentUser) -> ResumeOut:
    return await _service(request).resume(_user(principal), content_id)


@router.get("/playback/continue-watching")
async def continue_watching(
    request: Request, principal: CurrentUser, limit: Limit = 20, cursor: Cursor = None
) -> ContinueWatchingPage:
    """Titles started and not finished, most recently watched first."""
    return await _service(request).continue_watching(_user(principal), limit, cursor)
