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
    ``[start_s, end_s)``. ``reason`` says where the cap comes from (a contract, a grid event
    id)."""

    site_id: str
    start_s: int
    end_s: int
    limit_kw: float
    reason: str = ""


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
        if c.site_id not in net.site_index:
            raise InputError(
                f"unknown site {c.site_id!r}",
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
) -> FArray:
    """``power_free[s, k]``: kW site ``s`` may still draw in slot ``k`` (``inf``: no cap)."""
    free = np.full((net.n_sites, n_slots), math.inf)
    for c in caps:
        s = net.site_index[c.site_id]
        k0, k1 = slot_span(c.start_s, c.end_s, now_s, slot_s, n_slots)
        np.minimum(free[s, k0:k1], c.limit_kw, out=free[s, k0:k1])
    capped = set(net.site_index[c.site_id] for c in caps)
    for d in draws:
        s = net.site_index.get(d.site_id, -1)
        if s not in capped:
            continue  # only the draw under a cap matters
        k0, k1 = slot_span(d.start_s, d.end_s, now_s, slot_s, n_slots)
        free[s, k0:k1] -= d.kw
    return free


class PowerGrid:
    """The power part of a compiled request (see the module docstring); ``power_free`` is
    ``None`` when the request has no caps, and then nothing here costs anything."""

    net: NetworkArrays
    now: int
    slot: int
    T_ext: int
    power_free: FArray | None

    def _power(self, caps: tuple[PowerCap, ...], draws: tuple[PowerDraw, ...]) -> None:
        if not caps:
            self.power_free = None
            return
        check_caps(caps, draws, self.net)
        self.power_free = power_grid(caps, draws, self.net, self.now, self.slot, self.T_ext)

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
        for i in np.flatnonzero(np.isfinite(free[sites, a : b + int(nss.max()) - 1]).any(axis=1)):
            w = int(nss[i])
            short = free[sites[i], a : b + w - 1] < need[i] - 1e-9
            cs = np.zeros(len(short) + 1, dtype=np.int64)
            np.cumsum(short, out=cs[1:])
            out[i] = cs[w : w + b - a] == cs[: b - a]
        return out

    def commit_power(self, p: int, k: int, ns: int, kw: float) -> None:
        """Take ``kw`` (before PUE) at pair ``p``'s site over slots ``[k, k + ns)``."""
        if self.power_free is None:
            return
        s = int(self.net.pair_site[p])
        self.power_free[s, k : k + ns] -= kw * float(self.net.pue[s])
