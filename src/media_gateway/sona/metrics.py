"""SONA's Prometheus metrics (on the app's own registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from media_gateway.core.metrics import metric_set


@dataclass(frozen=True)
class SonaMetrics:
    events: Counter
    user_state: Counter
    user_state_build: Histogram
    training_runs: Counter
    training_seconds: Histogram
    model_version: Gauge

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> SonaMetrics:
        return metric_set(registry, cls, cls._build)

    @classmethod
    def _build(cls, registry: CollectorRegistry) -> SonaMetrics:
        return cls(
            events=Counter(
                "sona_events",
                "Viewing events received, by source (api, bus) and outcome (recorded, duplicate).",
                ["source", "outcome"],
                registry=registry,
            ),
            user_state=Counter(
                "sona_user_state_lookups",
                "Per-user state lookups: served from memory (hit) or built (miss).",
                ["result"],
                registry=registry,
            ),
            user_state_build=Histogram(
                "sona_user_state_build_seconds",
                "Time to build one user's state (history, scores over the catalog, adapter).",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
                registry=registry,
            ),
            training_runs=Counter(
                "sona_training_runs", "Training runs, by outcome.", ["outcome"], registry=registry
            ),
            training_seconds=Histogram(
                "sona_training_seconds",
                "Duration of a full training run.",
                buckets=(1, 5, 15, 30, 60, 120, 300, 600),
                registry=registry,
            ),
            model_version=Gauge(
                "sona_model_version", "Snapshot version of the models in memory (0: none).", registry=registry
            ),
        )
