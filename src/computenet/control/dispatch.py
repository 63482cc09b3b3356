"""Dispatch and reconcile: each placed job goes to its site's executor, and each running
job's status comes back from it, one job at a time and each on its own.

One job never stops the others: ``ExecutorRefused`` fails that job with the engine's
message; ``ExecutorUnavailable`` leaves it where it is (retried next tick, and the site
stops being called until a heartbeat answers); any other exception is logged and recorded
on that job. Calls go only to sites that are up and answering, so a silent engine cannot
hang the tick.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping

from computenet.control.health import Health
from computenet.control.leader import Leadership
from computenet.control.metrics import LoopMetrics
from computenet.errors import ExecutorRefused, ExecutorUnavailable
from computenet.executors.base import Dispatch, Executor
from computenet.settings import Settings
from computenet.store.models import JobRow
from computenet.store.repository import Repository, now_s

log = logging.getLogger("computenet.control")


class Dispatcher:
    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        executors: Mapping[str, Executor],
        health: Health,
        metrics: LoopMetrics,
        owner: str,
        leadership: Leadership | None = None,
    ) -> None:
        self.repo = repo
        # With several service processes, a dispatch is recorded only under the lease.
        self.leadership = leadership
        self.settings = settings
        self.executors = executors
        self.health = health
        self.metrics = metrics
        self.owner = owner

    # -- dispatch -----------------------------------------------------------------------

    def dispatch_due(self) -> None:
        """Start every placed job whose start time has come, exactly once."""
        rows = self.repo.claim(self.owner, ["placed"], self.settings.lease_s, 100, due_by_s=now_s())
        try:
            for r in rows:
                if self.leadership is not None and self.leadership.fence() is None:
                    break  # this process lost the loop in mid-tick: dispatch nothing more
                if r.site_id is not None and self.health.usable(r.site_id):
                    self._dispatch_one(r)
        finally:
            self.repo.release([r.id for r in rows], self.owner)

    def _dispatch_one(self, r: JobRow) -> None:
        site = str(r.site_id)
        executor = self.executors.get(site)
        if executor is None:
            self._fail(r, site, f"site {site!r} has no executor in this service", "error")
            return
        if r.command and not executor.capabilities.runs_commands:
            why = (
                f"it has a command, and site {site!r}'s executor ({executor.kind}) runs no "
                "commands; start the service with `serve --executor local` or give the site "
                "an executor that runs commands"
            )
            self._fail(r, site, why, "refused")
            return
        dispatch_id = r.dispatch_id or f"{r.id}-{uuid.uuid4().hex[:8]}"
        fence = None if self.leadership is None else self.leadership.fence()
        if r.dispatch_id is None and not self.repo.set_dispatch(r.id, site, dispatch_id, fence):
            return  # someone else recorded a dispatch meanwhile, or this loop was deposed
        try:
            local_id = executor.submit(_dispatch(r, dispatch_id, self.settings))
        except ExecutorRefused as exc:
            self._fail(r, site, f"refused by site {site!r} ({executor.kind}): {exc}", "refused")
            return
        except ExecutorUnavailable as exc:
            self._unavailable(r, site, exc)
            return
        except Exception as exc:  # the executor failed on this job's input: retrying won't help
            log.exception("executor of site %s failed on job %s", site, r.id)
            why = f"the executor of site {site!r} failed on it: {type(exc).__name__}: {exc}"
            self._fail(r, site, why, "error")
            return
        self.repo.transition(r.id, "running", local_id=local_id, run_started_s=now_s())
        self.metrics.dispatches.labels(site).inc()

    def _fail(self, r: JobRow, site: str, why: str, reason: str) -> None:
        explanation = dict(r.explanation or {}, executor=why)
        self.repo.transition(r.id, "failed", message=why, explanation=explanation)
        self.metrics.dispatch_failures.labels(site, reason).inc()
        self.metrics.job_failures.labels(site).inc()

    def _unavailable(self, r: JobRow, site: str, exc: Exception) -> None:
        why = f"site {site!r} did not answer (retried): {exc}"
        self.health.note_unavailable(site, str(exc))
        self.repo.set_fields(r.id, message=why)
        self.metrics.dispatch_failures.labels(site, "unavailable").inc()

    # -- reconcile ----------------------------------------------------------------------

    def reconcile(self) -> None:
        """Finish running jobs whose run ended; stop the runs of cancelled ones."""
        for r in self.repo.to_reconcile():
            site = r.executor or ""
            executor = self.executors.get(site)
            if executor is None or r.dispatch_id is None or not self.health.usable(site):
                continue
            step = self._stop if r.state == "cancelled" else self._poll
            self._isolated(r, site, lambda r=r, ex=executor, step=step: step(r, ex))  # type: ignore[misc]

    def _isolated(self, r: JobRow, site: str, call: Callable[[], None]) -> None:
        try:
            call()
        except ExecutorUnavailable as exc:
            self._unavailable(r, site, exc)
        except Exception as exc:
            log.exception("reconciling job %s at site %s failed", r.id, site)
            why = f"asking site {site!r} failed (retried): {type(exc).__name__}: {exc}"
            self.repo.set_fields(r.id, message=why)

    def _stop(self, r: JobRow, executor: Executor) -> None:
        if executor.capabilities.cancel:
            executor.cancel(str(r.dispatch_id), r.local_id)
            self.repo.set_fields(r.id, exit_code=-9, message="killed on cancel")
        else:
            why = f"site {r.executor!r} ({executor.kind}) cannot cancel; its run goes on there"
            self.repo.set_fields(r.id, exit_code=-9, message=why)

    def _poll(self, r: JobRow, executor: Executor) -> None:
        status = executor.poll(str(r.dispatch_id), r.local_id)
        if status.local_id and status.local_id != r.local_id:
            self.repo.set_fields(r.id, local_id=status.local_id)
        if status.status in ("succeeded", "failed"):
            self.repo.transition(
                r.id, status.status, exit_code=status.exit_code, message=status.message or None
            )
            if status.status == "failed":
                self.metrics.job_failures.labels(str(r.executor)).inc()
        elif status.status == "cancelled":  # stopped at the site, not by its tenant
            why = f"cancelled at site {r.executor!r}: {status.message or 'by its engine'}"
            self.repo.transition(r.id, "failed", message=why)
            self.metrics.job_failures.labels(str(r.executor)).inc()


def _dispatch(r: JobRow, dispatch_id: str, settings: Settings) -> Dispatch:
    """What the executor gets. A job resumed after its site went down is told so in its
    environment (``COMPUTENET_RESUME=1``, ``COMPUTENET_CHECKPOINTS`` saved so far)."""
    walltime_s = (
        r.end_s - r.start_s
        if r.start_s is not None and r.end_s is not None
        else int(r.duration_h * 3600)
    )
    env: dict[str, str] = {}
    if r.checkpointable:
        interval_s = r.checkpoint_interval_s or settings.checkpoint_interval_s
        env["COMPUTENET_CHECKPOINT_INTERVAL_S"] = str(interval_s)
        if r.checkpoints:
            env["COMPUTENET_RESUME"] = "1"
            env["COMPUTENET_CHECKPOINTS"] = str(r.checkpoints)
    return Dispatch(
        request_id=dispatch_id,
        job_id=r.id,
        tenant_id=r.tenant_id,
        command=r.command,
        accelerators=r.accelerators,
        accelerator=r.accelerator,
        walltime_s=max(1, walltime_s),
        checkpointable=bool(r.checkpointable),
        env=env,
    )
