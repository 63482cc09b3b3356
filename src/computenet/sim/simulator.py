"""A deterministic discrete-event simulator with the placement engine in the loop.

The simulator owns a simulated clock and an event heap (``events.EventQueue``). Jobs arrive
from a ``Workload``; the engine (``computenet.engine.plan``, or any function with the same
contract) decides where and when each runs, and a simulated executor carries the decisions
out: it reserves accelerators, starts and finishes jobs, checkpoints them, and preempts
them when their site goes down. The engine plans with *forecasts* of the grid signals (a
forecast mode from ``computenet.signals``), while every kWh is charged with the *true*
signals of the site over the hours the job actually ran.

When the engine is asked:

* per-arrival policies (``greedy`` and the simple ones): on every arrival, for the new job;
  jobs it defers are asked about again every ``retry_every_s`` and when a site comes back;
* batch policies (``milp``): every ``batch_every_s`` over the whole queue.

A job the engine calls infeasible is asked about once more with its deadline relaxed, so it
runs late (a deadline miss) rather than vanishing from the metrics; it is rejected only if
even that fails for a reason waiting cannot cure, or it waited ``max_late_s`` past its
deadline.

Same workload, config and seed: same result, bit for bit. Nothing here reads the wall clock
except to report ``wall_s``.
"""

from __future__ import annotations

import enum
import importlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

from computenet.engine.capacity import CapacityLedger
from computenet.engine.grid import GridEvent
from computenet.engine.quotas import Holder, Quotas, TenantQuota
from computenet.engine.types import (
    Allocation,
    PlanReply,
    PlanRequest,
    Preemption,
    SiteForecast,
    Transfer,
)
from computenet.errors import ComputenetError, InputError
from computenet.model import (
    DEFAULT_CARBON_PRICE_CNY_PER_T,
    HOUR_S,
    Dataset,
    Network,
    Site,
    TrainingJob,
    job_power_kw,
)
from computenet.sim import estimates
from computenet.sim.events import EventKind, EventQueue
from computenet.sim.gridsim import GridEvents, GridOutcome, check_events
from computenet.sim.rules import rule_breach
from computenet.sim.workload import Workload

Planner = Callable[[PlanRequest], PlanReply]


DEFAULT_HOME_RESERVE = 0.25
"""Share of each pool that work homed elsewhere may not take (``PlanRequest.home_reserve``).
Without it an online policy fills the cleanest sites with movable work, and jobs whose data
must stay there (core data) then wait past their deadlines, or move terabytes at great cost:
on the openb bench, greedy with no reserve cut carbon but nearly tripled cost and missed 29
deadlines against fifo-home's 7; with 0.25 it cut both cost and carbon and missed none."""

TRANSIENT_CONSTRAINTS = frozenset({"capacity", "deadline", "horizon", "down", "outage"})


@dataclass(frozen=True)
class Outage:
    """Site ``site_id`` has no capacity over ``[start_s, end_s)``."""

    site_id: str
    start_s: int
    end_s: int


@dataclass(frozen=True)
class SimConfig:
    """How one simulation runs. Times in seconds; the carbon price in CNY per tonne CO2."""

    policy: str = "greedy"
    carbon_price_cny_per_t: float = DEFAULT_CARBON_PRICE_CNY_PER_T
    slot_s: int = HOUR_S
    horizon_slots: int = 48
    batch_policies: frozenset[str] = frozenset({"milp"})
    batch_every_s: int = 900
    retry_every_s: int = HOUR_S
    forecast_mode: str = "perfect"
    forecast_rel_error: float = 0.1
    seed: int = 0
    outages: tuple[Outage, ...] = ()
    max_late_s: int = 7 * 86400
    home_reserve: float = DEFAULT_HOME_RESERVE
    quotas: tuple[TenantQuota, ...] = ()
    """Tenants' quotas (``engine.quotas``): given, every request carries them with who
    holds each allocation, the engine admits within them and may preempt, and a placement
    that takes a tenant past its nominal quota plus borrowing limit is a violation."""
    grid_events: tuple[GridEvent, ...] = ()  # answered and carried out (``sim.gridsim``)
    # What the engine knows of run times (``sim.estimates``): ``oracle`` hands it each job's
    # actual run time; ``estimate`` only what a real scheduler knows (``estimator``:
    # ``walltime``, the requested limit, ``class-mean``, the mean actual run of the jobs
    # of the same walltime class that already finished, or ``auto``, stated per policy), and
    # a job is stopped at its walltime.
    knowledge: str = "oracle"
    estimator: str = "walltime"
    checkpoint_s: int = 300  # pause and resume: seconds to write a checkpoint (modelled)
    restore_s: int = 300  # and to read it back (modelled); both at full power
    replan_on_finish: frozenset[str] = frozenset({"fifo"})
    """Policies asked about the queue whenever a job finishes (not only every
    ``retry_every_s``): ``fifo`` starts a waiting job the moment capacity frees."""


