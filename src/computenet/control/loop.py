"""The live loop: plan queued jobs, dispatch due placements, reconcile what executors say.

Level-triggered: every tick looks at the database as it is and moves each job one step
towards where it should be, so a tick repeated after a crash does no harm. Work on a job
is guarded by a lease (plus ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and a dispatch's
request id is written to the database BEFORE the executor is called, so a restart reuses
it and the executor never starts a job twice.

Each site has its own executor (``control.sites``); a tick is a recipe of named steps:
heartbeats (``control.health``), failover of the jobs of down sites (``control.failover``),
planning (``control.planning``), dispatch and reconcile (``control.dispatch``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from computenet.control.dispatch import Dispatcher
from computenet.control.failover import Failover
from computenet.control.health import Health
from computenet.control.leader import Leadership
from computenet.control.metrics import LoopMetrics
from computenet.control.planning import Planner
from computenet.control.sites import FALLBACK_SITE, build_site_executors
from computenet.executors.base import Executor
from computenet.settings import Settings
from computenet.store.repository import Repository, now_s

log = logging.getLogger("computenet.control")

__all__ = ["FALLBACK_SITE", "ControlLoop"]


class ControlLoop:
    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        network: Any,
        executors: dict[str, Executor] | None = None,
        metrics: LoopMetrics | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self.repo = repo
        # With several service processes, only the lease holder ticks (None: always tick).
        self.leadership = leadership
        self.settings = settings
        self.network = network
        self.owner = "loop-" + uuid.uuid4().hex[:8]
        # Site id -> its executor (without a network: the one site "local").
        self.executors = (
            executors if executors is not None else build_site_executors(network, settings)
        )
        self.metrics = metrics or LoopMetrics()
        self.health = Health(repo, self.executors, settings, self.metrics)
        self.failover = Failover(repo, settings, self.executors, self.health, self.metrics)
        self.planner = Planner(repo, settings, network, self.executors)
        self.dispatcher = Dispatcher(
            repo, settings, self.executors, self.health, self.metrics, self.owner, leadership
        )
        self.started_s = time.time()
        self.last_tick_s: float | None = None  # when the last tick completed (UTC epoch s)
        self._market: Any = None

    async def run_forever(self) -> None:
        lead = self.leadership
        while True:
            if lead is None or lead.leads():
                if lead is not None:
                    lead.note_tick()
                await asyncio.to_thread(self.timed_tick)
            if lead is None:
                await asyncio.sleep(self.settings.loop_interval_s)
            else:  # a standby wakes at once when it takes the lease over
                await lead.pause(self.settings.loop_interval_s)

    def timed_tick(self) -> None:
        """One tick, measured; a failed tick is logged and retried next interval (the state
        is in the database)."""
        began = time.perf_counter()
        try:
            self.tick()
        except Exception:
            self.metrics.tick_errors.inc()
            log.exception("control loop tick failed")
            return
        self.metrics.tick_seconds.observe(time.perf_counter() - began)
        self.last_tick_s = time.time()

    def tick(self) -> None:
        self.health.beat()
        self.failover.step()
        self.grid_pauses()
        self.plan_queued()
        self.dispatch_due()
        self.reconcile()
        self.settle_market()

    def close(self) -> None:
        self.health.close()

    # -- the steps ----------------------------------------------------------------------

    def plan_queued(self) -> None:
        rows = self.repo.claim(self.owner, ["submitted"], self.settings.lease_s, limit=200)
        if not rows:
            return
        try:
            decisions = self.planner.plan(rows, self.health.down_sites())
            for job_id, (new_state, fields) in decisions.items():
                if new_state is None:
                    action = fields.pop("audit_action", None)
                    if action is not None:  # a quota denial: audited when first given
                        self.repo.note_waiting(job_id, str(fields["message"]), action)
                    else:
                        self.repo.set_fields(job_id, **fields)
                else:
                    self.repo.transition(job_id, new_state, **fields)
        finally:
            self.repo.release([r.id for r in rows], self.owner)

    def grid_pauses(self) -> None:
        """Running work a grid event pauses stops when its time comes (``control.gridops``)."""
        from computenet.control import gridops

        gridops.pause_due(self.repo, self.executors, self.settings)

    def dispatch_due(self) -> None:
        self.dispatcher.dispatch_due()

    def reconcile(self) -> None:
        self.dispatcher.reconcile()

    def settle_market(self) -> None:
        """Expire stale quotes and settle the orders whose jobs have ended (refunds by the
        market's stated rules; idempotent through the ledger's keys)."""
        from computenet.store.market import MarketStore

        if self._market is None:
            self._market = MarketStore(self.repo.engine)
        now = now_s()
        self._market.expire(now)
        self._market.settle(now)
