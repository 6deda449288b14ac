"""Playback sessions, resume points and continue-watching.

Every change (the session row, the user's resume point for the title, the bus event) is written in
one transaction, committed before the answer; the outbox relay publishes the event afterwards.
Catalog titles and offers are read straight from the `catalog` schema (read-only), as SONA does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from media_gateway.catalog import repository as catalog
from media_gateway.catalog.schemas import Content, Offer
from media_gateway.core.errors import ProblemError
from media_gateway.core.events import Event
from media_gateway.core.events.outbox import add_to_outbox
from media_gateway.core.settings import PlaybackSettings
from media_gateway.playback import repository
from media_gateway.playback.deeplinks import deep_link, pick_offer
from media_gateway.playback.metrics import PlaybackMetrics
from media_gateway.playback.models import outbox
from media_gateway.playback.repository import ResumeRow, SessionRow
from media_gateway.playback.schemas import (
    ContinueWatchingItem,
    ContinueWatchingPage,
    DeepLinkOut,
    PositionUpdate,
    ResumeOut,
    SessionEnd,
    SessionList,
    SessionOut,
    SessionStart,
)

SESSION_STARTED: Final = "playback.session_started"
POSITION_UPDATED: Final = "playback.position_updated"
SESSION_ENDED: Final = "playback.session_ended"
VALIDATION_PROBLEM: Final = "https://media-gateway.dev/problems/validation"

SessionFilter = Literal["active", "playing", "paused", "ended"]
_STATES: dict[SessionFilter, tuple[str, ...]] = {
    "active": ("playing", "paused"),
    "playing": ("playing",),
    "paused": ("paused",),
    "ended": ("ended",),
}


def invalid(loc: list[str | int], message: str) -> ProblemError:
    """The problem FastAPI's own validation answers, for checks that need the stored state."""
    return ProblemError(
        422,
        "The request is not valid.",
        title="Validation failed",
        type_=VALIDATION_PROBLEM,
        extra={"errors": [{"loc": loc, "msg": message, "type": "value_error"}]},
    )


