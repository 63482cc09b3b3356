"""The planning step: queued jobs go to the engine, which places, defers or refuses them.

The engine is told what the service knows about its sites: sites marked down have no
capacity (``PlanRequest.down_sites``), and a job with a ``command`` may go only to sites
whose executor runs commands (the others count as down for it). A job the engine finds
infeasible only because of down sites waits for them instead of failing: its data may not
leave a dead site, or it fits nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from computenet.control import feeds as feeds_mod
from computenet.control.sites import FALLBACK_SITE
from computenet.engine import reasons as rs
from computenet.engine.reasons import Code, Role
from computenet.errors import ComputenetError
from computenet.executors.base import Executor
from computenet.settings import Settings
from computenet.store.models import JobRow
from computenet.store.repository import Repository, now_s

DEFAULT_DEADLINE_S = 7 * 24 * 3600  # a job without a deadline must finish within 7 days
QUOTA_REASON = "quota:"  # how ``engine.quotas`` starts the reason of a quota deferral
MIN_WORK_H = 1.0 / 3600  # a resumed job has at least a second of work left

Decision = tuple[str | None, dict[str, Any]]  # (new state or None: stay queued, fields)


class Planner:
    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        network: Any,
        executors: Mapping[str, Executor],
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.network = network
        self.no_commands = frozenset(
            s for s, ex in executors.items() if not ex.capabilities.runs_commands
        )
        self._feeds_key: Any = None
        self._feeds_view: tuple[Any, dict[str, Any]] = (network, {})

    def plan(self, rows: list[JobRow], down: frozenset[str]) -> dict[str, Decision]:
        """A decision for each of ``rows`` (jobs with commands first, so the others are
        planned around them)."""
        now = now_s()
        import computenet.engine

        # Looked up at run time: the engine lands separately, the service runs without it.
        plan = getattr(computenet.engine, "plan", None)
        if plan is None or self.network is None:
            return {r.id: _fallback(r, now) for r in rows}
        out: dict[str, Decision] = {}
        with_command = [r for r in rows if r.command]
        if with_command:
            out.update(self._plan_group(plan, with_command, now, down | self.no_commands, []))
        gangs = {r.id: r.accelerators for r in with_command}
        tenants = {r.id: r.tenant_id for r in with_command}
        placed = [
            dict(fields, job_id=job_id, accelerators=gangs[job_id], tenant_id=tenants[job_id])
            for job_id, (state, fields) in out.items()
            if state == "placed"
        ]
        rest = [r for r in rows if not r.command]
        if rest:
            out.update(self._plan_group(plan, rest, now, down, placed))
        return out

    def _plan_group(
        self, plan: Any, rows: list[JobRow], now: int, down: frozenset[str], also: list[Any]
    ) -> dict[str, Decision]:
        if len(self.no_commands) == len(self.network.sites) and rows[0].command:
            why = (
                "it has a command, and no site of this network runs commands (their executors "
                "are simulated); the operator can run them here with `serve --executor local` "
                "or give sites an executor that runs commands"
            )
            return {r.id: _failed(Code.NO_EXECUTOR, why) for r in rows}
        try:
            out = self._plan_with(plan, rows, now, down, also)
        except ComputenetError:
            if len(rows) == 1:
                raise
            # One job the engine refuses must not hold up the others: plan them one by one.
            out = {}
            for r in rows:
                try:
                    out.update(self._plan_with(plan, [r], now, down, also))
                except ComputenetError as exc:
                    out[r.id] = _failed(Code.INPUT, str(exc))
        return self._wait_for_down_sites(plan, rows, now, down, also, out)

    def _wait_for_down_sites(
        self,
        plan: Any,
        rows: list[JobRow],
        now: int,
        down: frozenset[str],
        also: list[Any],
        out: dict[str, Decision],
    ) -> dict[str, Decision]:
        """Jobs refused only because sites are down wait for them (they are not failed)."""
        gone = down - self.no_commands if rows[0].command else down
        refused = [r for r in rows if out[r.id][0] == "failed"]
        if not gone or not refused:
            return out
        try:
            with_sites = self._plan_with(plan, refused, now, down - gone, also)
        except ComputenetError:
            return out
        for r in refused:
            if with_sites.get(r.id, ("failed", {}))[0] != "failed":
                why = rs.reason(Code.SITE_DOWN, Role.DEFERRED, sites=sorted(gone))
                out[r.id] = (None, {"message": why.message, "reasons": [why.to_json()]})
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

    def _plan_with(
        self, plan: Any, rows: list[JobRow], now: int, down: frozenset[str], also: list[Any]
    ) -> dict[str, Decision]:
        from computenet.engine.types import PlanRequest

        network, forecasts = self._network_view()
        request = PlanRequest(
            now_s=now,
            network=network,
            jobs=tuple(self._training_job(r, now) for r in rows),
            policy=self.settings.policy,
            datasets=self._datasets(rows),
            running=tuple(self._allocations(also)),
            carbon_price_cny_per_t=self.settings.carbon_price_cny_per_t,
            forecasts=forecasts,
            down_sites=down,
            quotas=self._quotas(also),
        )
        request = self._with_power_caps(request, also)
        reply = plan(request)
        out: dict[str, Decision] = {
            p.job_id: ("placed", _placed(p, reply.policy)) for p in reply.placements
        }
        for pre in reply.preemptions:
            if not self._preempt(pre):
                # The victim moved on meanwhile: its accelerators may still be taken.
                why = f"waiting: the work it would preempt ({pre.job_id}) changed; planned again"
                out[pre.by_job_id] = (None, {"message": why})
        for d in reply.deferred:
            fields: dict[str, Any] = {"message": f"waiting: {d.reason}", "reasons": _json(d)}
            if d.reason.startswith(QUOTA_REASON):
                fields["audit_action"] = "job.quota_wait"  # audited once per new message
            out[d.job_id] = (None, fields)
        for inf in reply.infeasible:
            why = f"infeasible ({inf.constraint}): {inf.reason}"
            out[inf.job_id] = ("failed", {"message": why, "reasons": _json(inf)})
        return out

    def _with_power_caps(self, request: Any, also: list[dict[str, Any]]) -> Any:
        """The request with the power caps of the grid events not over
        (``control.gridops``) and the draws committed at their sites, this tick's placements
        included. A policy that does not take caps gives way to ``greedy`` while they last."""
        from computenet.control import gridops
        from computenet.engine.grid import facility_kw
        from computenet.engine.power import POLICIES_WITH_POWER, PowerDraw
        from computenet.model import TrainingJob

        now = request.now_s
        end = now + request.horizon_slots * request.slot_s
        caps, draws = gridops.power_limits(self.repo, self, now, end)
        if not caps:
            return request
        capped = {s for c in caps for s in c.sites}
        extra = [
            PowerDraw(
                f["site_id"],
                f["start_s"],
                f["end_s"],
                facility_kw(
                    self.network,
                    TrainingJob(f["job_id"], f["accelerators"], 1.0, now, now),
                    f["site_id"],
                    f["accelerator"],
                    f["accelerators"],
                ),
                f["job_id"],
            )
            for f in also
            if f["site_id"] in capped and f.get("accelerator")
        ]
        policy = request.policy if request.policy in POLICIES_WITH_POWER else "greedy"
        if policy == "bound":
            policy = "greedy"
        return dataclasses.replace(
            request, policy=policy, power_caps=caps, power_drawn=draws + tuple(extra)
        )

    def _quotas(self, also: list[dict[str, Any]]) -> Any:
        """The quota inputs of a request (``engine.quotas.Quotas``), or ``None`` when no
        tenant has a quota: the quotas, and who holds each allocation (work placed earlier
        in this tick holds its quota but cannot be preempted)."""
        from computenet.engine.quotas import Holder, Quotas, TenantQuota

        rows = self.repo.quotas()
        if not rows:
            return None
        holders = [
            Holder(
                r.id,
                r.tenant_id,
                r.priority,
                bool(r.checkpointable) and r.state in ("placed", "running"),
                r.checkpoint_interval_s or self.settings.checkpoint_interval_s,
                r.run_started_s or r.start_s or 0,
            )
            for r in self.repo.jobs_in(["placed", "transferring", "running"])
        ]
        holders += [Holder(f["job_id"], f["tenant_id"]) for f in also]
        return Quotas(
            tuple(
                TenantQuota(q["tenant_id"], q["nominal"], q["borrowing_limit"], q["weight"])
                for q in rows
            ),
            tuple(holders),
        )

    def _preempt(self, pre: Any) -> bool:
        """Carry out one of the engine's preemptions: the victim goes back to planning
        with the work of its checkpoints (its run is cancelled at the site by the loop's
        stale-run sweep), audited as ``job.preempt``."""
        row = next(
            (
                r
                for r in self.repo.jobs_at(pre.site_id, ["placed", "running"])
                if r.id == pre.job_id
            ),
            None,
        )
        if row is None:
            return False
        checkpoints, work_h = _saved_work(row, now_s(), self.settings.checkpoint_interval_s)
        return self.repo.preempt(
            row.id,
            pre.site_id,
            pre.reason,
            by_job_id=pre.by_job_id,
            checkpoints_added=checkpoints,
            work_added_h=work_h,
            lost_s=pre.lost_s,
        )

    def _datasets(self, rows: list[JobRow]) -> tuple[Any, ...]:
        wanted = sorted({d for r in rows for d in (r.datasets or [])})
        return engine_datasets(self.repo, wanted)

    def _training_job(self, r: JobRow, now: int) -> Any:
        """The engine's view of a queued job; a job resumed from checkpoints has only its
        remaining work to do."""
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
            work_h=max(MIN_WORK_H, r.duration_h - float(r.work_done_h or 0.0)),
            earliest_start_s=now,
            deadline_s=r.deadline_s or now + DEFAULT_DEADLINE_S,
            tenant=r.tenant_id,
            accelerator_speed=speeds,
            checkpointable=bool(r.checkpointable),
            checkpoint_interval_s=r.checkpoint_interval_s or self.settings.checkpoint_interval_s,
            datasets=tuple(r.datasets or ()),
            priority=r.priority,
            submitted_s=r.created_s,
            flex_class=int(r.flex_class or 0),
        )

    def _allocations(self, also: list[dict[str, Any]]) -> list[Any]:
        """What already holds capacity: jobs placed or running, and ``also`` (placements
        decided earlier in this tick, not yet written)."""
        from computenet.engine.types import Allocation

        held = [
            Allocation(r.id, r.site_id, r.accelerator, r.accelerators, r.start_s, r.end_s)
            for r in self.repo.jobs_in(["placed", "transferring", "running"])
            if r.site_id and r.accelerator and r.start_s is not None and r.end_s is not None
        ]
        held += [
            Allocation(
                f["job_id"],
                f["site_id"],
                f["accelerator"],
                f["accelerators"],
                f["start_s"],
                f["end_s"],
            )
            for f in also
        ]
        return held


def engine_datasets(repo: Repository, ids: list[str]) -> tuple[Any, ...]:
    """The engine's view of stored datasets."""
    from computenet.model import Classification, Dataset

    return tuple(
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
        for d in repo.datasets_by_id(sorted(set(ids)))
    )


