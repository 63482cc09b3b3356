"""Grid events in the simulator: the same answer as the service (``engine.grid.respond``),
carried out by the simulated executor and metered from the model.

When an event is announced (``notice_s`` before it starts) the simulator hands the engine
the work placed at the event's sites, applies the answer — re-places work that has not
started, lets running work checkpoint and stop when the event starts and run the rest where
the answer put it (no work lost: the checkpoint is taken then), runs power-capped work at
the answer's lower load through the event (its power from the measured load curve) and
longer by the work it did not do — and keeps the answer's caps in every later plan while
the event lasts, so work arriving in the meantime holds them too. Every site in the
simulator can cap power (it models a power limit; ``Capabilities.power_cap`` says which
real executors can).

What was delivered is metered from the simulated runs: per site-hour, the mean facility
power of every segment run there (energy / hours, board + host power x PUE from
``model.job_power_kw``), against the draw planned before the event.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from computenet.engine.grid import (
    Action,
    Affected,
    GridEvent,
    GridRequest,
    GridResponse,
    Work,
    mean_kw,
    peak_kw,
    sites_of,
)
from computenet.engine.power import PowerCap, PowerDraw
from computenet.engine.types import Allocation, PlanReply
from computenet.errors import InputError
from computenet.model import Network, job_power_kw
from computenet.sim.workload import Workload
from computenet.textfile import read_text

if TYPE_CHECKING:
    from computenet.sim.simulator import Segment, Simulator, _Job


@dataclass(frozen=True)
class MeteredHour:
    """One site-hour of an event as the simulation ran it (kW, facility, hourly means)."""

    site_id: str
    start_s: int
    baseline_kw: float
    asked_kw: float
    metered_kw: float

    @property
    def delivered_kw(self) -> float:
        return self.baseline_kw - self.metered_kw

    @property
    def ratio(self) -> float:
        return self.delivered_kw / self.asked_kw if self.asked_kw > 1e-9 else 1.0


@dataclass(frozen=True)
class GridOutcome:
    """One event in a simulation: the answer, how long the engine took to give it (wall
    seconds, the only wall-clock figure), what was delivered hour by hour and the highest
    facility draw under each of the answer's caps (``peak_kw``, in the order of
    ``response.caps``)."""

    event: GridEvent
    response: GridResponse
    answer_s: float
    work: int
    hours: tuple[MeteredHour, ...]
    peak_kw: tuple[float, ...]

    @property
    def delivered_ratio_min(self) -> float:
        """The lowest hour's delivered / asked, over all the event's sites."""
        out = []
        for a in sorted({h.start_s for h in self.hours}):
            hs = [h for h in self.hours if h.start_s == a]
            asked = sum(h.asked_kw for h in hs)
            if asked > 1e-9:
                out.append(sum(h.delivered_kw for h in hs) / asked)
        return min(out, default=1.0)


# ---------------------------------------------------------------------- the file format

FILE_HELP = """A grid-events file is JSON: {"events": [EVENT, ...]}, each EVENT an object with
"id" (text), "site" (a site id) or "province" (every site of it), "start" and "end" (UTC,
ISO 8601 such as "2023-07-05T10:00:00Z", or epoch seconds), exactly one of "target_mw" (MW
to shed in every hour, over all the sites) or "target_pct" (per cent of each site's draw),
and "notice_min" (minutes of notice before the start; default 60)."""


def _time(v: Any, where: str) -> int:
    if isinstance(v, bool):
        raise InputError("expected a time", where=where, fix="ISO 8601 UTC or epoch seconds")
    if isinstance(v, int | float) and math.isfinite(v):
        return int(v)
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if d.tzinfo is None:
                raise InputError(
                    f"time {v!r} has no time zone", where=where, fix='end it with "Z" (UTC)'
                )
            return int(d.timestamp())
    raise InputError(f"cannot read time {v!r}", where=where, fix="ISO 8601 UTC or epoch seconds")


def event_from_dict(d: Any, net: Network, where: str) -> GridEvent:
    """One event of a grid-events file (see ``FILE_HELP``)."""
    if not isinstance(d, dict):
        raise InputError("an event must be an object", where=where, fix=FILE_HELP)
    known = {"id", "site", "province", "start", "end", "target_mw", "target_pct", "notice_min"}
    extra = sorted(set(d) - known)
    if extra:
        raise InputError(
            f"unknown field {extra[0]!r}", where=where, fix=f"use {', '.join(sorted(known))}"
        )
    try:
        sites = sites_of(net, d.get("site"), d.get("province"))
    except InputError as e:
        raise InputError(str(e.args[0]), where=f"{where}.{e.where}", fix=e.fix) from None
    if "start" not in d or "end" not in d:
        raise InputError("an event needs start and end", where=where, fix=FILE_HELP)

    def num(key: str) -> float | None:
        v = d.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InputError(f"{key} must be a number", where=f"{where}.{key}")
        return float(v)

    mw, pct, notice = num("target_mw"), num("target_pct"), num("notice_min")
    if notice is not None and notice < 0:
        raise InputError("notice_min must be >= 0", where=f"{where}.notice_min")
    return GridEvent(
        id=str(d.get("id", where)),
        site_ids=sites,
        start_s=_time(d["start"], f"{where}.start"),
        end_s=_time(d["end"], f"{where}.end"),
        notice_s=int((60.0 if notice is None else notice) * 60),
        target_kw=None if mw is None else mw * 1000.0,
        target_share=None if pct is None else pct / 100.0,
    )


def load_grid_events(path: Path, net: Network) -> tuple[GridEvent, ...]:
    """Read a grid-events file (``FILE_HELP``)."""
    text = read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"not JSON: {e}", source=str(path), fix=FILE_HELP) from None
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise InputError('no "events" list', source=str(path), fix=FILE_HELP)
    out = tuple(event_from_dict(e, net, f"events[{n}]") for n, e in enumerate(events))
    ids = [e.id for e in out]
    if len(set(ids)) != len(ids):
        raise InputError("two events share an id", source=str(path), where="id")
    return out


# ---------------------------------------------------------------------- the simulator side


class GridEvents:
    """The simulator's part for grid events (see the module docstring); ``Simulator`` holds
    one and calls it at each announcement, each planning request and each charge."""

    def __init__(self, sim: Simulator, events: tuple[GridEvent, ...]) -> None:
        self.sim = sim
        self.events = events
        self.caps: list[PowerCap] = []
        self.held: dict[str, Allocation] = {}  # where paused work resumes, held till then
        self.pending: dict[str, Any] = {}  # job id -> its placement after the pause
        self.slow: dict[str, tuple[int, int, float]] = {}  # job id -> (from, to, utilisation)
        self.answers: list[tuple[GridEvent, GridResponse, float, int]] = []
        self.replace_later: list[tuple[_Job, Affected]] = []

    # -------------------------------------------------------------- announcements

    def announce(self, index: int) -> None:
        """Answer event ``index`` now and carry the answer out."""
        from computenet.engine.grid import respond
        from computenet.sim.simulator import JobState

        sim, ev = self.sim, self.events[index]
        now = sim._q.now_s
        sites = set(ev.site_ids)
        work = [
            Work(
                replace(j.job, work_h=j.remaining_h),
                j.site_id,
                j.accelerator,
                j.count,
                j.start_s,
                j.end_s,
            )
            for jid, j in sorted(sim._jobs.items())
            if j.state in (JobState.RUNNING, JobState.RESERVED)
            and j.site_id in sites
            and j.accelerator is not None
            and j.start_s < ev.end_s
            and j.end_s > ev.start_s
            and jid not in self.slow
            and jid not in self.pending
        ]
        ids = {w.job.id for w in work}
        # The request for the work's jobs brings their datasets and replicas along.
        base = sim._request(now, [w.job for w in work])
        base = replace(
            base,
            jobs=(),
            capacity=None,
            running=tuple(a for a in sim._ledger.allocations() if a.job_id not in ids),
        )
        req = GridRequest(ev, base, tuple(work), frozenset(sim.network.site_ids))
        t0 = time.perf_counter()
        res = respond(req)
        took = time.perf_counter() - t0
        self.answers.append((ev, res, took, len(work)))
        self.caps.extend(res.caps)
        # Free what the answer frees first, then take what it takes: the answer is one
        # consistent plan, not a sequence (a job may move into room another one leaves).
        later = [a for a in res.affected if not self._free(sim._jobs[a.job_id], a)]
        for a in later:
            self._carry_out(sim._jobs[a.job_id], a, ev)
        for j, a in self.replace_later:
            assert a.placement is not None
            sim._apply(PlanReply("grid", (a.placement,)), {j.job.id})
        self.replace_later.clear()
        if sim._queue:
            sim._want_plan(sim._period())

    def _free(self, j: _Job, a: Affected) -> bool:
        """Give back a reserved job's accelerators when the answer places it again (then
        it is done here); ``False`` for the work ``_carry_out`` handles."""
        from computenet.sim.simulator import JobState

        if a.action is Action.POWER_CAPPED or j.state is not JobState.RESERVED:
            return False
        if a.placement is None:
            return True
        sim = self.sim
        sim._release(j)
        j.state = JobState.WAITING
        j.attempt += 1
        sim._queue[j.job.id] = None
        self.replace_later.append((j, a))
        return True

    def _carry_out(self, j: _Job, a: Affected, ev: GridEvent) -> None:
        from computenet.sim.simulator import JobState

        sim = self.sim
        if a.action is Action.POWER_CAPPED:
            self._slow_down(j, a, ev)
        elif j.state is JobState.RUNNING:
            stop = a.paused_at_s if a.paused_at_s is not None else sim._q.now_s
            p = a.placement
            assert p is not None
            sim._release(j)
            self._reserve(j, j.start_s, stop)
            j.end_s = stop
            j.attempt += 1
            sim._q.schedule(stop, _pause_kind(), j.job.id, j.attempt)
            held = Allocation(j.job.id, p.site_id, p.accelerator, p.count, p.start_s, p.end_s)
            sim._ledger.add(held)
            self.held[j.job.id] = held
            self.pending[j.job.id] = p

    def _reserve(self, j: _Job, start: int, end: int) -> None:
        sim = self.sim
        assert j.site_id is not None and j.accelerator is not None
        alloc = Allocation(j.job.id, j.site_id, j.accelerator, j.count, start, end)
        sim._pools[(j.site_id, j.accelerator)].allocations[j.job.id] = alloc
        sim._ledger.add(alloc)
        j.allocs = [alloc]  # what ``Simulator._release`` gives back

    def _slow_down(self, j: _Job, a: Affected, ev: GridEvent) -> None:
        from computenet.sim.simulator import EventKind, JobState

        sim = self.sim
        ext = a.new_end_s - a.old_end_s
        sim._release(j)
        self._reserve(j, j.start_s, j.end_s + ext)
        j.end_s += ext
        j.finish_at += ext  # its actual end (``Simulator._arm``) slips as much
        j.attempt += 1
        if j.state is JobState.RESERVED:
            sim._q.schedule(j.start_s, EventKind.START, j.job.id, j.attempt)
        sim._q.schedule(min(j.end_s, j.finish_at), EventKind.FINISH, j.job.id, j.attempt)
        assert a.utilisation is not None and a.slow_s is not None
        self.slow[j.job.id] = (a.slow_s[0], a.slow_s[1], a.utilisation)

    def on_pause(self, job_id: str, token: int) -> None:
        """Running work reaches its stop: it checkpoints (no work lost) and the rest of its
        run takes the place the answer held for it."""
        from computenet.sim.simulator import JobState

        sim = self.sim
        j = sim._jobs[job_id]
        held = self.held.pop(job_id, None)
        p = self.pending.pop(job_id, None)
        if held is not None:
            sim._ledger.remove(held)
        if j.attempt != token or j.state is not JobState.RUNNING or p is None:
            return  # an outage stopped it first; it was queued again then
        now = sim._q.now_s
        sim._charge(j, j.start_s, now, completed=False)
        j.remaining_h = max(0.0, j.remaining_h - (now - j.start_s) / 3600.0 * j.speed)
        sim._release(j)
        j.state = JobState.WAITING
        j.attempt += 1
        j.waiting_since_s = now
        sim._queue[job_id] = None
        sim._apply(PlanReply("grid", (p,)), {job_id})
        if job_id in sim._queue:
            sim._want_plan(sim._period())

    # -------------------------------------------------------------- planning and charging

    def power(self, now: int, end: int) -> tuple[tuple[PowerCap, ...], tuple[PowerDraw, ...]]:
        """The caps in force over ``[now, end)`` and the draws committed at their sites."""
        from computenet.sim.simulator import JobState

        caps = tuple(c for c in self.caps if c.end_s > now and c.start_s < end)
        if not caps:
            return (), ()
        sim = self.sim
        capped = {s for c in caps for s in c.sites}
        draws: list[PowerDraw] = []
        for (site_id, _), pool in sim._pools.items():
            if site_id not in capped:
                continue
            for a in pool.allocations.values():
                j = sim._jobs[a.job_id]
                if j.state in (JobState.RUNNING, JobState.RESERVED):
                    draws.extend(
                        PowerDraw(site_id, s0, s1, self.kw(j, site_id, a.accelerator, u), a.job_id)
                        for s0, s1, u in self.pieces(j, a.start_s, a.end_s)
                    )
        for a in self.held.values():
            if a.site_id in capped:
                j = sim._jobs[a.job_id]
                draws.append(
                    PowerDraw(
                        a.site_id,
                        a.start_s,
                        a.end_s,
                        self.kw(j, a.site_id, a.accelerator),
                        a.job_id,
                    )
                )
        return caps, tuple(draws)

    def kw(self, j: _Job, site_id: str, acc: str, util: float | None = None) -> float:
        """Facility kW of job ``j`` at ``site_id`` on ``acc`` (``util``: its busy share)."""
        net = self.sim.network
        site = net.site(site_id)
        host = next((p.host_power_w for p in site.pools if p.accelerator == acc), 0.0)
        u = j.job.utilisation if util is None else util
        return job_power_kw(net.accelerators.get(acc), j.job.work_kind, u, j.count, host) * site.pue

    def pieces(self, j: _Job, start: int, end: int) -> list[tuple[int, int, float]]:
        """``[start, end)`` split where the job runs power-capped, with its busy share."""
        u = j.job.utilisation
        slow = self.slow.get(j.job.id)
        if slow is None:
            return [(start, end, u)]
        a, b, low = slow
        cuts = [(start, min(end, a), u), (max(start, a), min(end, b), low), (max(start, b), end, u)]
        return [c for c in cuts if c[1] > c[0]]

    # -------------------------------------------------------------- metering

    def outcomes(self, segments: tuple[Segment, ...]) -> tuple[GridOutcome, ...]:
        out = []
        for ev, res, took, n in self.answers:
            by_site: dict[str, list[Segment]] = {s: [] for s in ev.site_ids}
            for g in segments:
                if g.site_id in by_site and g.start_s < ev.end_s and g.end_s > ev.start_s:
                    by_site[g.site_id].append(g)
            hours = []
            for h in res.hours:
                draws = _metered(by_site[h.site_id])
                metered = mean_kw(draws, h.start_s, h.end_s)
                hours.append(MeteredHour(h.site_id, h.start_s, h.baseline_kw, h.asked_kw, metered))
            peaks = tuple(
                peak_kw(_metered([g for x in c.sites for g in by_site[x]]), c.start_s, c.end_s)
                for c in res.caps
            )
            out.append(GridOutcome(ev, res, took, n, tuple(hours), peaks))
        return tuple(out)


def assign_flex(wl: Workload, shares: Sequence[float], seed: int) -> Workload:
    """The workload with a flexibility class drawn per job from ``shares`` (class 0-3),
    seeded: the same seed gives the same classes."""
    rng = np.random.default_rng(seed + 14)
    p = np.asarray(shares, dtype=np.float64)
    classes = rng.choice(len(p), size=len(wl.jobs), p=p / p.sum())
    jobs = tuple(replace(j, flex_class=int(c)) for j, c in zip(wl.jobs, classes, strict=True))
    return replace(wl, jobs=jobs)


def _metered(segments: list[Segment]) -> list[PowerDraw]:
    """Each segment as a constant draw: its energy over its length (facility kW)."""
    return [
        PowerDraw(g.site_id, g.start_s, g.end_s, g.energy_kwh * 3600 / (g.end_s - g.start_s))
        for g in segments
        if g.end_s > g.start_s
    ]


def _pause_kind() -> Any:
    from computenet.sim.events import EventKind

    return EventKind.GRID_PAUSE


def check_events(events: tuple[GridEvent, ...], net: Network, policy: str) -> None:
    from computenet.engine.power import POLICIES_WITH_POWER

    if events and policy not in POLICIES_WITH_POWER - {"bound"}:
        raise InputError(
            f"policy {policy!r} cannot replay grid events (it does not take power caps)",
            source="--grid-events",
            fix=f"use one of: {', '.join(sorted(POLICIES_WITH_POWER - {'bound'}))}",
        )
    for e in events:
        for s in e.site_ids:
            if s not in net.site_ids:
                raise InputError(f"grid event {e.id}: unknown site {s!r}", source="--grid-events")
        if e.end_s <= e.start_s:
            raise InputError(f"grid event {e.id}: end before start", source="--grid-events")
