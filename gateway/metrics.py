"""Prometheus metrics of one hotline process (GET /metrics), in a registry of its own.

Only counts, states and durations: no caller ids, transcripts or ticket details. Label values come
from small fixed sets (end reasons, error codes, model names, ticket categories).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.concurrency import InferencePool

log = logging.getLogger("hotline.metrics")

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# End of the caller's speech to each stage; a reply in under a second is the goal, 3 s the limit.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0, 30.0, 60.0)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


class _LiveState(Collector):
    """What is read when scraped: model states, queue depths, escalations waiting in the store."""

    def __init__(
        self,
        pools: Callable[[], Mapping[str, InferencePool]],
        model_states: Callable[[], Mapping[str, str]],
        waiting_escalations: Callable[[], int],
    ) -> None:
        self._pools = pools
        self._model_states = model_states
        self._waiting_escalations = waiting_escalations

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("hotline_model_queue_depth", "jobs waiting for a model's worker", labels=["model"])
        busy = GaugeMetricFamily("hotline_model_jobs_running", "jobs a model is working on", labels=["model"])
        for name, pool in sorted(self._pools().items()):
            depth.add_metric([name], pool.waiting)
            busy.add_metric([name], pool.running)
        ready = GaugeMetricFamily("hotline_model_ready", "1 when a model is loaded, 0 while loading or failed",
                                  labels=["model"])
        for name, state in sorted(self._model_states().items()):
            ready.add_metric([name], 1.0 if state == "ready" else 0.0)
        yield from (depth, busy, ready)
        try:
            waiting = self._waiting_escalations()
        except Exception:  # a store that is away: the other metrics still answer
            log.warning("counting waiting escalations failed", exc_info=True)
            return
        yield GaugeMetricFamily("hotline_escalations_waiting", "calls waiting for a human agent", value=waiting)


class Metrics:
    def __init__(
        self,
        *,
        active_calls: Callable[[], int],
        pools: Callable[[], Mapping[str, InferencePool]],
        model_states: Callable[[], Mapping[str, str]],
        waiting_escalations: Callable[[], int],
    ) -> None:
        self.registry = registry = CollectorRegistry()
        self.calls_active = Gauge("hotline_calls_active", "calls in progress", registry=registry)
        self.calls_active.set_function(lambda: float(active_calls()))
        self.calls_ended = Counter("hotline_calls_ended", "calls ended, by reason", ["reason"], registry=registry)
        self.turn_latency = Histogram(
            "hotline_turn_latency_seconds",
            "from the end of the caller's speech to the final transcript (stage=final), the first reply "
            "text (stage=reply_text) and the first reply audio (stage=reply_audio)",
            ["stage"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.model_wait = Histogram("hotline_model_wait_seconds", "time a job waited for a model's worker",
                                    ["model"], buckets=WAIT_BUCKETS, registry=registry)
        self.errors = Counter("hotline_errors", "errors told to callers, by code", ["code"], registry=registry)
        self.tickets_opened = Counter("hotline_tickets_opened", "tickets opened during calls, by category",
                                      ["category"], registry=registry)
        registry.register(_LiveState(pools, model_states, waiting_escalations))

    def wait_observer(self, model: str) -> Callable[[float], None]:
        return self.model_wait.labels(model).observe

    def latency(self, stage: str, seconds: float) -> None:
        self.turn_latency.labels(stage).observe(max(seconds, 0.0))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