class _Cursor(BaseModel):
    """A page's last (timestamp, id) keyset; `f` ties it to the list it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    f: str
    t: AwareDatetime
    k: uuid.UUID


def _encode_cursor(feed: str, at: datetime, key: uuid.UUID) -> str:
    body = _Cursor(f=feed, t=at, k=key).model_dump(mode="json")
    return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()


def _decode_cursor(feed: str, token: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not token:
        return None
    try:
        cursor = _Cursor.model_validate_json(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, ValidationError) as exc:
        raise invalid(["query", "cursor"], "Not a cursor this list issued.") from exc
    if cursor.f != feed:
        raise invalid(["query", "cursor"], "The cursor belongs to a different list.")
    return cursor.t, cursor.k


def _completion(position: float, duration: float | None) -> float | None:
    if not duration:
        return None
    return min(1.0, position / duration)


def _today() -> date:
    return datetime.now(UTC).date()


class PlaybackService:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: PlaybackSettings,
        metrics: PlaybackMetrics,
        on_commit: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._metrics = metrics
        # Wakes the outbox relay: the events of a committed change go out now, not at the next tick.
        self._on_commit = on_commit

    def _finished(self, position: float, duration: float | None) -> bool:
        completion = _completion(position, duration)
        return completion is not None and completion >= self._settings.completion_threshold

    # -- sessions --------------------------------------------------------------------------------

    async def start(self, user_id: uuid.UUID, body: SessionStart) -> SessionOut:
        region = body.region or self._settings.default_region
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            titles = await catalog.list_content(conn, [body.content_id])
            if not titles:
                raise invalid(["body", "content_id"], f"No title {body.content_id} in the catalog.")
            resume = await repository.get_resume(conn, user_id, body.content_id)
            duration = body.duration_seconds or _known_duration(resume, titles[0])
            position = body.position_seconds
            if position is None:
                position = self._start_position(resume, duration)
            elif duration is not None and position > duration:
                raise invalid(
                    ["body", "position_seconds"],
                    f"position_seconds exceeds the title's duration ({duration:g} s); "
                    "send duration_seconds if the stream is longer.",
                )
            session = SessionRow(
                id=uuid.uuid4(),
                user_id=user_id,
                content_id=body.content_id,
                device_id=body.device_id,
                platform=body.platform,
                region=region,
                state="playing",
                position_seconds=position,
                duration_seconds=duration,
                started_at=now,
                updated_at=now,
                ended_at=None,
            )
            await repository.insert_session(conn, session)
            out = await self._follow_up(conn, SESSION_STARTED, session)
        self._on_commit()
        self._metrics.sessions_started.inc()
        return out

    def _start_position(self, resume: ResumeRow | None, duration: float | None) -> float:
        if resume is None or self._finished(resume.position_seconds, resume.duration_seconds):
            return 0.0
        if duration is not None and resume.position_seconds > duration:
            return 0.0  # a shorter cut of the title than the one the resume point was set on
        return resume.position_seconds

    async def get(self, user_id: uuid.UUID, session_id: uuid.UUID) -> SessionOut:
        async with self._engine.connect() as conn:
            session = _found(await repository.get_session(conn, user_id, session_id), session_id)
            return await self._session_out(conn, session)

    async def sessions(
        self, user_id: uuid.UUID, state: SessionFilter | None, limit: int, cursor: str | None
    ) -> SessionList:
        feed = f"sessions:{state or 'all'}"
        after = _decode_cursor(feed, cursor)
        states = _STATES[state] if state else None
        async with self._engine.connect() as conn:
            rows = await repository.list_sessions(conn, user_id, states=states, after=after, limit=limit + 1)
            page = rows[:limit]
            links = await self._links(conn, [(s.content_id, s.region, s.platform) for s in page])
        items = [
            _session_model(s, deep_link(links.get((s.content_id, s.region, s.platform)), s.position_seconds))
            for s in page
        ]
        last = page[-1] if len(rows) > limit else None
        return SessionList(
            items=items, next_cursor=_encode_cursor(feed, last.started_at, last.id) if last else None
        )

    async def update_position(
        self, user_id: uuid.UUID, session_id: uuid.UUID, body: PositionUpdate
    ) -> SessionOut:
        async with self._engine.begin() as conn:
            current = await repository.get_session(conn, user_id, session_id, for_update=True)
            current = _found(current, session_id)
            if current.state == "ended":
                raise ProblemError(409, "The session has ended; start a new one to keep watching.")
            duration = body.duration_seconds or current.duration_seconds
            self._check_within(body.position_seconds, duration)
            session = dataclasses.replace(
                current,
                position_seconds=body.position_seconds,
                duration_seconds=duration,
                state=body.state or current.state,
                updated_at=datetime.now(UTC),
            )
            await repository.save_session(conn, session)
            out = await self._follow_up(conn, POSITION_UPDATED, session)
        self._on_commit()
        self._metrics.position_updates.inc()
        return out

    async def end(self, user_id: uuid.UUID, session_id: uuid.UUID, body: SessionEnd) -> SessionOut:
        async with self._engine.begin() as conn:
            current = await repository.get_session(conn, user_id, session_id, for_update=True)
            current = _found(current, session_id)
            if current.state == "ended":
                # Ending twice changes nothing (a retried request, or both devices pressing stop).
                return await self._session_out(conn, current)
            position = current.position_seconds if body.position_seconds is None else body.position_seconds
            self._check_within(position, current.duration_seconds)
            now = datetime.now(UTC)
            session = dataclasses.replace(
                current, position_seconds=position, state="ended", updated_at=now, ended_at=now
            )
            await repository.save_session(conn, session)
            out = await self._follow_up(conn, SESSION_ENDED, session)
        self._on_commit()
        self._metrics.sessions_ended.inc()
        return out

    @staticmethod
    def _check_within(position: float, duration: float | None) -> None:
        if duration is not None and position > duration:
            raise invalid(
                ["body", "position_seconds"],
                f"position_seconds exceeds the session's duration ({duration:g} s).",
            )

    # -- resume points -----------------------------------------------------------------------------

    async def resume(self, user_id: uuid.UUID, content_id: uuid.UUID) -> ResumeOut:
        async with self._engine.connect() as conn:
            point = await repository.get_resume(conn, user_id, content_id)
            if point is None:
                raise ProblemError(404, f"No resume point for {content_id}.")
            links = await self._links(conn, [(point.content_id, point.region, point.platform)])
        return _resume_model(
            point,
            deep_link(links.get((point.content_id, point.region, point.platform)), point.position_seconds),
        )

    async def continue_watching(
        self, user_id: uuid.UUID, limit: int, cursor: str | None
    ) -> ContinueWatchingPage:
        feed = "continue-watching"
        after = _decode_cursor(feed, cursor)
        async with self._engine.connect() as conn:
            rows = await repository.unfinished_titles(
                conn, user_id, threshold=self._settings.completion_threshold, after=after, limit=limit + 1
            )
            page = rows[:limit]
            titles = {c.id: c for c in await catalog.list_content(conn, [p.content_id for p in page])}
            links = await self._links(conn, [(p.content_id, p.region, p.platform) for p in page])
        items = []
        for point in page:
            title = titles.get(point.content_id)
            if title is None:  # taken out of the catalog: nothing to play any more
                continue
            link = deep_link(
                links.get((point.content_id, point.region, point.platform)), point.position_seconds
            )
            items.append(
                ContinueWatchingItem(
                    content_id=point.content_id,
                    position_seconds=point.position_seconds,
                    duration_seconds=point.duration_seconds,
                    completion=_completion(point.position_seconds, point.duration_seconds),
                    updated_at=point.updated_at,
                    deep_link=link,
                    title=title.title,
                    kind=title.kind,
                    year=title.year,
                    poster=title.images.get("poster"),
                )
            )
        last = page[-1] if len(rows) > limit else None
        return ContinueWatchingPage(
            items=items, next_cursor=_encode_cursor(feed, last.updated_at, last.content_id) if last else None
        )

    # -- helpers -----------------------------------------------------------------------------------

    async def _follow_up(self, conn: AsyncConnection, topic: str, session: SessionRow) -> SessionOut:
        """What every stored change of a session brings with it, in its transaction: the user's
        resume point for the title, the event, and the answer."""
        await repository.save_resume(conn, session)
        await self._emit(conn, topic, session)
        return await self._session_out(conn, session)

    async def _emit(self, conn: AsyncConnection, topic: str, session: SessionRow) -> None:
        # The payload SONA reads (sona.signals.bus_interaction): user_id and content_id as UUID
        # strings, and the completion, also derivable from position and duration.
        payload: dict[str, Any] = {
            "user_id": str(session.user_id),
            "content_id": str(session.content_id),
            "session_id": str(session.id),
            "device_id": session.device_id,
            "platform": session.platform,
            "region": session.region,
            "state": session.state,
            "position_seconds": session.position_seconds,
            "duration_seconds": session.duration_seconds,
            "completion": _completion(session.position_seconds, session.duration_seconds),
        }
        event = Event(type=topic, key=str(session.user_id), occurred_at=session.updated_at, payload=payload)
        await add_to_outbox(conn, outbox, [(topic, event)])

    async def _links(
        self, conn: AsyncConnection, wanted: list[tuple[uuid.UUID, str, str | None]]
    ) -> dict[tuple[uuid.UUID, str, str | None], Offer | None]:
        """The offer each (title, region, platform) links to, with one catalog read per region."""
        by_region: dict[str, set[uuid.UUID]] = defaultdict(set)
        for content_id, region, _ in wanted:
            by_region[region].add(content_id)
        today = _today()
        offers: dict[tuple[uuid.UUID, str], list[Offer]] = {}
        for region, ids in by_region.items():
            found = await catalog.region_offers(conn, sorted(ids), region, today)
            offers.update({(content_id, region): listed for content_id, listed in found.items()})
        return {
            (content_id, region, platform): pick_offer(offers.get((content_id, region), []), platform)
            for content_id, region, platform in wanted
        }

    async def _session_out(self, conn: AsyncConnection, session: SessionRow) -> SessionOut:
        key = (session.content_id, session.region, session.platform)
        links = await self._links(conn, [key])
        return _session_model(session, deep_link(links[key], session.position_seconds))


def _known_duration(resume: ResumeRow | None, title: Content) -> float | None:
    """The stream length a player reported before, else the catalog runtime."""
    if resume is not None and resume.duration_seconds:
        return resume.duration_seconds
    return title.runtime_minutes * 60.0 if title.runtime_minutes else None


def _found(session: SessionRow | None, session_id: uuid.UUID) -> SessionRow:
    if session is None:
        raise ProblemError(404, f"No session {session_id}.")
    return session


def _session_model(session: SessionRow, link: DeepLinkOut | None) -> SessionOut:
    return SessionOut(
        id=session.id,
        content_id=session.content_id,
        device_id=session.device_id,
        platform=session.platform,
        region=session.region,
        state=session.state,
        position_seconds=session.position_seconds,
        duration_seconds=session.duration_seconds,
        completion=_completion(session.position_seconds, session.duration_seconds),
        started_at=session.started_at,
        updated_at=session.updated_at,
        ended_at=session.ended_at,
        deep_link=link,
    )


def _resume_model(point: ResumeRow, link: DeepLinkOut | None) -> ResumeOut:
    return ResumeOut(
        content_id=point.content_id,
        position_seconds=point.position_seconds,
        duration_seconds=point.duration_seconds,
        completion=_completion(point.position_seconds, point.duration_seconds),
        updated_at=point.updated_at,
        deep_link=link,
    )
