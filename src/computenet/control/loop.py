"""The live loop: plan queued jobs, dispatch due placements, reconcile what executors say.

Level-triggered: every tick looks at the database as it is and moves each job one step
towards where it should be, so a tick repeated after a crash does no harm. Work on a job
is guarded by a lease (plus ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and a dispatch's
request id is written to the database BEFORE the executor is called, so a restart reuses
it and the executor never starts a job twice.

The engine (``computenet.engine.plan``) is looked up when a tick runs; without an engine
or a network the loop still runs jobs, on this machine, at once (and says so in the
explanation).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any

from computenet.control import feeds as feeds_mod
from computenet.control.leader import Leadership
from computenet.errors import ComputenetError
from computenet.executors.base import Dispatch, Executor
from computenet.executors.registry import make_executor
from computenet.settings import Settings
from computenet.store.models import JobRow
from computenet.store.repository import Repository, now_s

log = logging.getLogger("computenet.control")

DEFAULT_DEADLINE_S = 7 * 24 * 3600  # a job without a deadline must finish within 7 days
FALLBACK_SITE = "local"

Decision = tuple[str | None, dict[str, Any]]  # (new state or None: stay queued, fields)


class ControlLoop:
    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        network: Any,
        executors: dict[str, Executor] | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self.repo = repo
        # With several service processes, only the lease holder ticks (None: always tick).
        self.leadership = leadership
        self.settings = settings
        self.network = network
        self.owner = "loop-" + uuid.uuid4().hex[:8]
        self.executors: dict[str, Executor] = executors or {
            settings.executor: make_executor(
                settings.executor, FALLBACK_SITE, {}, settings.home, source="--executor"
            )
        }
        self._feeds_key: Any = None
        self._feeds_view: tuple[Any, dict[str, Any]] = (network, {})

    async def run_forever(self) -> None:
        lead = self.leadership
        while True:
            if lead is None or lead.leads():
                if lead is not None:
                    lead.note_tick()
                try:
                    await asyncio.to_thread(self.tick)
                except Exception:  # a failed tick is retried next interval; state is in the DB
                    log.exception("control loop tick failed")
            if lead is None:
                await asyncio.sleep(self.settings.loop_interval_s)
            else:  # a standby wakes at once when it takes the lease over
                await lead.pause(self.settings.loop_interval_s)

    def tick(self) -> None:
        self.plan_queued()
        self.dispatch_due()
        self.reconcile()

    def executor_for(self, site_id: str | None) -> str:
        """The executor that runs jobs placed at ``site_id``: the site's own if this service
        has it, else the configured default."""
        if self.network is not None and site_id is not None:
            for site in self.network.sites:
                if site.id == site_id and site.executor in self.executors:
                    return str(site.executor)
        return self.settings.executor

    # -- planning -----------------------------------------------------------------------

    def plan_queued(self) -> None:
        rows = self.repo.claim(self.owner, ["submitted"], self.settings.lease_s, limit=200)
        if not rows:
            return
        try:
            decisions = self._plan(rows)
            for job_id, (new_state, fields) in decisions.items():
                if new_state is None:
                    self.repo.set_fields(job_id, **fields)
                else:
                    self.repo.transition(job_id, new_state, **fields)
        finally:
            self.repo.release([r.id for r in rows], self.owner)

    def _plan(self, rows: list[JobRow]) -> dict[str, Decision]:
        now = now_s()
        import computenet.engine

        # Looked up at run time: the engine lands separately, the service runs without it.
        plan = getattr(computenet.engine, "plan", None)
        if plan is None or self.network is None:
            reason = "fallback: no engine or network loaded; placed on this machine now"
            return {
                r.id: (
                    "placed",
                    {
                        "site_id": FALLBACK_SITE,
                        "accelerator": None,
                        "start_s": now,
                        "end_s": now + int(r.duration_h * 3600),
                        "explanation": {"reason": reason, "alternatives": []},
                    },
                )
                for r in rows
            }
        try:
            return self._plan_with(plan, rows, now)
        except ComputenetError:
            if len(rows) == 1:
                raise
        # One job the engine refuses must not hold up the others: plan them one by one.
        out: dict[str, Decision] = {}
        for r in rows:
            try:
                out.update(self._plan_with(plan, [r], now))
            except ComputenetError as exc:
                out[r.id] = ("failed", {"message": f"cannot be planned: {exc}"})
        return out

    def _network_view(self) -> tuple[Any, dict[str, Any]]:
        """The network with posted feeds applied (rebuilt only when a feed changes, so the
        engine's per-network and per-signal caches stay warm)."""
        posted = self.repo.site_feeds()
        key = tuple(sorted((k, v["updated_s"], v["updated_by"]) for k, v in posted.items()))
        if key != self._feeds_key:
            self._feeds_view = feeds_mod.apply(self.network, posted)
            self._feeds_key = key
        return self._feeds_view

    def _plan_with(self, plan: Any, rows: list[JobRow], now: int) -> dict[str, Decision]:
        from computenet.engine.types import PlanRequest
        from computenet.model import Classification, Dataset

        network, forecasts = self._network_view()
        wanted = sorted({d for r in rows for d in (r.datasets or [])})
        datasets = tuple(
            Dataset(
                id=d["id"],
                size_gb=d["size_gb"],
                home_site=d["home_site"],
                classification=Classification(d["classification"]),
                individuals=d["individuals"],
                sensitive=d["sensitive"],
                export_cleared=d["export_cleared"],
                tenant=d["tenant_id"],
            )
            for d in self.repo.datasets_by_id(wanted)
        )
        request = PlanRequest(
            now_s=now,
            network=network,
            jobs=tuple(self._training_job(r, now) for r in rows),
            policy=self.settings.policy,
            datasets=datasets,
            running=tuple(self._allocations()),
            carbon_price_cny_per_t=self.settings.carbon_price_cny_per_t,
            forecasts=forecasts,
        )
        reply = plan(request)
        out: dict[str, Decision] = {}
        for p in reply.placements:
            out[p.job_id] = (
                "placed",
                {
                    "site_id": p.site_id,
                    "accelerator": p.accelerator,
                    "start_s": p.start_s,
                    "end_s": p.end_s,
                    "message": None,
                    "explanation": {
                        "policy": reply.policy,
                        "reason": p.reason,
                        "breakdown": dataclasses.asdict(p.breakdown)
                        | {"cost_cny": p.breakdown.cost_cny},
                        "transfers": [dataclasses.asdict(t) for t in p.transfers],
                        "alternatives": [dataclasses.asdict(a) for a in p.alternatives],
                    },
                },
            )
        for d in reply.deferred:
            out[d.job_id] = (None, {"message": f"waiting: {d.reason}"})
        for inf in reply.infeasible:
            why = f"infeasible ({inf.constraint}): {inf.reason}"
            out[inf.job_id] = ("failed", {"message": why})
        return out

    def _training_job(self, r: JobRow, now: int) -> Any:
        from computenet.model import TrainingJob

        speeds: dict[str, float] = {}
        accs = self.network.accelerators
        ref = accs.get(self.network.reference_accelerator)
        for t in r.accelerator_types or []:
            if t in accs and ref is not None and ref.tflops_bf16 > 0:
                speeds[t] = accs[t].tflops_bf16 / ref.tflops_bf16
        return TrainingJob(
            id=r.id,
            accelerators=r.accelerators,
            work_h=r.duration_h,
            earliest_start_s=now,
            deadline_s=r.deadline_s or now + DEFAULT_DEADLINE_S,
            tenant=r.tenant_id,
            accelerator_speed=speeds,
            datasets=tuple(r.datasets or ()),
            priority=r.priority,
            submitted_s=r.created_s,
        )

    def _allocations(self) -> list[Any]:
        from computenet.engine.types import Allocation

        return [
            Allocation(r.id, r.site_id, r.accelerator, r.accelerators, r.start_s, r.end_s)
            for r in self.repo.jobs_in(["placed", "transferring", "running"])
            if r.site_id and r.accelerator and r.start_s is not None and r.end_s is not None
        ]

    # -- dispatch and reconcile ---------------------------------------------------------

    def dispatch_due(self) -> None:
        """Start every placed job whose start time has come, exactly once."""
        now = now_s()
        rows = self.repo.claim(self.owner, ["placed"], self.settings.lease_s, 100, due_by_s=now)
        try:
            for r in rows:
                name = r.executor or self.executor_for(r.site_id)
                executor = self.executors.get(name)
                if executor is None:
                    self.repo.transition(
                        r.id, "failed", message=f"no executor {name!r} in this service"
                    )
                    continue
                fence = None if self.leadership is None else self.leadership.fence()
                if self.leadership is not None and fence is None:
                    break  # this process lost the loop in mid-tick: dispatch nothing more
                dispatch_id = r.dispatch_id or f"{r.id}-{uuid.uuid4().hex[:8]}"
                if r.dispatch_id is None and not self.repo.set_dispatch(
                    r.id, name, dispatch_id, fence
                ):
                    continue  # someone else recorded a dispatch meanwhile, or we were deposed
                executor.submit(self._dispatch(r, dispatch_id))
                self.repo.transition(r.id, "running")
        finally:
            self.repo.release([r.id for r in rows], self.owner)

    @staticmethod
    def _dispatch(r: JobRow, dispatch_id: str) -> Dispatch:
        walltime_s = (
            r.end_s - r.start_s
            if r.start_s is not None and r.end_s is not None
            else int(r.duration_h * 3600)
        )
        return Dispatch(
            request_id=dispatch_id,
            job_id=r.id,
            tenant_id=r.tenant_id,
            command=r.command,
            accelerators=r.accelerators,
            accelerator=r.accelerator,
            walltime_s=max(1, walltime_s),
        )

    def reconcile(self) -> None:
        """Finish running jobs whose process ended; kill the processes of cancelled ones."""
        for r in self.repo.to_reconcile():
            executor = self.executors.get(r.executor or "")
            if executor is None or r.dispatch_id is None:
                continue
            if r.state == "cancelled":
                executor.cancel(r.dispatch_id, None)
                self.repo.set_fields(r.id, exit_code=-9, message="killed on cancel")
                continue
            status = executor.poll(r.dispatch_id, None)
            if status.status in ("succeeded", "failed"):
                self.repo.transition(
                    r.id, status.status, exit_code=status.exit_code, message=status.message or None
                )
