"""Failover: the jobs of a site marked down are planned again elsewhere.

Level-triggered, like the rest of the loop: every tick, each job still placed or running at
a down site is sent back to planning in one transaction (so a restart in the middle finds
each job either still there or fully moved). Its run there is cancelled when the engine
answers in time; otherwise it is recorded as a *stale run*, cancelled when the site answers
again, and nothing it reports reaches the job (which has a new request id), so no job runs
twice at once for longer than the site is unreachable.

A checkpointable job keeps the work saved by its last checkpoint: it ran at the dead site
from ``run_started_s`` until the site's last heartbeat, saving every
``checkpoint_interval_s``; the engine plans only the work left.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

from computenet.control.health import Health
from computenet.control.metrics import LoopMetrics
from computenet.engine import reasons as rs
from computenet.engine.reasons import Code, Role
from computenet.executors.base import Executor
from computenet.settings import Settings
from computenet.store.models import JobRow, StaleRunRow
from computenet.store.repository import Repository, now_s

log = logging.getLogger("computenet.control.failover")


class Failover:
    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        executors: Mapping[str, Executor],
        health: Health,
        metrics: LoopMetrics,
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.executors = executors
        self.health = health
        self.metrics = metrics
        self._answers = True

    def step(self) -> None:
        for site_id in sorted(self.health.down_sites()):
            self._answers = True  # until one cancel there fails: then no more waits this tick
            for r in self.repo.jobs_at(site_id, ["placed", "running"]):
                try:
                    self._move(r, site_id)
                except Exception:  # one job's trouble must not keep the others at a dead site
                    log.exception("moving job %s off down site %s failed", r.id, site_id)
        for run in self.repo.stale_runs():
            if run.site_id in self.executors and self.health.usable(run.site_id):
                self._cancel_stale_run(run)

    def _move(self, r: JobRow, site_id: str) -> None:
        left_behind = r.dispatch_id is not None and not self._cancel(r, site_id)
        checkpoints, work_h = self._saved_work(r, site_id)
        if checkpoints:
            reason = (
                f"its site {site_id} went down; resumes from checkpoint "
                f"{r.checkpoints + checkpoints} ({r.duration_h - r.work_done_h - work_h:.4g} h "
                "of work left)"
            )
        elif r.state == "running":
            reason = f"its site {site_id} went down; planned again from the start"
        else:
            reason = f"its site {site_id} went down before it started; planned again"
        why = rs.reason(Code.SITE_DOWN, Role.DEFERRED, site_id=site_id, detail=reason)
        moved = self.repo.replan_from_down_site(
            r.id,
            site_id,
            reason,
            run_left_behind=left_behind,
            reasons=[why.to_json()],
            checkpoints_added=checkpoints,
            work_added_h=work_h,
        )
        if moved:
            log.warning("job %s: %s", r.id, reason)
            self.metrics.failovers.labels(site_id).inc()

    def _cancel(self, r: JobRow, site_id: str) -> bool:
        """Cancel the job's run at the down site if its engine answers in time."""
        executor = self.executors.get(site_id)
        if executor is None or not executor.capabilities.cancel or not self._answers:
            return False
        try:
            self.health.call(
                site_id,
                lambda: executor.cancel(str(r.dispatch_id), r.local_id),
                self.settings.heartbeat_timeout_s,
            )
        except Exception as exc:  # unreachable, as expected of a down site
            log.info("job %s: cancel at down site %s failed: %s", r.id, site_id, exc)
            self._answers = False
            return False
        return True

    def _saved_work(self, r: JobRow, site_id: str) -> tuple[int, float]:
        """``(checkpoints, reference hours)`` saved since the job's run at ``site_id``
        started, counting only until the site last answered."""
        if r.state != "running" or not r.checkpointable or r.run_started_s is None:
            return 0, 0.0
        if r.start_s is None or r.end_s is None or r.end_s <= r.start_s:
            return 0, 0.0
        last_seen = self.health.sites[site_id].last_heartbeat_s or now_s()
        ran_s = max(0, min(now_s(), last_seen) - r.run_started_s)
        interval_s = r.checkpoint_interval_s or self.settings.checkpoint_interval_s
        checkpoints = math.floor(ran_s / interval_s)
        if checkpoints == 0:
            return 0, 0.0
        left_h = r.duration_h - float(r.work_done_h or 0.0)
        # The planned run did ``left_h`` of reference work in ``end_s - start_s`` seconds.
        share = min(1.0, checkpoints * interval_s / (r.end_s - r.start_s))
        return checkpoints, left_h * share

    def _cancel_stale_run(self, run: StaleRunRow) -> None:
        """Stop a run whose job moved away while its site was down (the site answers now)."""
        executor = self.executors[run.site_id]
        try:
            if executor.capabilities.cancel:
                executor.cancel(run.request_id, run.local_id)
                outcome = "cancelled: its job was planned elsewhere while the site was down"
            else:
                outcome = "left to end: the site's executor cannot cancel"
        except Exception as exc:  # tried again next tick
            log.info("stale run %s at %s: cancel failed: %s", run.request_id, run.site_id, exc)
            return
        self.repo.drop_stale_run(run, outcome)
