"""What every policy shares: the job order, the tie-break, the one-job-at-a-time loop and
how a choice becomes a ``Placement`` with its breakdown and alternatives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from computenet.engine import explain
from computenet.engine.problem import INF, FArray, IntArray, JobView, Options, Problem, Rejection
from computenet.engine.types import (
    Deferral,
    Infeasible,
    Placement,
    PlanReply,
)
from computenet.model import TrainingJob


def job_order(job: TrainingJob) -> tuple[int, int, int, str]:
    """Sequential policies take jobs by priority (high first), then earliest start,
    deadline and id: a total order, so a replay is the same."""
    return (-job.priority, job.earliest_start_s, job.deadline_s, job.id)


def tol(m: float) -> float:
    """Values closer than this are ties (prefix sums leave rounding noise)."""
    return 1e-9 * max(1.0, abs(m))


def argmin_earliest(value: FArray) -> tuple[int, int] | None:
    """The (row, column) of the lowest value; ties go to the earliest column (start),
    then the lowest row (network order). ``None`` when nothing is finite."""
    if value.size == 0:
        return None
    m = float(value.min())
    if m == INF:
        return None
    mask = value <= m + tol(m)
    idx = int(np.argmax(mask.T))  # column-major: earliest start first
    rows = value.shape[0]
    return idx % rows, idx // rows


def start_matrix(pb: Problem, v: JobView, opts: Options) -> FArray:
    """Start offsets (s) of every option, ``inf`` where not allowed."""
    ks = np.arange(opts.k0, opts.k0 + opts.width, dtype=np.int64)[None, :]
    r = v.run_s[:, None]
    ns = -(-r // pb.slot)
    starts = np.where(opts.end_aligned, (ks + ns) * pb.slot - r, ks * pb.slot).astype(np.float64)
    return np.where(np.isfinite(opts.value), starts, INF)


def home_site(pb: Problem, v: JobView) -> int:
    """Index of the job's home site: the home of its first dataset, else the first site."""
    for info in v.datasets:
        return info.home
    return 0


def home_rows(pb: Problem, v: JobView) -> tuple[IntArray | None, str]:
    """Usable rows at the home site, and a note. ``None`` rows: the home site is down
    (wait for it). If the home site can never run the job, every row, with the reason."""
    h = home_site(pb, v)
    rows = np.flatnonzero(pb.net.pair_site[v.pairs] == h)
    if rows.size:
        return rows, ""
    if pb.down[h] and v.site_ok[h]:
        return None, f"home site {pb.net.sites[h].id} is down"
    return np.arange(len(v.pairs)), f"home site {pb.net.sites[h].id} cannot run it; "


@dataclass(frozen=True)
class Pick:
    """A policy's choice for one job: option row ``i``, column ``c`` and its value under the
    policy's own measure, with a phrase for the placement's reason."""

    i: int
    c: int
    value: float
    note: str = ""


@dataclass
class Decision:
    """What a policy decided for one job: the options it chose from, the rows it
    considered (``None``: all), its pick, or why it placed nothing (``unplaced``; when
    neither is given, ``explain.unplaced`` says why). ``row_best`` overrides, per row, the
    value and column the explanations compare against (default: each row's minimum)."""

    opts: Options
    pick: Pick | None = None
    rows: IntArray | None = None
    unplaced: Deferral | Infeasible | None = None
    row_best: tuple[FArray, IntArray] | None = None
    view: JobView | None = None  # when the options are of a subset of the job's pools


Chooser = Callable[[Problem, JobView], Decision]


