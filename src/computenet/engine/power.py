"""Power as a constraint: a site's available power per hour, beside its accelerator counts.

A site may draw at most a given facility power (kW at the grid connection: accelerators and
hosts x PUE) over a time window: from its supply contract, or from a grid event asking it to
shed load (``engine.grid``). The request carries the caps (``PlanRequest.power_caps``) and
the power already committed at capped sites (``PlanRequest.power_drawn``: running work and
placements the caller keeps), so the engine stays pure.

This module keeps a *power ledger* beside the accelerator ledger of ``engine.capacity``:
``power_free[s, k]``, the kW site ``s`` may still draw in internal slot ``k`` (``inf`` where
no cap applies). A cap that touches any part of a slot holds over the whole slot, and a draw
that touches any part of a slot counts in the whole slot, so a plan that fits slot by slot
holds the cap second by second. A job's draw at a pair is ``model.job_power_kw`` (the
measured ``PowerProfile`` of its accelerator type and its ``WorkKind``) x the site's PUE:
the same figure the objective prices.

The policies that place one job at a time through ``StartOptions.options`` (``greedy`` on
its one-job path, ``fifo-home``, ``cheapest-now``, ``carbon-now``, ``wait-awhile``) check it
where they check accelerators and commit to it where they commit accelerators. ``bound``
ignores caps (a relaxation stays a lower bound); ``milp`` refuses a request with caps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from computenet.engine.arrays import BArray, FArray, IntArray, NetworkArrays
from computenet.errors import InputError

POLICIES_WITH_POWER = frozenset(
    {"greedy", "fifo-home", "cheapest-now", "carbon-now", "wait-awhile", "bound"}
)
"""Policies that take ``power_caps`` (``bound`` by ignoring them, which keeps it a bound)."""


@dataclass(frozen=True)
class PowerCap:
    """Site ``site_id`` may draw at most ``limit_kw`` of facility power (kW, IT x PUE) over
    ``[start_s, end_s)``. With ``group`` (site ids), the cap holds on the sum of those
    sites' draws (a hub or a province answering one grid event) and ``site_id`` only names
    it. ``reason`` says where the cap comes from (a contract, a grid event id)."""

    site_id: str
    start_s: int
    end_s: int
    limit_kw: float
    reason: str = ""
    group: tuple[str, ...] = ()

    @property
    def sites(self) -> tuple[str, ...]:
        """The sites whose draws the cap holds."""
        return self.group or (self.site_id,)


@dataclass(frozen=True)
class PowerDraw:
    """Facility power (kW, IT x PUE) already committed at ``site_id`` over
    ``[start_s, end_s)``: a running job or a placement the caller keeps."""

    site_id: str
    start_s: int
    end_s: int
    kw: float
    job_id: str = ""


def check_caps(
    caps: tuple[PowerCap, ...], draws: tuple[PowerDraw, ...], net: NetworkArrays
) -> None:
    """Raise ``InputError`` naming the field for a cap or draw that cannot be read."""
    for n, c in enumerate(caps):
        where = f"power_caps[{n}]"
        unknown = [s for s in c.sites if s not in net.site_index]
        if unknown:
            raise InputError(
                f"unknown site {unknown[0]!r}",
                source="plan request",
                where=f"{where}.site_id",
                fix=f"use one of: {', '.join(net.site_index)}",
            )
        if not math.isfinite(c.limit_kw) or c.limit_kw < 0:
            raise InputError(
                f"limit_kw must be a number >= 0, got {c.limit_kw!r}",
                source="plan request",
                where=f"{where}.limit_kw",
            )
        if c.end_s <= c.start_s:
            raise InputError(
                "end_s must be after start_s", source="plan request", where=f"{where}.end_s"
            )
    for n, d in enumerate(draws):
        if not math.isfinite(d.kw) or d.kw < 0:
            raise InputError(
                f"kw must be a number >= 0, got {d.kw!r}",
                source="plan request",
                where=f"power_drawn[{n}].kw",
            )


def slot_span(start_s: int, end_s: int, now_s: int, slot_s: int, n_slots: int) -> tuple[int, int]:
    """The internal slots ``[k0, k1)`` that ``[start_s, end_s)`` touches, clipped to the grid."""
    k0 = max(0, (start_s - now_s) // slot_s)
    k1 = min(n_slots, -(-(end_s - now_s) // slot_s))
    return int(k0), int(max(k0, k1))


def power_grid(
    caps: tuple[PowerCap, ...],
    draws: tuple[PowerDraw, ...],
    net: NetworkArrays,
    now_s: int,
    slot_s: int,
    n_slots: int,
) -> tuple[FArray, tuple[tuple[int, ...], ...]]:
    """``power_free[r, k]``: kW row ``r`` may still draw in slot ``k`` (``inf``: no cap),
    one row per site and one per group of sites a cap holds together; and per site the
    rows its draws count in."""
    groups = sorted({c.group for c in caps if c.group})
    rows_of: list[list[int]] = [[s] for s in range(net.n_sites)]
    for g, sites in enumerate(groups):
        for sid in sites:
            rows_of[net.site_index[sid]].append(net.n_sites + g)
    row: dict[tuple[str, ...], int] = {
        (c.site_id,): net.site_index[c.site_id] for c in caps if not c.group
    }
    row |= {g: net.n_sites + n for n, g in enumerate(groups)}
    free = np.full((net.n_sites + len(groups), n_slots), math.inf)
    for c in caps:
        r = row[c.group or (c.site_id,)]
        k0, k1 = slot_span(c.start_s, c.end_s, now_s, slot_s, n_slots)
        np.minimum(free[r, k0:k1], c.limit_kw, out=free[r, k0:k1])
    capped = {s for c in caps for s in c.sites}
    for d in draws:
        if d.site_id not in capped:
            continue  # only the draw under a cap matters
        k0, k1 = slot_span(d.start_s, d.end_s, now_s, slot_s, n_slots)
        for r in rows_of[net.site_index[d.site_id]]:
            free[r, k0:k1] -= d.kw
    return free, tuple(tuple(r) for r in rows_of)


class PowerGrid:
    """The power part of a compiled request (see the module docstring); ``power_free`` is
    ``None`` when the request has no caps, and then nothing here costs anything."""

    net: NetworkArrays
    now: int
    slot: int
    T_ext: int
    power_free: FArray | None
    power_rows: tuple[tuple[int, ...], ...]
    power_capped: BArray  # per site: some cap holds its draw

    def _power(self, caps: tuple[PowerCap, ...], draws: tuple[PowerDraw, ...]) -> None:
        if not caps:
            self.power_free = None
            return
        check_caps(caps, draws, self.net)
        self.power_free, self.power_rows = power_grid(
            caps, draws, self.net, self.now, self.slot, self.T_ext
        )
        finite: BArray = np.asarray(np.isfinite(self.power_free).any(axis=1))
        self.power_capped = np.array([finite[list(r)].any() for r in self.power_rows])

    def facility_kw(self, kw: FArray, pairs: IntArray) -> FArray:
        """Facility power (kW) of draws ``kw`` (before PUE) at ``pairs``."""
        return np.asarray(kw * self.net.pue[self.net.pair_site[pairs]], dtype=np.float64)

    def power_fits(self, pairs: IntArray, kw: FArray, a: int, b: int, ns: IntArray | int) -> BArray:
        """Per row (pair ``pairs[i]`` drawing ``kw[i]`` kW before PUE, for ``ns`` slots) and
        start slot ``a <= k < b``: whether the site's power left covers the draw in every
        slot of the run. All true when the request has no caps."""
        out = np.ones((len(pairs), b - a), dtype=bool)
        free = self.power_free
        if free is None:
            return out
        sites = self.net.pair_site[pairs]
        need = self.facility_kw(kw, pairs)
        nss = np.broadcast_to(np.asarray(ns, dtype=np.int64), (len(pairs),))
        for i in np.flatnonzero(self.power_capped[sites]):
            w = int(nss[i])
            x = free[list(self.power_rows[int(sites[i])]), a : b + w - 1].min(axis=0)
            if not np.isfinite(x).any():
                continue
            short = x < need[i] - 1e-9
            cs = np.zeros(len(short) + 1, dtype=np.int64)
            np.cumsum(short, out=cs[1:])
            out[i] = cs[w : w + b - a] == cs[: b - a]
        return out

    def commit_power(self, p: int, k: int, ns: int, kw: float) -> None:
        """Take ``kw`` (before PUE) at pair ``p``'s site over slots ``[k, k + ns)``, in its
        row and its groups' rows."""
        if self.power_free is None:
            return
        s = int(self.net.pair_site[p])
        for r in self.power_rows[s]:
            self.power_free[r, k : k + ns] -= kw * float(self.net.pue[s])