def _sibling(module: str, name: str, what: str) -> Any:
    """``module.name``, looked up when first needed so the simulator can be imported (and
    tested with its own planner) while other parts of computenet are being built."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ComputenetError(
            f"{what}: needs {module}.{name}, which this installation does not provide"
        ) from None


def default_planner() -> Planner:
    """The placement engine, ``computenet.engine.plan``."""
    return cast(Planner, _sibling("computenet.engine", "plan", "simulations with the engine"))


class JobState(enum.StrEnum):
    WAITING = "waiting"  # arrived, not placed (new, deferred, or preempted)
    RESERVED = "reserved"  # placed, start in the future
    RUNNING = "running"
    DONE = "done"
    TIMEOUT = "timeout"  # stopped at its walltime before its work was done (as Slurm does)
    REJECTED = "rejected"


@dataclass(frozen=True)
class Segment:
    """One stretch of execution of a job, charged with the true signals."""

    job_id: str
    site_id: str
    accelerator: str
    count: int
    start_s: int
    end_s: int
    energy_kwh: float
    energy_cost_cny: float
    compute_cost_cny: float
    carbon_kg: float
    completed: bool


@dataclass(frozen=True)
class Violation:
    """Something the engine decided that breaks a rule (``kind``: data-rule, capacity,
    down-site, gang, accelerator-type, unknown-job, past-start)."""

    time_s: int
    job_id: str
    kind: str
    detail: str


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one job. ``wait_s`` = first start - arrival; ``completion_s`` =
    finish - arrival (``None`` when the job never ran or never finished)."""

    job_id: str
    arrival_s: int
    deadline_s: int
    accelerators: int
    home_site: str
    state: str
    site_id: str | None
    first_start_s: int | None
    finish_s: int | None
    energy_kwh: float
    cost_cny: float
    carbon_kg: float
    transfer_gb: float
    transfer_cost_cny: float
    preemptions: int
    lost_accelerator_h: float
    late: bool
    cut_off: bool
    reason: str = ""
    tenant: str = "default"
    priority: int = 0

    @property
    def wait_s(self) -> int | None:
        return None if self.first_start_s is None else self.first_start_s - self.arrival_s

    @property
    def completion_s(self) -> int | None:
        return None if self.finish_s is None else self.finish_s - self.arrival_s


@dataclass(frozen=True)
class SimResult:
    """Everything a run produced; ``metrics.summarise`` turns it into figures."""

    policy: str
    config: SimConfig
    network: Network
    outcomes: tuple[JobOutcome, ...]
    segments: tuple[Segment, ...]
    transfers: tuple[Transfer, ...]
    violations: tuple[Violation, ...]
    events: int
    plan_calls: int
    start_s: int
    end_s: int
    wall_s: float
    notes: tuple[str, ...] = ()
    grid: tuple[GridOutcome, ...] = ()  # per grid event: the answer and what was delivered


@dataclass
class _Job:
    """Mutable executor state of one job (internal)."""

    job: TrainingJob
    home: str
    cut_off: bool
    remaining_h: float
    state: JobState = JobState.WAITING
    attempt: int = 0
    site_id: str | None = None
    accelerator: str | None = None
    count: int = 0
    start_s: int = 0
    end_s: int = 0
    speed: float = 1.0
    first_start_s: int | None = None
    finish_s: int | None = None
    relaxed: bool = False
    energy_kwh: float = 0.0
    cost_cny: float = 0.0
    carbon_kg: float = 0.0
    transfer_gb: float = 0.0
    transfer_cost_cny: float = 0.0
    preemptions: int = 0
    lost_accelerator_h: float = 0.0
    reason: str = ""
    waiting_since_s: int = 0
    need_s: int | None = None  # run time at the slowest usable speed, for ``need_for_h``
    need_for_h: float = -1.0
    # Estimates and pause/resume (``sim.estimates``). ``limit_h``: walltime left (reference
    # hours); ``planned_h``: the run length the engine was last told; ``allocs``: every
    # reserved stretch (one, or one per segment); ``finish_at``: when the running stretch
    # actually ends (its work done, or its walltime reached); ``seg_in``: the restore time
    # at the start of the running stretch.
    limit_h: float = math.inf
    planned_h: float = 0.0
    allocs: list[Allocation] = field(default_factory=list)
    finish_at: int = 0
    seg_in: int = 0
    resumes: int = 0
    bumped: int = 0


def _changed(job: TrainingJob, **changes: Any) -> TrainingJob:
    """``dataclasses.replace(job, **changes)`` without running ``__init__`` (the simulator
    makes one such copy per queued job per planning round): a frozen dataclass with no
    ``__post_init__``, so its fields are its ``__dict__``."""
    cls = type(job)
    if "__post_init__" in cls.__dict__ or not hasattr(job, "__dict__"):
        return replace(job, **changes)
    new = object.__new__(cls)
    d = new.__dict__
    d.update(job.__dict__)
    d.update(changes)
    return new


@dataclass
class _Pool:
    capacity: int
    allocations: dict[str, Allocation] = field(default_factory=dict)


