"""Demand response: the grid asks for less power, computenet answers with a commitment.

``respond(GridRequest) -> GridResponse`` is pure, like ``plan``: the event, the work placed
at the event's sites and everything else the engine needs come in the request; the answer
says, hour by hour, how much facility power (kW at the grid connection: accelerators and
hosts x PUE, from the measured ``PowerProfile`` of each accelerator type) the sites will
shed against what was asked, which jobs it touches and how, and what that risks.

The answer takes the least harmful step first and stops when every hour of every site holds
its cap (the draw planned before the event, less what was asked):

1. **defer or move** flexible work (class >= 1) that has not started, flexible class 3
   first: the engine places it again under the power caps, no later than its class allows
   (its completion may slip by ``FLEX_SLOWDOWN`` x its run, never past its deadline);
2. **checkpoint and pause, or move**, running checkpointable flexible work: it checkpoints
   at the event's start (the notice gives it time to; no work is lost) and the engine
   places the rest of its run, at the same site after the event or at another site;
3. **lower the power** of running flexible work at sites whose executor can cap it
   (``executors.base.Capabilities.power_cap``): during the event it does ``1 - slowdown``
   of its work per hour at the power the measured curve gives for that load
   (``model.load_share``: half the work costs about 70 % of the power), and its run grows
   by the work it did not do, within its class's slack;
4. **move** class-0 work that has not started, only where it then finishes no later.

Running class-0 work is never touched. The promise covers the work in the system when the
event is answered: work that arrives while the event lasts is placed under its caps like
any other (its deadline holds). A round places the candidates it picked in one
engine call; candidates the engine cannot place within their slack keep their plan and the
next candidates are taken, until the caps hold or no candidate is left; what is then still
over the cap is the stated shortfall.

Figures are modelled from the plan: the service meters what was delivered from its
executors' reports afterwards, the simulator from its model of the run.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from computenet.engine.capacity import CapacityLedger
from computenet.engine.planner import plan
from computenet.engine.power import PowerCap, PowerDraw
from computenet.engine.types import Allocation, Placement, PlanRequest
from computenet.errors import InputError
from computenet.model import (
    FLEX_SLOWDOWN,
    HOUR_S,
    Network,
    TrainingJob,
    job_power_kw,
)

MAX_ROUNDS = 32
"""Engine rounds per group of candidates at most (each places one batch of them)."""
ROUND_SLOT_S = 900
"""The engine's internal slot: re-plans start on this grid, aligned to the event's start."""


@dataclass(frozen=True)
class GridEvent:
    """The grid asks sites ``site_ids`` to draw less over ``[start_s, end_s)``, announced
    ``notice_s`` before it starts. Exactly one target: ``target_kw`` (facility kW to shed in
    every hour, over all the sites, split by their draw) or ``target_share`` (0-1, the share
    of each site's draw to shed in every hour)."""

    id: str
    site_ids: tuple[str, ...]
    start_s: int
    end_s: int
    notice_s: int = HOUR_S
    target_kw: float | None = None
    target_share: float | None = None


@dataclass(frozen=True)
class Work:
    """A job placed at one of the event's sites whose run touches the window: running when
    ``start_s`` is before the request's ``now_s``, else waiting to start."""

    job: TrainingJob
    site_id: str
    accelerator: str
    count: int
    start_s: int
    end_s: int

    def allocation(self) -> Allocation:
        return Allocation(
            self.job.id, self.site_id, self.accelerator, self.count, self.start_s, self.end_s
        )


@dataclass(frozen=True)
class GridRequest:
    """One event to answer. ``base`` carries the network, datasets, replicas, forecasts,
    carbon price and ``now_s`` (when the answer is given) of an ordinary request, with the
    capacity every *other* allocation takes (``running`` or a ``capacity`` ledger, which is
    read, never changed) and no jobs. ``work`` lists every job placed at the event's sites
    whose run touches the window. ``power_cappable`` names the sites whose executor can cap
    accelerator power."""

    event: GridEvent
    base: PlanRequest
    work: tuple[Work, ...]
    power_cappable: frozenset[str] = frozenset()


class Action(enum.StrEnum):
    """What the answer does to one job."""

    DEFERRED = "deferred"  # not started: starts later at the same site
    MOVED = "moved"  # placed at another site (from its start, or after a checkpoint)
    PAUSED = "paused"  # running: checkpoints at the event's start, resumes after it
    POWER_CAPPED = "power-capped"  # running at lower power, slower, through the event
    ADVANCED = "advanced"  # not started: starts earlier at the same site, ends before


@dataclass(frozen=True)
class Affected:
    """One job the answer changes. Times in epoch seconds; ``shed_kw`` is the facility power
    it takes off the event's sites, averaged over the window; ``utilisation`` its planned
    busy share during the event (power-capped work only); ``placement`` where the rest of
    its run goes (re-planned work), after it stops at ``paused_at_s`` if it was running."""

    job_id: str
    flex_class: int
    action: Action
    from_site: str
    to_site: str
    old_start_s: int
    old_end_s: int
    new_start_s: int
    new_end_s: int
    deadline_s: int
    shed_kw: float
    utilisation: float | None = None
    placement: Placement | None = None
    paused_at_s: int | None = None  # running work: when it checkpoints and stops
    slow_s: tuple[int, int] | None = None  # power-capped work: when it runs slower
    accelerator: str = ""  # the accelerator type it held at ``from_site``

    @property
    def delay_s(self) -> int:
        return self.new_end_s - self.old_end_s

    @property
    def deadline_margin_s(self) -> int:
        return self.deadline_s - self.new_end_s


@dataclass(frozen=True)
class HourCommitment:
    """One site-hour of the answer (kW, facility, hourly means): the draw planned before the
    event, what was asked, and the draw planned now."""

    site_id: str
    start_s: int
    end_s: int
    baseline_kw: float
    asked_kw: float
    planned_kw: float

    @property
    def committed_kw(self) -> float:
        return self.baseline_kw - self.planned_kw

    @property
    def shortfall_kw(self) -> float:
        return max(0.0, self.asked_kw - self.committed_kw)

    @property
    def ratio(self) -> float:
        """Committed / asked (1 when nothing was asked)."""
        return self.committed_kw / self.asked_kw if self.asked_kw > 1e-9 else 1.0


@dataclass(frozen=True)
class GridResponse:
    """The commitment: per site-hour what is shed against the ask, the jobs affected, the
    caps to keep in force for later plans while the event lasts (per site and quarter hour:
    see ``_caps``), and the planned draws at the event's sites (``draws``, facility kW).
    ``energy_moved_kwh`` is facility energy taken out of the window at the event's sites;
    ``carbon_moved_kg`` the affected jobs' carbon after less before (modelled from the
    forecasts); ``added_misses`` jobs that would now miss a deadline they met (``_flex``: of
    classes >= 1)."""

    event_id: str
    hours: tuple[HourCommitment, ...]  # per site and hour
    totals: tuple[HourCommitment, ...]  # per hour over all the event's sites
    affected: tuple[Affected, ...]
    caps: tuple[PowerCap, ...]
    draws: tuple[PowerDraw, ...]
    energy_moved_kwh: float
    carbon_moved_kg: float
    added_misses: int
    added_misses_flex: int
    at_risk: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def delivered_ratio_min(self) -> float:
        """The lowest hour's committed / asked, over all the event's sites."""
        return min((h.ratio for h in self.totals if h.asked_kw > 1e-9), default=1.0)


# ------------------------------------------------------------------------- helpers


def check_event(ev: GridEvent, net: Network, now_s: int) -> None:
    """Raise ``InputError`` naming the field for an event that cannot be answered."""
    if not ev.site_ids:
        raise InputError("the event names no site", where="site", fix="name a site or a province")
    for s in ev.site_ids:
        if s not in net.site_ids:
            raise InputError(
                f"unknown site {s!r}", where="site", fix=f"use one of: {', '.join(net.site_ids)}"
            )
    if ev.end_s <= ev.start_s:
        raise InputError(
            "the window ends before it starts", where="end_s", fix="give end_s > start_s"
        )
    if ev.end_s - ev.start_s > 7 * 86400:
        raise InputError("a grid event lasts at most 7 days", where="end_s")
    if ev.end_s <= now_s:
        raise InputError("the window is already over", where="end_s")
    if (ev.target_kw is None) == (ev.target_share is None):
        raise InputError(
            "give exactly one target",
            where="target",
            fix="target_mw (MW to shed) or target_pct (% of the draw)",
        )
    if ev.target_kw is not None and not (math.isfinite(ev.target_kw) and ev.target_kw > 0):
        raise InputError("target_mw must be a number > 0", where="target_mw")
    if ev.target_share is not None and not (0 < ev.target_share <= 1):
        raise InputError("target_pct must be in (0, 100]", where="target_pct")


def facility_kw(
    net: Network, job: TrainingJob, site_id: str, acc: str, count: int, util: float | None = None
) -> float:
    """Facility power (kW: board + host, x PUE) of ``count`` x ``acc`` running ``job`` at
    ``site_id`` (``util``: its busy share, default the job's own)."""
    site = net.site(site_id)
    host = sum(p.host_power_w for p in site.pools if p.accelerator == acc) / max(
        1, sum(1 for p in site.pools if p.accelerator == acc)
    )
    u = job.utilisation if util is None else util
    return job_power_kw(net.accelerators.get(acc), job.work_kind, u, count, host) * site.pue


def hours_of(ev: GridEvent) -> list[tuple[int, int]]:
    """The event's hours (the last may be shorter)."""
    return [(t, min(t + HOUR_S, ev.end_s)) for t in range(ev.start_s, ev.end_s, HOUR_S)]


def mean_kw(draws: Iterable[PowerDraw], a: int, b: int) -> float:
    """Time-weighted mean of the draws over ``[a, b)``."""
    return sum(d.kw * max(0, min(b, d.end_s) - max(a, d.start_s)) for d in draws) / (b - a)


def peak_kw(draws: Sequence[PowerDraw], a: int, b: int) -> float:
    """Highest total of the draws at any moment of ``[a, b)``."""
    inside = [d for d in draws if d.start_s < b and d.end_s > a]
    if not inside:
        return 0.0
    t = np.array([max(a, d.start_s) for d in inside] + [min(b, d.end_s) for d in inside])
    c = np.array([d.kw for d in inside] + [-d.kw for d in inside])
    order = np.lexsort((c, t))  # at equal times the ends (negative) come first
    level = np.cumsum(c[order])
    return float(level.max())


def carbon_kg(net: Network, base: PlanRequest, draws: Iterable[PowerDraw]) -> float:
    """Carbon (kg) of facility draws, under the request's forecasts (or the sites' signals)."""
    total = 0.0
    for d in draws:
        if d.end_s <= d.start_s:
            continue
        f = base.forecasts.get(d.site_id)
        sig = f.carbon if f is not None else net.site(d.site_id).carbon
        total += d.kw * (d.end_s - d.start_s) / 3600.0 * sig.mean(d.start_s, d.end_s) / 1000.0
    return total


# ------------------------------------------------------------------------- the answer


@dataclass
class _State:
    """What the answer has decided so far: per job its planned draws (facility kW)."""

    req: GridRequest
    ledger: CapacityLedger
    draws: dict[str, list[PowerDraw]]
    caps: tuple[PowerCap, ...]
    done: dict[str, Affected] = field(default_factory=dict)

    def site_draws(self, site_id: str) -> list[PowerDraw]:
        return [d for ds in self.draws.values() for d in ds if d.site_id == site_id]

    def excess(self) -> dict[PowerCap, float]:
        """Per cap, the peak draw over it, where positive."""
        out: dict[PowerCap, float] = {}
        by_site: dict[str, list[PowerDraw]] = {s: [] for s in self.req.event.site_ids}
        for ds in self.draws.values():
            for d in ds:
                if d.site_id in by_site:
                    by_site[d.site_id].append(d)
        for c in self.caps:
            inside = [d for s in c.sites for d in by_site[s]]
            over = peak_kw(inside, c.start_s, c.end_s) - c.limit_kw
            if over > 1e-6:
                out[c] = over
        return out


def respond(req: GridRequest) -> GridResponse:
    """Answer a grid event (see the module docstring)."""
    ev, base = req.event, req.base
    net = base.network
    check_event(ev, net, base.now_s)
    work = sorted(req.work, key=lambda w: w.job.id)
    draws = {w.job.id: [_draw(net, w)] for w in work}
    hours = hours_of(ev)
    baseline = {(s, a): mean_kw(_at(draws, s), a, b) for s in ev.site_ids for a, b in hours}
    asked = _asked(ev, baseline, hours)
    caps = _caps(ev, draws, hours, asked)
    ledger = CapacityLedger(base.running_allocations())
    for w in work:
        ledger.add(w.allocation())
    st = _State(req, ledger, draws, caps)
    notes: list[str] = []
    for group in _groups(req, work):
        rounds = 0
        while group and st.excess() and rounds < MAX_ROUNDS:
            pick, group = _pick(st, group)
            if not pick:
                break
            rounds += 1
            if pick[0][0] == "cap":
                _power_cap(st, [w for _, w in pick])
            else:
                _replan(st, pick)
    left = st.excess()
    if left:
        notes.append(
            "flexible work does not suffice: the cap is exceeded in "
            f"{len(left)} quarter hour(s); the shortfall is stated per hour"
        )
    return _answer(st, work, hours, baseline, asked, notes)


def _draw(net: Network, w: Work) -> PowerDraw:
    return PowerDraw(
        w.site_id,
        w.start_s,
        w.end_s,
        facility_kw(net, w.job, w.site_id, w.accelerator, w.count),
        w.job.id,
    )


def _at(draws: dict[str, list[PowerDraw]], site_id: str) -> list[PowerDraw]:
    return [d for ds in draws.values() for d in ds if d.site_id == site_id]


def _asked(
    ev: GridEvent, baseline: dict[tuple[str, int], float], hours: list[tuple[int, int]]
) -> dict[tuple[str, int], float]:
    """Per site-hour, the kW to shed: a share of the site's draw, or the target split over
    the sites by their draw (more than the draw cannot be shed)."""
    out: dict[tuple[str, int], float] = {}
    for a, _ in hours:
        total = sum(baseline[(s, a)] for s in ev.site_ids)
        for s in ev.site_ids:
            b = baseline[(s, a)]
            if ev.target_share is not None:
                out[(s, a)] = b * ev.target_share
            else:
                assert ev.target_kw is not None
                out[(s, a)] = (ev.target_kw * b / total) if total > 0 else 0.0
    return out


def _caps(
    ev: GridEvent,
    draws: dict[str, list[PowerDraw]],
    hours: list[tuple[int, int]],
    asked: dict[tuple[str, int], float],
) -> tuple[PowerCap, ...]:
    """Per quarter hour of the event: the draw planned before the event (its mean over the
    quarter) less the hour's ask, at the event's site, or over all its sites together (one
    group cap: the grid asks the hub or province, and one site may shed for another). A
    plan whose draw never exceeds these sheds at least the ask in every hour, and the
    quarters follow the draw as work ends within an hour (one flat cap per hour would ask
    more than was asked at its start)."""
    sites = ev.site_ids
    group = sites if len(sites) > 1 else ()
    at = [d for s in sites for d in _at(draws, s)]
    out = []
    for a, b in hours:
        ask = sum(asked[(s, a)] for s in sites)
        for q in range(a, b, ROUND_SLOT_S):
            e = min(b, q + ROUND_SLOT_S)
            limit = max(0.0, mean_kw(at, q, e) - ask)
            out.append(PowerCap(_label(ev), q, e, limit, f"grid event {ev.id}", group))
    return tuple(out)


def _label(ev: GridEvent) -> str:
    """The event's sites as one name (a site id, or ids joined by '+')."""
    return "+".join(ev.site_ids)


Candidate = tuple[str, Work]


def _groups(req: GridRequest, work: list[Work]) -> list[list[Candidate]]:
    """The candidates in the order they are taken (see the module docstring); within a
    group, the most flexible class first, then the largest draw, then the job id."""
    now, ev = req.base.now_s, req.event
    net = req.base.network

    def key(w: Work) -> tuple[int, float, str]:
        return (
            -w.job.flex_class,
            -facility_kw(net, w.job, w.site_id, w.accelerator, w.count),
            w.job.id,
        )

    waiting = [w for w in work if w.start_s >= now]
    running = [w for w in work if w.start_s < now]
    g1 = [("defer", w) for w in sorted(waiting, key=key) if w.job.flex_class >= 1]
    g2 = [
        ("pause", w)
        for w in sorted(running, key=key)
        if w.job.flex_class >= 1 and w.job.checkpointable and w.end_s > ev.start_s
    ]
    g3 = [
        ("cap", w)
        for w in sorted(running + waiting, key=key)
        if w.job.flex_class >= 1 and w.site_id in req.power_cappable
    ]
    g4 = [("move0", w) for w in sorted(waiting, key=key) if w.job.flex_class == 0]
    return [g for g in (g1, g2, g3, g4) if g]


def _pick(st: _State, group: list[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
    """Candidates of ``group`` that touch an hour still over its cap, until their draws
    cover the excess; and the rest of the group (still untried)."""
    need = dict(st.excess())
    picked: list[Candidate] = []
    rest: list[Candidate] = []
    for c in group:
        kind, w = c
        if w.job.id in st.done:
            continue
        if not any(v > 1e-6 for v in need.values()):
            rest.append(c)
            continue
        hit = [
            k
            for k, v in need.items()
            if v > 1e-6 and w.site_id in k.sites and w.start_s < k.end_s and w.end_s > k.start_s
        ]
        if not hit:
            rest.append(c)
            continue
        kw = st.draws[w.job.id][0].kw
        for k in hit:
            need[k] -= kw if kind != "cap" else kw * 0.3
        picked.append(c)
    return picked, rest


def _slack_s(job: TrainingJob, run_s: int) -> int:
    cls = min(max(int(job.flex_class), 0), len(FLEX_SLOWDOWN) - 1)
    return int(FLEX_SLOWDOWN[cls] * run_s)


def _replan(st: _State, pick: list[Candidate]) -> None:
    """Place the picked jobs again with the engine, under the caps; those it cannot place in
    their slack keep their plan."""
    req, ev = st.req, st.req.event
    base = req.base
    now = _round_now(base.now_s, ev.start_s)
    jobs: list[TrainingJob] = []
    kept_part: dict[str, tuple[Allocation, PowerDraw] | None] = {}
    for kind, w in pick:
        st.ledger.remove(w.allocation())
        old = st.draws[w.job.id]
        run = w.end_s - w.start_s
        latest = min(w.job.deadline_s, w.end_s + _slack_s(w.job, run))
        if kind == "pause":
            # Runs until the event starts, checkpoints, and the rest of its run is placed.
            stop = max(ev.start_s, now)
            first = Allocation(w.job.id, w.site_id, w.accelerator, w.count, w.start_s, stop)
            st.ledger.add(first)
            kept_part[w.job.id] = (first, replace(old[0], end_s=stop))
            share = (w.end_s - stop) / run
            j = replace(
                w.job, work_h=w.job.work_h * share, earliest_start_s=stop, deadline_s=latest
            )
        else:
            kept_part[w.job.id] = None
            if kind == "move0":
                latest = min(w.job.deadline_s, w.end_s)
            j = replace(w.job, earliest_start_s=max(w.job.earliest_start_s, now), deadline_s=latest)
        jobs.append(j)
    power_drawn = tuple(
        d for jid, ds in st.draws.items() if jid not in {w.job.id for _, w in pick} for d in ds
    ) + tuple(p[1] for p in kept_part.values() if p is not None)
    r = replace(
        base,
        now_s=now,
        jobs=tuple(jobs),
        running=(),
        capacity=st.ledger,
        power_caps=st.caps,
        power_drawn=tuple(d for d in power_drawn if d.site_id in ev.site_ids),
        policy="greedy",
    )
    reply = plan(r)
    placed = {p.job_id: p for p in reply.placements}
    net = base.network
    for kind, w in pick:
        p = placed.get(w.job.id)
        part = kept_part[w.job.id]
        same = p is not None and (p.site_id, p.start_s, p.end_s) == (w.site_id, w.start_s, w.end_s)
        if p is None or same:  # keeps its plan
            if part is not None:
                st.ledger.remove(part[0])
            st.ledger.add(w.allocation())
            continue
        new = [
            PowerDraw(
                p.site_id,
                p.start_s,
                p.end_s,
                facility_kw(net, w.job, p.site_id, p.accelerator, p.count),
                w.job.id,
            )
        ]
        if part is not None:
            new.insert(0, part[1])
        st.ledger.add(Allocation(w.job.id, p.site_id, p.accelerator, p.count, p.start_s, p.end_s))
        old = st.draws[w.job.id]
        st.draws[w.job.id] = new
        if p.site_id != w.site_id:
            action = Action.MOVED
        elif kind == "pause":
            action = Action.PAUSED
        else:
            action = Action.DEFERRED if p.start_s >= w.start_s else Action.ADVANCED
        st.done[w.job.id] = Affected(
            w.job.id,
            w.job.flex_class,
            action,
            w.site_id,
            p.site_id,
            w.start_s,
            w.end_s,
            p.start_s if part is None else w.start_s,
            p.end_s,
            w.job.deadline_s,
            mean_kw(old, ev.start_s, ev.end_s)
            - mean_kw([d for d in new if d.site_id in ev.site_ids], ev.start_s, ev.end_s),
            placement=p,
            paused_at_s=part[0].end_s if part is not None else None,
            accelerator=w.accelerator,
        )


def _round_now(now_s: int, start_s: int) -> int:
    """The first time at or after ``now_s`` on the event's grid of ``ROUND_SLOT_S``, so the
    engine's slots line up with the event's hours."""
    if now_s >= start_s:
        return start_s + -(-(now_s - start_s) // ROUND_SLOT_S) * ROUND_SLOT_S
    return start_s - ((start_s - now_s) // ROUND_SLOT_S) * ROUND_SLOT_S


def _power_cap(st: _State, works: list[Work]) -> None:
    """Run each job slower at lower power through the event (see the module docstring),
    where its class's slack, its deadline and its pool allow the longer run."""
    ev, net = st.req.event, st.req.base.network
    for w in works:
        slow = FLEX_SLOWDOWN[min(max(int(w.job.flex_class), 0), len(FLEX_SLOWDOWN) - 1)]
        rate = 1.0 - slow
        a = max(w.start_s, ev.start_s)
        left = w.end_s - a  # seconds of work left at full speed when the event starts
        slow_s = min(math.ceil(left / rate), ev.end_s - a)
        end = a + slow_s + max(0, math.ceil(left - rate * slow_s))
        ext = end - w.end_s
        if ext <= 0 or ext > _slack_s(w.job, w.end_s - w.start_s) or end > w.job.deadline_s:
            continue
        site = net.site(w.site_id)
        if st.ledger.peak(w.site_id, w.accelerator, w.end_s, end) + w.count > site.capacity(
            w.accelerator
        ):
            continue
        u = w.job.utilisation * rate
        full = facility_kw(net, w.job, w.site_id, w.accelerator, w.count)
        low = facility_kw(net, w.job, w.site_id, w.accelerator, w.count, u)
        new = [
            PowerDraw(w.site_id, w.start_s, a, full, w.job.id),
            PowerDraw(w.site_id, a, a + slow_s, low, w.job.id),
            PowerDraw(w.site_id, a + slow_s, end, full, w.job.id),
        ]
        # A slower run lasts longer: where it now runs into quarters it used to leave, it
        # must not push any of them further over its cap.
        before, old = st.excess(), st.draws[w.job.id]
        st.draws[w.job.id] = [d for d in new if d.end_s > d.start_s]
        after = st.excess()
        if any(v > before.get(c, 0.0) + 1e-6 for c, v in after.items()):
            st.draws[w.job.id] = old
            continue
        st.ledger.remove(w.allocation())
        st.ledger.add(replace(w.allocation(), end_s=end))
        st.done[w.job.id] = Affected(
            w.job.id,
            w.job.flex_class,
            Action.POWER_CAPPED,
            w.site_id,
            w.site_id,
            w.start_s,
            w.end_s,
            w.start_s,
            end,
            w.job.deadline_s,
            (full - low) * slow_s / (ev.end_s - ev.start_s),
            utilisation=u,
            slow_s=(a, a + slow_s),
            accelerator=w.accelerator,
        )
        if not st.excess():
            return


def _answer(
    st: _State,
    work: list[Work],
    hours: list[tuple[int, int]],
    baseline: dict[tuple[str, int], float],
    asked: dict[tuple[str, int], float],
    notes: list[str],
) -> GridResponse:
    ev, base = st.req.event, st.req.base
    net = base.network
    hc = tuple(
        HourCommitment(s, a, b, baseline[(s, a)], asked[(s, a)], mean_kw(st.site_draws(s), a, b))
        for s in ev.site_ids
        for a, b in hours
    )
    totals = tuple(
        HourCommitment(
            _label(ev),
            a,
            b,
            sum(h.baseline_kw for h in hc if h.start_s == a),
            sum(h.asked_kw for h in hc if h.start_s == a),
            sum(h.planned_kw for h in hc if h.start_s == a),
        )
        for a, b in hours
    )
    by_id = {w.job.id: w for w in work}
    affected = tuple(st.done[k] for k in sorted(st.done))
    before = [_draw(net, by_id[a.job_id]) for a in affected]
    after = [d for a in affected for d in st.draws[a.job_id]]
    span = (ev.start_s, ev.end_s)

    def energy_in(ds: Iterable[PowerDraw]) -> float:
        return sum(
            d.kw * max(0, min(span[1], d.end_s) - max(span[0], d.start_s)) / 3600.0
            for d in ds
            if d.site_id in ev.site_ids
        )

    misses = [a for a in affected if a.new_end_s > a.deadline_s >= a.old_end_s]
    return GridResponse(
        ev.id,
        hc,
        totals,
        affected,
        st.caps,
        tuple(d for s in ev.site_ids for d in st.site_draws(s)),
        energy_in(before) - energy_in(after),
        carbon_kg(net, base, after) - carbon_kg(net, base, before),
        len(misses),
        sum(1 for a in misses if a.flex_class >= 1),
        sum(1 for a in affected if a.deadline_margin_s < HOUR_S),
        tuple(notes),
    )


def sites_of(net: Network, site: str | None, province: str | None) -> tuple[str, ...]:
    """The event's sites: one site, or every site of a province (by name, any case)."""
    if (site is None) == (province is None):
        raise InputError(
            "give a site or a province, not both",
            where="site",
            fix="site: a site id; province: its name",
        )
    if site is not None:
        if site not in net.site_ids:
            raise InputError(
                f"unknown site {site!r}", where="site", fix=f"use one of: {', '.join(net.site_ids)}"
            )
        return (site,)
    assert province is not None
    found = tuple(s.id for s in net.sites if s.province.lower() == province.lower())
    if not found:
        provinces = sorted({s.province for s in net.sites})
        raise InputError(
            f"no site in province {province!r}",
            where="province",
            fix=f"use one of: {', '.join(provinces)}",
        )
    return found
