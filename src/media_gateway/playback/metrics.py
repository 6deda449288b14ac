"""Playback's Prometheus metrics (on the app's own registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from media_gateway.core.metrics import metric_set


@dataclass(frozen=True)
class PlaybackMetrics:
    sessions_started: Counter
    sessions_ended: Counter
    position_updates: Counter

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> PlaybackMetrics:
        return metric_set(registry, cls, cls._build)

    @classmethod
    def _build(cls, registry: CollectorRegistry) -> PlaybackMetrics:
        return cls(
            sessions_started=Counter(
                "mg_playback_sessions_started", "Playback sessions started.", registry=registry
            ),
            sessions_ended=Counter(
                "mg_playback_sessions_ended",
                "Playback sessions ended (a repeated end is not counted).",
                registry=registry,
            ),
            position_updates=Counter(
                "mg_playback_position_updates", "Position updates applied to sessions.", registry=registry
            ),
        )