def _saved_work(r: JobRow, now: int, default_interval_s: int) -> tuple[int, float]:
    """``(checkpoints, reference hours)`` a running checkpointable job has saved since its
    current run started (as ``control.failover``, with the site answering)."""
    if r.state != "running" or not r.checkpointable or r.run_started_s is None:
        return 0, 0.0
    if r.start_s is None or r.end_s is None or r.end_s <= r.start_s:
        return 0, 0.0
    interval_s = r.checkpoint_interval_s or default_interval_s
    checkpoints = max(0, now - r.run_started_s) // interval_s
    if checkpoints == 0:
        return 0, 0.0
    left_h = r.duration_h - float(r.work_done_h or 0.0)
    share = min(1.0, checkpoints * interval_s / (r.end_s - r.start_s))
    return int(checkpoints), left_h * share


def _json(item: Any) -> list[dict[str, Any]]:
    """A decision's reasons as stored with the job (``engine.reasons`` JSON, sorted)."""
    return [r.to_json() for r in rs.of_decision(item)]


def _failed(code: Code, why: str) -> Decision:
    """A job that cannot be planned at all, for a reason outside the engine."""
    return (
        "failed",
        {
            "message": f"cannot be planned: {why}",
            "reasons": [rs.reason(code, Role.INFEASIBLE, detail=why).to_json()],
        },
    )


def _placed(p: Any, policy: str) -> dict[str, Any]:
    return {
        "reasons": _json(p),
        "site_id": p.site_id,
        "accelerator": p.accelerator,
        "start_s": p.start_s,
        "end_s": p.end_s,
        "message": None,
        "explanation": {
            "policy": policy,
            "reason": p.reason,
            "breakdown": dataclasses.asdict(p.breakdown) | {"cost_cny": p.breakdown.cost_cny},
            "transfers": [dataclasses.asdict(t) for t in p.transfers],
            "alternatives": [dataclasses.asdict(a) for a in p.alternatives],
        },
    }


def _fallback(r: JobRow, now: int) -> Decision:
    reason = "fallback: no engine or network loaded; placed on this machine now"
    work_s = int(max(MIN_WORK_H, r.duration_h - float(r.work_done_h or 0.0)) * 3600)
    return (
        "placed",
        {
            "site_id": FALLBACK_SITE,
            "accelerator": None,
            "start_s": now,
            "end_s": now + work_s,
            "explanation": {"reason": reason, "alternatives": []},
            "reasons": [rs.reason(Code.FALLBACK, Role.PLACED, detail=reason).to_json()],
        },
    )