class Simulator:
    """Replays one workload on one network under one ``SimConfig``.

    ``planner`` is ``computenet.engine.plan`` unless a test passes its own. ``progress``,
    if given, is called as ``progress(arrived, total)`` every few hundred arrivals.
    """

    def __init__(
        self,
        network: Network,
        workload: Workload,
        config: SimConfig,
        *,
        planner: Planner | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        if planner is None:
            planner = default_planner()
        self.network = network
        self.workload = workload
        self.config = config
        self.planner = planner
        self.progress = progress
        self._sites: dict[str, Site] = {s.id: s for s in network.sites}
        for o in config.outages:
            if o.site_id not in self._sites:
                raise InputError(
                    f"outage at unknown site {o.site_id!r}",
                    source="outages",
                    fix=f"use one of: {', '.join(network.site_ids)}",
                )
        self._datasets: dict[str, Dataset] = {d.id: d for d in workload.datasets}
        self._replicas: dict[str, set[str]] = {d.id: {d.home_site} for d in workload.datasets}
        self._pools: dict[tuple[str, str], _Pool] = {}
        for s in network.sites:
            for p in s.pools:
                key = (s.id, p.accelerator)
                if key in self._pools:
                    self._pools[key].capacity += p.count
                else:
                    self._pools[key] = _Pool(p.count)
        # Every allocation committed and not yet given back, kept as they come and go and
        # handed to the engine as is: a plan call then costs the same however many
        # allocations are outstanding (a burst of queued work).
        self._ledger = CapacityLedger()
        self._jobs: dict[str, _Job] = {}
        self._queue: dict[str, None] = {}  # waiting job ids, in arrival order
        self._down: dict[str, int] = {}  # site -> number of overlapping outages
        self._plan_times: set[int] = set()
        self._segments: list[Segment] = []
        self._transfers: list[Transfer] = []
        self._violations: list[Violation] = []
        self._forecast_cache: dict[int, Mapping[str, SiteForecast]] = {}
        self._horizon_s = config.horizon_slots * config.slot_s
        # Each dataset's replicas as handed to the engine (rebuilt when a copy is made).
        self._replicas_frozen: dict[str, frozenset[str]] = {}
        # Power (kW, with PUE) per (site, accelerator, kind of work, utilisation, gang).
        self._power_memo: dict[tuple[str, str, str, float, int], tuple[float, float]] = {}
        self._plan_calls = 0
        self._q = EventQueue(workload.start_s)
        self._quota_of = {q.tenant: q for q in config.quotas}
        # Quota held over time, keyed by tenant in place of site (managed tenants only).
        self._quota_held = CapacityLedger()
        check_events(config.grid_events, network, config.policy)
        self._grid = GridEvents(self, config.grid_events)
        self._estimator = estimates.estimator(config.knowledge, config.estimator, config.policy)

    # ------------------------------------------------------------------ run

    def run(self) -> SimResult:
        t0 = time.perf_counter()
        q = self._q
        for j in self.workload.jobs:
            if j.id in self._jobs:
                raise InputError(f"duplicate job id {j.id!r}", source="workload")
            self._jobs[j.id] = _Job(
                job=j,
                home=self.workload.home.get(j.id, self._home_of(j)),
                cut_off=j.id in self.workload.cut_off,
                remaining_h=j.work_h,
                limit_h=self.workload.walltime_h.get(j.id, j.work_h)
                if self._estimator is not None
                else math.inf,
            )
        q.schedule_many((j.earliest_start_s, EventKind.ARRIVAL, j.id) for j in self.workload.jobs)
        for o in sorted(self.config.outages, key=lambda o: (o.start_s, o.site_id)):
            if o.end_s > o.start_s:
                q.schedule(max(o.start_s, q.now_s), EventKind.OUTAGE_START, o.site_id)
                q.schedule(max(o.end_s, q.now_s), EventKind.OUTAGE_END, o.site_id)
        for n, g in enumerate(self.config.grid_events):
            q.schedule(max(g.start_s - g.notice_s, q.now_s), EventKind.GRID_EVENT, str(n))
        total = len(self.workload.jobs)
        arrived = 0
        batch = self.config.policy in self.config.batch_policies
        while len(q):
            ev = q.pop()
            kind = ev.kind
            if kind is EventKind.ARRIVAL:
                arrived += 1
                job = self._jobs[ev.subject]
                job.waiting_since_s = q.now_s
                self._queue[ev.subject] = None
                if batch:
                    self._want_plan(self.config.batch_every_s)
                else:
                    self._plan([ev.subject])
                if self.progress is not None and (arrived % 250 == 0 or arrived == total):
                    self.progress(arrived, total)
            elif kind is EventKind.START:
                self._on_start(ev.subject, ev.token)
            elif kind is EventKind.FINISH:
                self._on_finish(ev.subject, ev.token)
            elif kind is EventKind.PLAN:
                self._plan_times.discard(ev.time_s)
                if self._queue:
                    self._expire_waiting()
                    if self._queue:
                        self._plan(list(self._queue))
            elif kind is EventKind.OUTAGE_START:
                self._on_outage_start(ev.subject)
            elif kind is EventKind.OUTAGE_END:
                self._on_outage_end(ev.subject)
            elif kind is EventKind.GRID_EVENT:
                self._grid.announce(int(ev.subject))
            elif kind is EventKind.GRID_PAUSE:
                self._grid.on_pause(ev.subject, ev.token)
        if self.progress is not None:
            self.progress(total, total)
        return self._result(time.perf_counter() - t0)

    # ------------------------------------------------------------------ planning

    def _want_plan(self, period_s: int) -> None:
        """Make sure a planning round is due at the next multiple of ``period_s`` after now
        (strictly after, so a round never re-schedules itself at the same second)."""
        at = (self._q.now_s // period_s + 1) * period_s
        if any(t <= at for t in self._plan_times):
            return
        self._plan_times.add(at)
        self._q.schedule(at, EventKind.PLAN)

    def _forecasts(self, now_s: int) -> Mapping[str, SiteForecast]:
        if self.config.forecast_mode == "perfect":
            return {}
        issued = now_s - now_s % self.config.slot_s
        cached = self._forecast_cache.get(issued)
        if cached is not None:
            return cached
        forecast = _sibling("computenet.signals", "forecast", "forecasts of grid signals")
        out: dict[str, SiteForecast] = {}
        for i, s in enumerate(self.network.sites):
            seed = self.config.seed * 7919 + i * 2 + issued // self.config.slot_s * 104729
            out[s.id] = SiteForecast(
                price=forecast(
                    s.price,
                    self.config.forecast_mode,
                    issued,
                    rel_error=self.config.forecast_rel_error,
                    seed=seed,
                ),
                carbon=forecast(
                    s.carbon,
                    self.config.forecast_mode,
                    issued,
                    rel_error=self.config.forecast_rel_error,
                    seed=seed + 1,
                ),
            )
        # Only the current hour's forecasts are needed again; drop older ones.
        self._forecast_cache = {issued: out}
        return out

    def _request_job(self, j: _Job, now: int) -> TrainingJob:
        if self._estimator is not None:
            return self._estimated_job(j, now)
        job = j.job
        j.planned_h = j.remaining_h
        deadline = job.deadline_s
        if not j.relaxed and j.remaining_h is job.work_h and job.earliest_start_s >= now:
            return job  # as it arrived: nothing to change
        if j.relaxed:
            if j.need_s is None or j.need_for_h != j.remaining_h:
                j.need_s = math.ceil(j.remaining_h * 3600 / self._min_speed(job))
                j.need_for_h = j.remaining_h
            deadline = max(deadline, now + j.need_s + self._horizon_s)
        return _changed(
            job,
            work_h=j.remaining_h,
            earliest_start_s=max(job.earliest_start_s, now),
            deadline_s=deadline,
        )

    def _estimated_job(self, j: _Job, now: int) -> TrainingJob:
        """The job as a real scheduler sees it: the run length the estimator predicts from
        the walltime and the jobs already finished, never the actual run time. Where the
        workload gives a start-by (waiting allowances), the deadline it plans to is start-by
        + estimate (the job's own deadline adds the actual run, which the engine must not
        see). Otherwise a job whose estimate no longer fits before its deadline must start
        now to be on time (its deadline is pushed to now + the estimate)."""
        assert self._estimator is not None
        job = j.job
        done_h = job.work_h - j.remaining_h  # work done so far: known (elapsed x speed)
        planned = self._estimator.predict(j.limit_h + done_h, done_h)
        planned = max(1.0 / 3600.0, min(planned, j.limit_h))
        j.planned_h = planned
        start = max(job.earliest_start_s, now)
        need = math.ceil(planned * 3600 / self._min_speed(job))
        start_by = self.workload.start_by.get(job.id)
        if start_by is not None:  # the deadline is start-by + actual run: give the estimate's
            deadline = max(start_by, start) + need
        else:
            deadline = max(job.deadline_s, start + need)
        if j.relaxed:
            deadline = max(deadline, now + need + self._horizon_s)
        return _changed(job, work_h=planned, earliest_start_s=start, deadline_s=deadline)

    def _plan(self, job_ids: list[str]) -> None:
        now = self._q.now_s
        jobs = [self._jobs[i] for i in job_ids]
        reply = self._ask([self._request_job(j, now) for j in jobs])
        self._apply(reply, set(job_ids))
        # Infeasible as asked: ask once more with relaxed deadlines (run late, not vanish).
        retry = []
        for inf in reply.infeasible:
            j = self._jobs.get(inf.job_id)
            if j is None or j.state is not JobState.WAITING:
                continue
            if not j.relaxed:
                j.relaxed = True
                retry.append(inf.job_id)
            elif inf.constraint not in TRANSIENT_CONSTRAINTS:
                self._reject(j, f"infeasible ({inf.constraint}): {inf.reason}")
        if retry:
            reply2 = self._ask([self._request_job(self._jobs[i], now) for i in retry])
            self._apply(reply2, set(retry))
            for inf in reply2.infeasible:
                j = self._jobs[inf.job_id]
                if j.state is JobState.WAITING and inf.constraint not in TRANSIENT_CONSTRAINTS:
                    self._reject(j, f"infeasible ({inf.constraint}): {inf.reason}")
        if self._queue:
            self._want_plan(self._period())

    def _period(self) -> int:
        if self.config.policy in self.config.batch_policies:
            return self.config.batch_every_s
        return self.config.retry_every_s

    def _ask(self, jobs: list[TrainingJob]) -> PlanReply:
        req = self._request(self._q.now_s, jobs)
        self._plan_calls += 1
        return self.planner(req)

    def _request(self, now: int, jobs: list[TrainingJob]) -> PlanRequest:
        """The engine's request for ``jobs`` now, with the grid events' power caps in force
        over its horizon."""
        ds_ids = dict.fromkeys(d for j in jobs for d in j.datasets)
        caps, drawn = self._grid.power(now, now + self.config.horizon_slots * self.config.slot_s)
        return PlanRequest(
            now_s=now,
            network=self.network,
            jobs=tuple(jobs),
            policy=self.config.policy,
            datasets=tuple(self._datasets[d] for d in ds_ids if d in self._datasets),
            capacity=self._ledger,
            carbon_price_cny_per_t=self.config.carbon_price_cny_per_t,
            slot_s=self.config.slot_s,
            horizon_slots=self.config.horizon_slots,
            down_sites=frozenset(self._down),
            forecasts=self._forecasts(now),
            replicas={d: self._frozen_replicas(d) for d in ds_ids if d in self._replicas},
            home_reserve=self.config.home_reserve,
            quotas=self._quotas(),
            power_caps=caps,
            power_drawn=drawn,
            checkpoint_s=self.config.checkpoint_s,
            restore_s=self.config.restore_s,
        )

    def _frozen_replicas(self, ds_id: str) -> frozenset[str]:
        hit = self._replicas_frozen.get(ds_id)
        if hit is None:
            hit = self._replicas_frozen[ds_id] = frozenset(self._replicas[ds_id])
        return hit

    def _quotas(self) -> Quotas | None:
        """The quota inputs of a request: the quotas, and who holds each allocation."""
        if not self.config.quotas:
            return None
        holders = []
        for pool in self._pools.values():
            for jid in pool.allocations:
                j = self._jobs[jid].job
                holders.append(
                    Holder(
                        jid,
                        j.tenant,
                        j.priority,
                        j.checkpointable,
                        j.checkpoint_interval_s,
                        self._jobs[jid].start_s,
                    )
                )
        holders.sort(key=lambda h: h.job_id)
        return Quotas(self.config.quotas, tuple(holders))

    def _expire_waiting(self) -> None:
        now = self._q.now_s
        for jid in list(self._queue):
            j = self._jobs[jid]
            if now > j.job.deadline_s + self.config.max_late_s:
                self._reject(
                    j, f"still unplaced {self.config.max_late_s // 3600} h after its deadline"
                )

    def _reject(self, j: _Job, reason: str) -> None:
        j.state = JobState.REJECTED
        j.reason = reason
        self._queue.pop(j.job.id, None)

    # ------------------------------------------------------------------ executor

    def _violate(self, job_id: str, kind: str, detail: str) -> None:
        self._violations.append(Violation(self._q.now_s, job_id, kind, detail))

    def _speed(self, job: TrainingJob, accelerator: str) -> float:
        if job.accelerator_speed:
            return job.accelerator_speed.get(accelerator, 0.0)
        return self.network.speed(accelerator)

    def _min_speed(self, job: TrainingJob) -> float:
        speeds = (
            [v for v in job.accelerator_speed.values() if v > 0]
            if job.accelerator_speed
            else [self.network.speed(a) for a in self.network.accelerators]
        )
        return min(speeds) if speeds else 1.0

    def _home_of(self, job: TrainingJob) -> str:
        for d in job.datasets:
            if d in self._datasets:
                return self._datasets[d].home_site
        return self.network.sites[0].id

    def _apply(self, reply: PlanReply, asked: set[str]) -> None:
        now = self._q.now_s
        for pre in reply.preemptions:
            self._on_preemption(pre)
        for p in sorted(reply.placements, key=lambda p: (p.start_s, p.job_id)):
            j = self._jobs.get(p.job_id)
            if j is None or p.job_id not in asked or j.state is not JobState.WAITING:
                self._violate(p.job_id, "unknown-job", "placed a job that was not asked about")
                continue
            if p.site_id not in self._sites:
                self._violate(p.job_id, "unknown-site", f"unknown site {p.site_id!r}")
                continue
            if p.site_id in self._down:
                self._violate(p.job_id, "down-site", f"placed at {p.site_id}, which is down")
                continue
            if p.count != j.job.accelerators:
                self._violate(
                    p.job_id, "gang", f"{p.count} accelerators for a gang of {j.job.accelerators}"
                )
                continue
            speed = self._speed(j.job, p.accelerator)
            pool = self._pools.get((p.site_id, p.accelerator))
            if speed <= 0 or pool is None:
                self._violate(
                    p.job_id, "accelerator-type", f"{p.accelerator} at {p.site_id} is not usable"
                )
                continue
            start = p.start_s
            if start < now:
                self._violate(p.job_id, "past-start", f"start {start} before now {now}")
                start = now
            # The job cannot start before the data it needs has arrived.
            for t in p.transfers:
                start = max(start, t.end_s)
            # Reserved for the run length the engine planned (the actual run time under
            # ``oracle``, the estimate under ``estimate``), in one stretch or in segments.
            if self._estimator is None:
                run_s = max(1, math.ceil(j.remaining_h * 3600 / speed))
            else:
                run_s = max(1, p.end_s - p.start_s)
            end = start + run_s
            stretches = [(start, end)]
            if p.segments:
                stretches = [(max(a, start), b) for a, b in p.segments]
                bad = self._bad_segments(j, stretches, start, speed)
                if bad:
                    self._violate(p.job_id, "segments", bad)
                    continue
                end = stretches[-1][1]
            if any(
                self._ledger.peak(p.site_id, p.accelerator, a, b) + p.count > pool.capacity
                for a, b in stretches
            ):
                self._violate(
                    p.job_id,
                    "capacity",
                    f"{p.count} x {p.accelerator} at {p.site_id} over capacity {pool.capacity}",
                )
                continue
            for d in j.job.datasets:
                ds = self._datasets.get(d)
                if ds is not None:
                    why = rule_breach(self.network, ds, p.site_id)
                    if why:
                        self._violate(p.job_id, "data-rule", why)
            for t in p.transfers:
                ds = self._datasets.get(t.dataset_id)
                if ds is not None:
                    why = rule_breach(self.network, ds, t.to_site, copy=True)
                    if why:
                        self._violate(p.job_id, "data-rule", why)
                    self._replicas[ds.id].add(t.to_site)
                    self._replicas_frozen.pop(ds.id, None)
                self._transfers.append(t)
                j.transfer_gb += t.size_gb
                j.transfer_cost_cny += t.cost_cny
            self._check_quota(j, p.accelerator, p.count, start, end)
            j.state = JobState.RESERVED
            j.attempt += 1
            j.site_id, j.accelerator, j.count = p.site_id, p.accelerator, p.count
            j.start_s, j.end_s, j.speed = start, end, speed
            j.reason = p.reason
            j.allocs = [
                Allocation(j.job.id, p.site_id, p.accelerator, p.count, a, b) for a, b in stretches
            ]
            j.seg_in = 0
            pool.allocations[j.job.id] = j.allocs[0]
            for alloc in j.allocs:
                self._hold(j, alloc)
            self._queue.pop(j.job.id, None)
            self._q.schedule(start, EventKind.START, j.job.id, j.attempt)
            self._arm(j, start)

    def _bad_segments(
        self, j: _Job, stretches: list[tuple[int, int]], start: int, speed: float
    ) -> str:
        """Why a segmented placement cannot be carried out ("" when it can): segments in
        order, none empty or overlapping, the first at the start, and a job that can
        checkpoint."""
        if len(stretches) > 1 and not j.job.checkpointable:
            return "split a job that cannot checkpoint into segments"
        if stretches[0][0] != start:
            return "the first segment does not begin at the placement's start"
        prev = None
        for a, b in stretches:
            if b <= a:
                return f"empty segment [{a}, {b})"
            if prev is not None and a < prev:
                return f"segment [{a}, {b}) overlaps the one before (ends {prev})"
            prev = b
        return ""

    def _hold(self, j: _Job, alloc: Allocation) -> None:
        self._ledger.add(alloc)
        if j.job.tenant in self._quota_of:
            self._quota_held.add(replace(alloc, site_id=j.job.tenant))

    def _unhold(self, j: _Job, alloc: Allocation) -> None:
        self._ledger.remove(alloc)
        if j.job.tenant in self._quota_of:
            self._quota_held.remove(replace(alloc, site_id=j.job.tenant))

    def _on_start(self, job_id: str, token: int) -> None:
        """A reserved stretch begins: the job runs until its work is done, its walltime is
        reached or the stretch ends (a pause: it writes a checkpoint first), whichever is
        first. Resumed stretches begin by reading the checkpoint back."""
        j = self._jobs[job_id]
        if j.attempt != token or j.state is not JobState.RESERVED or not j.allocs:
            return
        now = self._q.now_s
        j.state = JobState.RUNNING
        if j.first_start_s is None:
            j.first_start_s = now
        j.start_s = now

    def _arm(self, j: _Job, start: int) -> None:
        """The end of the stretch beginning at ``start``: the job's work done or its walltime
        reached (``finish_at``), or the stretch's reserved end, whichever is first."""
        left_h = min(j.remaining_h, j.limit_h)
        # (less a microsecond: hours x 3600 in floating point may land just above a whole second)
        j.finish_at = start + j.seg_in + max(1, math.ceil(left_h * 3600 / j.speed - 1e-6))
        j.end_s = j.allocs[0].end_s
        self._q.schedule(min(j.finish_at, j.end_s), EventKind.FINISH, j.job.id, j.attempt)

    def _on_finish(self, job_id: str, token: int) -> None:
        j = self._jobs[job_id]
        if j.attempt != token or j.state is not JobState.RUNNING:
            return
        now = self._q.now_s
        if now >= j.finish_at:
            self._charge(j, j.start_s, now, completed=True)
            ran_h = (now - j.start_s - j.seg_in) * j.speed / 3600.0
            if j.remaining_h <= j.limit_h + 1e-9:
                j.remaining_h = 0.0
                j.state = JobState.DONE
            else:  # stopped at its walltime, its work not done (Slurm's TIMEOUT)
                j.remaining_h = max(0.0, j.remaining_h - ran_h)
                j.state = JobState.TIMEOUT
                wall = self.workload.walltime_h.get(job_id, j.job.work_h)
                j.reason = f"stopped at its walltime ({wall:.2f} h)"
            j.limit_h = max(0.0, j.limit_h - ran_h)
            j.finish_s = now
            self._release(j)
            if self._estimator is not None and j.state is JobState.DONE:
                self._estimator.observe(self.workload.walltime_h.get(job_id), j.job.work_h)
            if self.config.policy in self.config.replan_on_finish and self._queue:
                self._plan(list(self._queue))
        elif len(j.allocs) > 1:
            self._pause(j, now)
        else:
            self._extend(j, now)

    def _pause(self, j: _Job, now: int) -> None:
        """The end of a stretch with more to come: the last ``checkpoint_s`` of it wrote the
        checkpoint, so the work done is the stretch less its restore and checkpoint time;
        the job waits, holding its later stretches, and resumes from that checkpoint."""
        self._charge(j, j.start_s, now, completed=False)
        useful_s = max(0, now - j.start_s - j.seg_in - self.config.checkpoint_s)
        done_h = useful_s * j.speed / 3600.0
        j.remaining_h = max(0.0, j.remaining_h - done_h)
        j.limit_h = max(0.0, j.limit_h - done_h)
        pool = self._pools[(j.site_id, j.accelerator)]  # type: ignore[index]
        self._unhold(j, j.allocs.pop(0))
        pool.allocations[j.job.id] = j.allocs[0]
        j.seg_in = self.config.restore_s
        j.resumes += 1
        j.state = JobState.RESERVED
        self._q.schedule(j.allocs[0].start_s, EventKind.START, j.job.id, j.attempt)
        self._arm(j, j.allocs[0].start_s)

    def _extend(self, j: _Job, now: int) -> None:
        """The reservation ran out before the job did (it was planned with an estimate
        shorter than its run): it keeps running to its end or its walltime. Its
        reservation is extended; jobs reserved to start on those accelerators before then
        lose their reservation and are planned again, as a backfilling scheduler's
        reservations slip when a job overruns its prediction."""
        assert j.site_id is not None and j.accelerator is not None
        pool = self._pools[(j.site_id, j.accelerator)]
        old = j.allocs[0]
        new = replace(old, end_s=j.finish_at)
        self._unhold(j, old)
        while self._ledger.peak(j.site_id, j.accelerator, now, new.end_s) + j.count > pool.capacity:
            victims = sorted(
                (
                    (a.start_s, a.job_id)
                    for a in pool.allocations.values()
                    if self._jobs[a.job_id].state is JobState.RESERVED
                    and any(
                        x.start_s < new.end_s and x.end_s > now for x in self._jobs[a.job_id].allocs
                    )
                ),
                reverse=True,
            )
            if not victims:
                break
            v = self._jobs[victims[0][1]]
            self._release(v)
            v.state = JobState.WAITING
            v.attempt += 1
            v.bumped += 1
            v.waiting_since_s = now
            self._queue[v.job.id] = None
        j.allocs[0] = new
        pool.allocations[j.job.id] = new
        self._hold(j, new)
        j.end_s = new.end_s
        self._q.schedule(new.end_s, EventKind.FINISH, j.job.id, j.attempt)
        if self._queue:
            self._want_plan(self._period())

    def _release(self, j: _Job) -> None:
        assert j.site_id is not None and j.accelerator is not None
        self._pools[(j.site_id, j.accelerator)].allocations.pop(j.job.id, None)
        for alloc in j.allocs:
            self._unhold(j, alloc)
        j.allocs = []

    def _check_quota(self, j: _Job, accelerator: str, count: int, start: int, end: int) -> None:
        """A placement that takes its tenant past its nominal quota plus its borrowing
        limit at any moment of its run breaks the quota (borrowing within the limit is
        allowed)."""
        q = self._quota_of.get(j.job.tenant)
        if q is None:
            return
        after = self._quota_held.peak(j.job.tenant, accelerator, start, end) + count
        if after > q.limit(accelerator):
            self._violate(
                j.job.id,
                "quota",
                f"tenant {j.job.tenant} would hold {after} {accelerator}, over its nominal "
                f"{q.nominal.get(accelerator, 0)} + borrowing limit "
                f"{q.borrowing_limit.get(accelerator, 0)}",
            )

    def _on_preemption(self, pre: Preemption) -> None:
        """Stop a victim the engine chose: a running one loses the work since its last
        checkpoint, a reserved one its reservation; both wait to be planned again."""
        j = self._jobs.get(pre.job_id)
        if j is None or j.state not in (JobState.RUNNING, JobState.RESERVED):
            self._violate(pre.job_id, "unknown-job", "preempted a job that holds nothing")
            return
        if j.state is JobState.RUNNING:
            if not j.job.checkpointable:
                self._violate(pre.job_id, "preemption", "preempted work that cannot checkpoint")
            self._preempt(j, self._q.now_s)
        else:
            self._release(j)
            j.preemptions += 1
            j.state = JobState.WAITING
            j.attempt += 1
            j.waiting_since_s = self._q.now_s
            self._queue[j.job.id] = None
        j.reason = pre.reason

    def _charge(self, j: _Job, start_s: int, end_s: int, *, completed: bool) -> None:
        """Charge a run over ``[start_s, end_s)`` with the site's true price and carbon."""
        if end_s <= start_s:
            return
        assert j.site_id is not None and j.accelerator is not None
        site = self._sites[j.site_id]
        # Split where a grid event runs the job power-capped (``sim.gridsim``).
        for s0, s1, util in self._grid.pieces(j, start_s, end_s):
            key = (j.site_id, j.accelerator, str(j.job.work_kind), util, j.count)
            hit = self._power_memo.get(key)
            if hit is None:
                acc = self.network.accelerators[j.accelerator]
                host_w = 0.0
                price_h = 0.0
                for p in site.pools:
                    if p.accelerator == j.accelerator:
                        host_w, price_h = p.host_power_w, p.price_cny_per_h
                        break
                kw = job_power_kw(acc, j.job.work_kind, util, j.count, host_w)
                hit = self._power_memo[key] = (kw * site.pue, price_h)
            power_kw, price_h = hit
            hours = (s1 - s0) / 3600.0
            energy = power_kw * hours
            energy_cost = energy * site.price.mean(s0, s1)
            compute_cost = j.count * price_h * hours
            carbon = energy * site.carbon.mean(s0, s1) / 1000.0
            j.energy_kwh += energy
            j.cost_cny += energy_cost + compute_cost
            j.carbon_kg += carbon
            self._segments.append(
                Segment(
                    j.job.id,
                    j.site_id,
                    j.accelerator,
                    j.count,
                    s0,
                    s1,
                    energy,
                    energy_cost,
                    compute_cost,
                    carbon,
                    completed and s1 == end_s,
                )
            )

    # ------------------------------------------------------------------ faults

    def _on_outage_start(self, site_id: str) -> None:
        self._down[site_id] = self._down.get(site_id, 0) + 1
        if self._down[site_id] > 1:
            return
        now = self._q.now_s
        hit = sorted(
            (
                a.job_id
                for (s, _), pool in self._pools.items()
                if s == site_id
                for a in pool.allocations.values()
            ),
        )
        for jid in hit:
            j = self._jobs[jid]
            if j.state is JobState.RUNNING:
                self._preempt(j, now)
            elif j.state is JobState.RESERVED:
                self._release(j)
                j.state = JobState.WAITING
                j.attempt += 1  # invalidates its start/finish events
                j.waiting_since_s = now
                self._queue[jid] = None
        self._replan_queue()

    def _preempt(self, j: _Job, now: int) -> None:
        """Stop a running job: work since its last checkpoint is lost."""
        elapsed = max(0, now - j.start_s - j.seg_in)
        saved_s = (
            (elapsed // j.job.checkpoint_interval_s) * j.job.checkpoint_interval_s
            if j.job.checkpointable
            else 0
        )
        self._charge(j, j.start_s, now, completed=False)
        done_h = saved_s / 3600.0 * j.speed
        j.lost_accelerator_h += (now - j.start_s - saved_s) / 3600.0 * j.count
        j.remaining_h = max(0.0, j.remaining_h - done_h) if j.job.checkpointable else j.job.work_h
        if j.job.checkpointable:
            j.limit_h = max(0.0, j.limit_h - done_h)
        j.preemptions += 1
        self._release(j)
        j.state = JobState.WAITING
        j.attempt += 1
        j.waiting_since_s = now
        self._queue[j.job.id] = None

    def _on_outage_end(self, site_id: str) -> None:
        n = self._down.get(site_id, 0) - 1
        if n > 0:
            self._down[site_id] = n
            return
        self._down.pop(site_id, None)
        self._replan_queue()

    def _replan_queue(self) -> None:
        """After a fault or a recovery: per-arrival policies re-plan the queue now, batch
        policies at their next round."""
        if not self._queue:
            return
        if self.config.policy in self.config.batch_policies:
            self._want_plan(self.config.batch_every_s)
        else:
            self._plan(list(self._queue))

    # ------------------------------------------------------------------ result

    def _result(self, wall_s: float) -> SimResult:
        outcomes = []
        for j in self._jobs.values():
            late = j.finish_s is not None and j.finish_s > j.job.deadline_s
            outcomes.append(
                JobOutcome(
                    job_id=j.job.id,
                    arrival_s=j.job.earliest_start_s,
                    deadline_s=j.job.deadline_s,
                    accelerators=j.job.accelerators,
                    home_site=j.home,
                    state=str(j.state),
                    site_id=j.site_id,
                    first_start_s=j.first_start_s,
                    finish_s=j.finish_s,
                    energy_kwh=j.energy_kwh,
                    cost_cny=j.cost_cny + j.transfer_cost_cny,
                    carbon_kg=j.carbon_kg,
                    transfer_gb=j.transfer_gb,
                    transfer_cost_cny=j.transfer_cost_cny,
                    preemptions=j.preemptions,
                    lost_accelerator_h=j.lost_accelerator_h,
                    late=late,
                    cut_off=j.cut_off,
                    reason=j.reason,
                    tenant=j.job.tenant,
                    priority=j.job.priority,
                )
            )
        end = max([s.end_s for s in self._segments] + [self._q.now_s])
        return SimResult(
            policy=self.config.policy,
            config=self.config,
            network=self.network,
            outcomes=tuple(outcomes),
            segments=tuple(self._segments),
            transfers=tuple(self._transfers),
            violations=tuple(self._violations),
            events=self._q.processed,
            plan_calls=self._plan_calls,
            start_s=self.workload.start_s,
            end_s=end,
            wall_s=wall_s,
            grid=self._grid.outcomes(tuple(self._segments)),
        )


def simulate(
    network: Network,
    workload: Workload,
    config: SimConfig,
    *,
    planner: Planner | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimResult:
    """Run one simulation; see ``Simulator``."""
    return Simulator(network, workload, config, planner=planner, progress=progress).run()