def choose_at_home(
    pb: Problem,
    v: JobView,
    best: Callable[[Options, IntArray], tuple[int, int] | None],
    options: Callable[[Problem, JobView], Options] | None = None,
) -> Decision:
    """A decision among the home site's rows (``home_rows``) for the policies that keep a
    job at home; ``best(opts, rows)`` picks (row within ``rows``, column) or ``None``.
    ``options(pb, v)`` prices the starts (default ``pb.options(v)``; the same arrays)."""
    rows, note = home_rows(pb, v)
    if rows is not None and not pb.room_in_window(v, rows):
        # No room at home in the job's window (a backlog): the decision ``best`` would
        # reach on the priced starts (none fits), explained from the window alone.
        why = explain.unplaced_by_time(pb, v, pb.time_ok_any(v, rows), rows)
        return Decision(pb.no_options(v), rows=rows, unplaced=why)
    opts = pb.options(v) if options is None else options(pb, v)
    if rows is None:
        return Decision(opts, unplaced=Infeasible(v.job.id, "down", note))
    found = best(opts, rows)
    if found is None:
        return Decision(opts, rows=rows)
    r, c = found
    i = int(rows[r])
    return Decision(opts, Pick(i, c, float(opts.value[i, c]), note), rows=rows)


def run_sequential(
    pb: Problem,
    policy: str,
    choose: Chooser,
    reason: explain.Reason,
) -> PlanReply:
    """Place jobs one at a time in ``job_order``, each seeing the capacity the earlier ones
    took."""
    placements: list[Placement] = []
    deferred: list[Deferral] = []
    infeasible: list[Infeasible] = []
    order = sorted(range(len(pb.views)), key=lambda n: job_order(pb.req.jobs[n]))
    for n in order:
        decide(pb, n, policy, choose, reason, placements, deferred, infeasible)
    return reply(pb, policy, placements, deferred, infeasible)


def decide(
    pb: Problem,
    n: int,
    policy: str,
    choose: Chooser,
    reason: explain.Reason,
    placements: list[Placement],
    deferred: list[Deferral],
    infeasible: list[Infeasible],
) -> None:
    """Job ``n`` through ``choose``: its placement (committed to the capacity), deferral or
    infeasibility, added to its list."""
    v = pb.views[n]
    if isinstance(v, Rejection):
        infeasible.append(Infeasible(pb.req.jobs[n].id, v.constraint, v.reason))
        return
    d = choose(pb, v)
    v = d.view or v
    if d.pick is None:
        out = d.unplaced or explain.unplaced(pb, v, d.opts, d.rows)
        if isinstance(out, Deferral):
            deferred.append(out)
        else:
            infeasible.append(out)
        return
    placements.append(place(pb, v, d, policy, reason))


def place(pb: Problem, v: JobView, d: Decision, policy: str, reason: explain.Reason) -> Placement:
    """Commit ``d.pick`` to the capacity and describe it."""
    opts, pick = d.opts, d.pick
    v = d.view or v
    assert pick is not None
    i, c = pick.i, pick.c
    k = opts.k0 + c
    so = pb.start_off(v, i, k, bool(opts.end_aligned[i, c]))
    ns = pb.footprint(v, i)
    p = int(v.pairs[i])
    pb.commit(p, k, ns, v.count)
    pb.commit_power(p, k, ns, float(v.kw[i]))
    bd = pb.breakdown(v, i, so)
    site = pb.site_of(v, i)
    alts = explain.alternatives(pb, v, opts, i, c, so, pick.value, reason, d.rows, d.row_best)
    start = pb.now + so
    why = explain.placement_reason(policy, site.id, so, bd, pick.note)
    return Placement(
        v.job.id,
        site.id,
        pb.acc_of(v, i),
        v.count,
        start,
        start + int(v.run_s[i]),
        bd,
        pb.transfers(v, i),
        alts,
        why,
    )


def reply(
    pb: Problem,
    policy: str,
    placements: list[Placement],
    deferred: list[Deferral],
    infeasible: list[Infeasible],
    lower_bound_cny: float | None = None,
) -> PlanReply:
    placements.sort(key=lambda p: (p.start_s, p.job_id))
    deferred.sort(key=lambda d: d.job_id)
    infeasible.sort(key=lambda d: d.job_id)
    return PlanReply(
        policy,
        tuple(placements),
        tuple(deferred),
        tuple(infeasible),
        objective_cny=float(sum(p.breakdown.objective_cny for p in placements)),
        cost_cny=float(sum(p.breakdown.cost_cny for p in placements)),
        carbon_kg=float(sum(p.breakdown.carbon_kg for p in placements)),
        lower_bound_cny=lower_bound_cny,
    )
