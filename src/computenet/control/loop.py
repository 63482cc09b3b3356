"""The live loop: plan queued jobs, dispatch due placements, reconcile what executors say.

Level-triggered: every tick looks at the database as it is and moves each job one step
towards where it should be, so a tick repeated after a crash does no harm. Work on a job
is guarded by a lease (plus ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and a dispatch's
request id is written to the database BEFORE the executor is called, so a restart reuses
it and the executor never starts a job twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any

from computenet.executors.base import Executor, make_executor
from computenet.settings import Settings
from computenet.store.models import JobRow
from computenet.store.repository import Repository, now_s

log = logging.getLogger("computenet.control")

DEFAULT_DEADLINE_S = 7 * 24 * 3600  # a job without a deadline must finish within 7 days


class ControlLoop:
    def __init__(self, repo: Repository, settings: Settings, network: Any) -> None:
        self.repo = repo
        self.settings = settings
        self.network = network
        self.owner = "loop-" + uuid.uuid4().hex[:8]
        # Single machine: every site maps to the local executor unless configured.
        self.executors: dict[str, Executor] = {"local": make_executor("local", settings.home)}

    async def run_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # a failed tick is retried next interval; state is in the DB
                log.exception("control loop tick failed")
            await asyncio.sleep(self.settings.loop_interval_s)

    def tick(self) -> None:
        self.plan_queued()
        self.dispatch_due()
        self.reconcile()

    # -- planning -----------------------------------------------------------------------

    def plan_queued(self) -> None:
        rows = self.repo.claim(self.owner, ["submitted"], self.settings.lease_s, limit=200)
        if not rows:
            return
        try:
            placements = self._plan(rows)
        finally:
            self.repo.release([r.id for r in rows], self.owner)
        for job_id, (new_state, fields) in placements.items():
            self.repo.transition(job_id, new_state, **fields)

    def _plan(self, rows: list[JobRow]) -> dict[str, tuple[str, dict[str, Any]]]:
        now = now_s()
        import computenet.engine

        # Looked up at run time: the engine lands separately, the service runs without it.
        plan = getattr(computenet.engine, "plan", None)
        if plan is None or self.network is None:
            # Without an engine or network there is nothing to optimise: run here, now.
            reason = "fallback: no engine or network loaded; placed on this machine now"
            return {
                r.id: (
                    "placed",
                    {
                        "site_id": "local",
                        "accelerator": None,
                        "start_s": now,
                        "end_s": now + int(r.duration_h * 3600),
                        "explanation": {"reason": reason, "alternatives": []},
                    },
                )
                for r in rows
            }
        from computenet.engine.types import PlanRequest

        request = PlanRequest(
            now_s=now,
            network=self.network,
            jobs=tuple(self._training_job(r, now) for r in rows),
            policy=self.settings.policy,
            running=tuple(self._allocations()),
        )
        reply = plan(request)
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for p in reply.placements:
            out[p.job_id] = (
                "placed",
                {
                    "site_id": p.site_id,
                    "accelerator": p.accelerator,
                    "start_s": p.start_s,
                    "end_s": p.end_s,
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
        rows = self.repo.claim(self.owner, ["placed"], self.settings.lease_s, limit=100)
        now = now_s()
        try:
            for r in rows:
                if r.start_s is not None and r.start_s > now:
                    continue
                executor = self.executors["local"]
                dispatch_id = r.dispatch_id or f"{r.id}-{uuid.uuid4().hex[:8]}"
                if r.dispatch_id is None and not self.repo.set_dispatch(
                    r.id, executor.name, dispatch_id
                ):
                    continue  # someone else recorded a dispatch meanwhile
                executor.submit(dispatch_id, r.id, r.command)
                self.repo.transition(r.id, "running")
        finally:
            self.repo.release([r.id for r in rows], self.owner)

    def reconcile(self) -> None:
        for r in self.repo.jobs_in(["running", "cancelled"]):
            if r.dispatch_id is None or r.executor not in self.executors:
                continue
            executor = self.executors[r.executor]
            if r.state == "cancelled":
                if r.exit_code is None:
                    executor.cancel(r.dispatch_id)
                    self.repo.set_fields(r.id, exit_code=-9, message="killed on cancel")
                continue
            status = executor.poll(r.dispatch_id)
            if status.status in ("succeeded", "failed"):
                self.repo.transition(
                    r.id, status.status, exit_code=status.exit_code, message=status.message or None
                )
