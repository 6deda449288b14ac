"""SONA's process-wide state and background work: the models in memory, per-user state, training
on a schedule or after enough events, snapshot polling (for replicas) and the event consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from threadpoolctl import threadpool_limits

from media_gateway.catalog.vectors import catalog_vector_replica
from media_gateway.core.app import ServiceContext
from media_gateway.core.embeddings import Embedder, get_embedder
from media_gateway.core.events import make_event_bus
from media_gateway.core.settings import Settings
from media_gateway.core.vectors import VectorIndex
from media_gateway.sona.clients import AuthClient, Onboarding
from media_gateway.sona.metrics import SonaMetrics
from media_gateway.sona.repository import artifacts, interactions
from media_gateway.sona.state import CatalogState, ModelState, UserState, build_user_state
from media_gateway.sona.training import TrainingOutcome, load_catalog, load_latest, train

logger = logging.getLogger(__name__)

_TRAIN_LOCK_KEY = "sona-training"
_MAX_EPOCHS = 200_000


V = TypeVar("V")


class _TtlLru(Generic[V]):
    """A small LRU whose entries also expire; not thread-safe (used from the event loop only)."""

    def __init__(self, ttl: float, size: int) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored, value = entry
        if time.monotonic() - stored > self._ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class SonaRuntime:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        vectors: VectorIndex,
        embedder: Embedder,
        auth: AuthClient,
        metrics: SonaMetrics,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.cfg = settings.sona
        self.engine = engine
        self.vectors = vectors
        self.embedder = embedder
        self.auth = auth
        self.model = ModelState(CatalogState.empty(vectors.dimension), None, None, version=0, watermark=0)
        metrics.model_version.set_function(lambda: float(self.model.version))
        self._users: _TtlLru[UserState] = _TtlLru(self.cfg.user_state_ttl_sec, self.cfg.user_state_cache_size)
        # A tuple, so that "auth had nothing" is cached too and does not mean "ask again".
        self._onboarding: _TtlLru[tuple[Onboarding | None]] = _TtlLru(self.cfg.onboarding_ttl_sec, 10_000)
        self._building: dict[str, asyncio.Future[UserState]] = {}
        # Bumped on every write about a user, so a state built from an older read is not cached.
        self._user_epochs: dict[str, int] = {}
        self._train_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._events_since_training = 0

    # --- per-user state ----------------------------------------------------------------------------

    async def onboarding(self, user_id: str, token: str | None) -> Onboarding | None:
        cached = self._onboarding.get(user_id)
        if cached is not None:
            return cached[0]
        if token is None:
            return None
        found = await self.auth.onboarding(token)
        self._onboarding.put(user_id, (found,))
        return found

    async def user_state(self, user_id: uuid.UUID, token: str | None) -> UserState:
        key = str(user_id)
        model = self.model
        cached = self._users.get(key)
        if cached is not None and cached.model_version == model.version:
            self.metrics.user_state.labels(result="hit").inc()
            return cached
        self.metrics.user_state.labels(result="miss").inc()
        pending = self._building.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[UserState] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            epoch = self._user_epochs.get(key, 0)
            with self.metrics.user_state_build.time():
                state = await self._build(user_id, token, model)
            if self._user_epochs.get(key, 0) == epoch:
                self._users.put(key, state)
            future.set_result(state)
            return state
        except BaseException as exc:
            future.set_exception(exc)
            # Nobody else may be waiting; retrieving the exception keeps asyncio from warning.
            future.exception()
            raise
        finally:
            self._building.pop(key, None)

    async def _build(self, user_id: uuid.UUID, token: str | None, model: ModelState) -> UserState:
        async with self.engine.connect() as conn:
            items = await interactions.user_items_of(conn, user_id)
            adapter = await artifacts.active_adapter(conn, user_id)
        favourites: tuple[str, ...] = ()
        engaged = sum(1 for item in items if item.engaged)
        if engaged <= self.cfg.cold_start_max_interactions:
            onboarding = await self.onboarding(str(user_id), token)
            favourites = onboarding.favourite_genres if onboarding is not None else ()
        return await asyncio.to_thread(
            build_user_state, model, str(user_id), items, adapter, favourites, time.time()
        )

    def invalidate_users(self, user_ids: set[str]) -> None:
        if len(self._user_epochs) > _MAX_EPOCHS:
            # Dropping the epochs can only let one in-flight build cache a state that is at most
            # `user_state_ttl_sec` stale; the next event about that user invalidates it again.
            self._user_epochs.clear()
        for user in user_ids:
            self._user_epochs[user] = self._user_epochs.get(user, 0) + 1
            self._users.pop(user)

    def note_events(self, count: int) -> None:
        self._events_since_training += count
        if self._events_since_training >= self.cfg.retrain_after_events:
            self._wake.set()

    # --- training ----------------------------------------------------------------------------------

    async def train_now(self, *, train_all_adapters: bool = False) -> TrainingOutcome:
        """Run the training job here, unless another replica is training right now."""
        async with self._train_lock, self.engine.connect() as lock_conn:
            got = (
                await lock_conn.execute(
                    text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": _TRAIN_LOCK_KEY}
                )
            ).scalar_one()
            if not got:
                return TrainingOutcome(model=None, reason="another replica is training")
            try:
                self._events_since_training = 0
                with self.metrics.training_seconds.time():
                    outcome = await train(
                        self.engine, self.vectors, self.cfg, train_all_adapters=train_all_adapters
                    )
                self.metrics.training_runs.labels(outcome="trained").inc()
            except Exception:
                self.metrics.training_runs.labels(outcome="failed").inc()
                raise
            finally:
                await lock_conn.execute(
                    text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": _TRAIN_LOCK_KEY}
                )
                await lock_conn.commit()
        if outcome.model is not None:
            self._swap(outcome.model)
        return outcome

    def _swap(self, model: ModelState) -> None:
        self.model = model
        self._users.clear()

    async def reload_if_newer(self) -> bool:
        model = await load_latest(self.engine, self.vectors, self.model.version)
        if model is None:
            return False
        self._swap(model)
        return True

    async def refresh_catalog(self) -> None:
        """Catalog changed: new titles need their edges, so the graph is rebuilt with everything."""
        self._wake.set()

    async def _schedule(self) -> None:
        interval = self.cfg.retrain_interval_sec
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval if interval > 0 else None):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.train_now()
            except Exception:
                logger.exception("SONA training run failed")
                await asyncio.sleep(5.0)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.model_poll_sec)
            try:
                await self.reload_if_newer()
            except Exception:
                logger.exception("could not reload the SONA models")

    async def _load_at_start(self) -> bool:
        """The newest stored models, or at least the catalog; True when training is still needed."""
        try:
            if await self.reload_if_newer():
                return False
            # No models yet: cold start and content-based picks still work from the catalog.
            catalog = await load_catalog(self.engine, self.vectors)
            if self.model.version == 0:
                self._swap(ModelState(catalog, None, None, version=0, watermark=0))
        except Exception:
            logger.exception("SONA models could not be loaded at start; serving without them")
        return self.cfg.train_on_start

    async def _train_at_start(self) -> None:
        try:
            await self.train_now()
        except Exception:
            logger.exception("SONA training at start failed")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        if await self._load_at_start():
            tasks.append(asyncio.create_task(self._train_at_start(), name="sona-train-at-start"))
        if self.cfg.retrain_interval_sec > 0 or self.cfg.retrain_after_events:
            tasks.append(asyncio.create_task(self._schedule(), name="sona-trainer"))
        if self.cfg.model_poll_sec > 0:
            tasks.append(asyncio.create_task(self._poll(), name="sona-model-poll"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def sona_runtime_of(ctx: ServiceContext) -> SonaRuntime:
    runtime = ctx.extras.get("sona")
    if not isinstance(runtime, SonaRuntime):
        raise RuntimeError("the SONA runtime is not running")
    return runtime


@asynccontextmanager
async def sona_runtime(ctx: ServiceContext) -> AsyncIterator[None]:
    """Publishes `ctx.extras["sona"]`; starts the trainer, the snapshot poll and the event consumers."""
    from media_gateway.sona.events import EventConsumers

    if ctx.settings.sona.blas_threads:
        threadpool_limits(limits=ctx.settings.sona.blas_threads, user_api="blas")
    embedder = get_embedder(ctx.settings)
    # Its own replica of the catalog's vectors, like each discovery process (catalog.vectors).
    vectors = catalog_vector_replica(ctx.settings, ctx.engine, embedder, ctx.registry)
    auth = AuthClient(ctx.settings, ctx.http)
    bus = make_event_bus(ctx.settings, ctx.redis)
    consumers: EventConsumers | None = None
    try:
        await vectors.open()
        metrics = SonaMetrics.for_registry(ctx.registry)
        runtime = SonaRuntime(ctx.settings, ctx.engine, vectors, embedder, auth, metrics)
        ctx.extras["sona"] = runtime
        consumers = EventConsumers(runtime, bus)
        async with runtime.running():
            await consumers.start()
            yield
    finally:
        if consumers is not None:
            await consumers.stop()
        ctx.extras.pop("sona", None)
        await bus.aclose()
        await auth.aclose()
        await vectors.aclose()
        await embedder.aclose()


def describe(outcome: TrainingOutcome) -> dict[str, Any]:
    return {
        "trained": outcome.model is not None,
        "reason": outcome.reason,
        "snapshot_version": outcome.snapshot_version,
        "interactions": outcome.interactions,
        "users": outcome.users,
        "items": outcome.items,
        "content_edges": outcome.content_edges,
        "coview_edges": outcome.coview_edges,
        "adapters_trained": outcome.adapters_trained,
        "seconds": outcome.seconds,
    }
