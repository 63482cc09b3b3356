"""Why a job went where it went, what it beat, and why a job could not be placed.

Alternatives are built from the same option matrix the policy chose from, so a reason such
as "costs 312 CNY more" is the difference the policy actually saw. At most three are kept:
the two best other options (the same site started earlier, or other sites) and the most
telling rejected one (a data rule, a missed deadline, no capacity, a site that is down).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from computenet.engine import reasons as rs
from computenet.engine.problem import INF, FArray, IntArray, JobView, Options, Problem
from computenet.engine.reasons import Code, Role
from computenet.engine.types import Alternative, Breakdown, Deferral, Infeasible

Reason = Callable[[float, float, int, int], str]
"""``reason(alt_value, chosen_value, alt_start_off, chosen_start_off)`` -> why it lost."""


def when(off_s: int) -> str:
    """A start offset (seconds after now) in words."""
    return "now" if off_s <= 0 else f"in {off_s / 3600:.1f} h"


def placement_reason(
    policy: str, site_id: str, start_off: int, bd: Breakdown, note: str = ""
) -> str:
    """A placement's one-line reason: where, when, and its objective, cost and carbon."""
    return (
        f"{policy}: {note}{site_id} {when(start_off)}, objective {bd.objective_cny:,.2f} CNY "
        f"(cost {bd.cost_cny:,.2f} CNY, {bd.carbon_kg:,.2f} kg CO2)"
    )


def costs_more() -> Reason:
    """Reasons in CNY of objective: "costs 312.00 CNY more", or a tie lost on order."""

    def reason(alt: float, chosen: float, alt_start: int, chosen_start: int) -> str:
        d = alt - chosen
        if d <= 1e-9 * max(1.0, abs(chosen)):
            return f"ties on CNY; starts {when(alt_start)}, later or further down the order"
        return f"costs {d:,.2f} CNY more"

    return reason


def costs_at_least(site_id: str, more_cny: float, policy: str) -> Alternative:
    """A site passed over unpriced: a lower bound on its objective is ``more_cny`` above
    the chosen one's (the compiled greedy's pruning)."""
    why = rs.reason(
        Code.COST,
        Role.REJECTED,
        policy=policy,
        site_id=site_id,
        objective_diff_cny=more_cny,
        at_least=True,
    )
    return Alternative(site_id, None, None, why.message, why)


def alternatives(
    pb: Problem,
    v: JobView,
    opts: Options,
    i: int,
    c: int,
    start_off: int,
    value: float,
    reason: Reason,
    rows: IntArray | None = None,
    row_best: tuple[FArray, IntArray] | None = None,
) -> tuple[Alternative, ...]:
    """Up to three rejected options of ``v`` with the reason each lost (see module doc)."""
    now, net = pb.now, pb.net
    out: list[Alternative] = []
    chosen_site = int(net.pair_site[int(v.pairs[i])])
    val = opts.value
    finite = np.isfinite(val)
    # 1. The same site, started earlier (the cost of not waiting).
    row = val[i, :c]
    if row.size:
        fin = finite[i, :c]
        if fin.any():
            ce = int(fin.argmax())  # the first finite one
            so = pb.start_off(v, i, opts.k0 + ce, bool(opts.end_aligned[i, ce]))
            if so < start_off:
                out.append(
                    Alternative(
                        net.sites[chosen_site].id,
                        now + so,
                        float(row[ce]),
                        f"starting {when(so)}: " + reason(float(row[ce]), value, so, start_off),
                    )
                )
    # 2. Other sites, best first.
    if val.shape[1]:
        if row_best is None:
            rowmin, rowcol = val.min(axis=1), val.argmin(axis=1)
        else:
            rowmin, rowcol = row_best
        if rows is None:
            allowed = None
            order = rowmin.argsort(kind="stable")
        else:
            allowed = _mask(len(v.pairs), rows)
            order = np.argsort(np.where(allowed, rowmin, INF), kind="stable")
        seen = {chosen_site}
        for r in order[:6].tolist():
            if (
                len(out) >= 2
                or not math.isfinite(rowmin[r])
                or (allowed is not None and not allowed[r])
            ):
                break
            s = int(net.pair_site[int(v.pairs[r])])
            if s in seen:
                continue
            seen.add(s)
            cr = int(rowcol[r])
            so = pb.start_off(v, r, opts.k0 + cr, bool(opts.end_aligned[r, cr]))
            out.append(
                Alternative(
                    net.sites[s].id,
                    now + so,
                    float(rowmin[r]),
                    reason(float(rowmin[r]), value, so, start_off),
                )
            )
    # 3. The most telling rejection.
    rej = _rejected(pb, v, opts, chosen_site, finite)
    if rej is not None:
        out.append(rej)
    return tuple(out[:3])


