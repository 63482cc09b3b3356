"""Prometheus metrics of the live loop (exposed by the API's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class LoopMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.tick_seconds = Histogram(
            "computenet_loop_tick_seconds",
            "duration of one control-loop tick (plan, dispatch, reconcile, health)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.tick_errors = Counter(
            "computenet_loop_tick_errors_total", "control-loop ticks that failed", registry=r
        )
        self.dispatches = Counter(
            "computenet_dispatches_total",
            "jobs handed to a site's executor",
            ["site"],
            registry=r,
        )
        self.dispatch_failures = Counter(
            "computenet_dispatch_failures_total",
            "dispatches that did not start (refused: the job failed; unavailable: retried; "
            "error: the executor raised)",
            ["site", "reason"],
            registry=r,
        )
        self.job_failures = Counter(
            "computenet_job_failures_total", "jobs that ended failed", ["site"], registry=r
        )
        self.site_up = Gauge(
            "computenet_site_up",
            "1 while the site's executor answers its heartbeats, 0 once it is marked down",
            ["site", "kind"],
            registry=r,
        )
        self.failovers = Counter(
            "computenet_failover_jobs_total",
            "jobs planned again because their site went down",
            ["site"],
            registry=r,
        )