def _mask(n: int, rows: IntArray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[rows] = True
    return m


def _rejected(
    pb: Problem, v: JobView, opts: Options, chosen_site: int, finite: np.ndarray
) -> Alternative | None:
    """The most telling rejected option (``finite``: where ``opts.value`` is finite)."""
    net = pb.net
    if not v.site_ok.all():
        s = int(np.argmin(v.site_ok))  # the first site the data may not go to
        return Alternative(net.sites[s].id, None, None, pb.site_rule_reason(v.datasets, s))
    if opts.width == 0:
        return None
    time_any = opts.time_ok.any(axis=1)
    if not time_any.all():
        r = int(np.argmin(time_any))  # the first pair with no start in time
        late = int(v.ready[r] + v.run_s[r] - v.deadline_off)
        s = int(net.pair_site[int(v.pairs[r])])
        if s != chosen_site and late > 0:
            return Alternative(
                net.sites[s].id, None, None, f"misses deadline by {late / 3600:.1f} h"
            )
    full = time_any & ~finite.any(axis=1)
    if full.any():
        r = int(full.argmax())  # the first pair with starts in time but no room
        s = int(net.pair_site[int(v.pairs[r])])
        acc = net.pair_acc[int(v.pairs[r])]
        if s != chosen_site:
            return Alternative(
                net.sites[s].id,
                None,
                None,
                f"no room for {v.count} x {acc} before the deadline or horizon",
            )
    if pb.req.down_sites and pb.down.any():
        return Alternative(net.sites[int(np.argmax(pb.down))].id, None, None, "site is down")
    return None


def unplaced(
    pb: Problem, v: JobView, opts: Options, rows: IntArray | None = None
) -> Deferral | Infeasible:
    """Why ``v`` got no start among ``rows`` (default: every usable pair)."""
    sel = np.arange(len(v.pairs)) if rows is None else rows
    return unplaced_by_time(pb, v, bool(opts.width and opts.time_ok[sel].any()), rows)


def pairs_in_words(pb: Problem, pairs: IntArray) -> tuple[str, tuple[str, ...]]:
    """The accelerator types (in words) and the sites (sorted ids) of ``pairs``."""
    acc = ", ".join(sorted({pb.net.pair_acc[int(p)] for p in pairs}))
    sites = tuple(sorted({pb.net.sites[int(pb.net.pair_site[int(p)])].id for p in pairs}))
    return acc, sites


def no_room(
    job_id: str,
    count: int,
    acc: str,
    sites: tuple[str, ...],
    horizon_end_s: int,
    *,
    wait: bool,
) -> Deferral | Infeasible:
    """A job with starts allowed by time but no room at any of ``sites``: deferred when
    its deadline allows waiting past the horizon (``wait``), else infeasible for
    capacity."""
    facts: dict[str, rs.Fact] = {
        "count": count,
        "accelerator": acc,
        "sites": sites,
        "horizon_h": horizon_end_s / 3600,
    }
    if wait:
        why = rs.reason(Code.CAPACITY, Role.DEFERRED, **facts)
        return Deferral(job_id, why.message, why)
    why = rs.reason(Code.CAPACITY, Role.INFEASIBLE, **facts)
    return Infeasible(job_id, "capacity", why.message, why)


def unplaced_by_time(
    pb: Problem, v: JobView, time_ok: bool, rows: IntArray | None = None
) -> Deferral | Infeasible:
    """``unplaced`` given whether some start among ``rows`` is allowed by time alone
    (``Problem.time_ok_any`` says so without pricing the starts)."""
    job = v.job
    sel = np.arange(len(v.pairs)) if rows is None else rows
    horizon_end = pb.T * pb.slot
    if time_ok:
        latest = int(np.max(v.deadline_off - v.run_s[sel]))
        acc, sites = pairs_in_words(pb, v.pairs[sel])
        return no_room(job.id, v.count, acc, sites, horizon_end, wait=latest >= horizon_end)
    if v.earliest_off >= horizon_end:
        why = rs.reason(
            Code.HORIZON,
            Role.DEFERRED,
            earliest_in_h=v.earliest_off / 3600,
            horizon_h=horizon_end / 3600,
        )
        return Deferral(job.id, why.message, why)
    finish = v.ready[sel] + v.run_s[sel]
    late = int(np.min(finish) - v.deadline_off)
    if late > 0:
        why = rs.reason(
            Code.DEADLINE,
            Role.INFEASIBLE,
            late_h=late / 3600,
            run_h=int(v.run_s[sel].min()) / 3600,
        )
        return Infeasible(job.id, "deadline", why.message, why)
    if int(np.min(v.ready[sel])) >= horizon_end:
        why = rs.reason(Code.HORIZON, Role.INFEASIBLE, horizon_h=horizon_end / 3600)
        return Infeasible(job.id, "horizon", why.message, why)
    why = rs.reason(Code.DEADLINE, Role.INFEASIBLE)
    return Infeasible(job.id, "deadline", why.message, why)
