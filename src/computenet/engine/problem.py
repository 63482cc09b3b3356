"""A ``PlanRequest`` compiled into arrays: the shared feasibility and objective code.

Every policy works on the same compiled ``Problem``, put together from one module per
concern, each readable alone:

* ``engine.arrays``: the network's static arrays, one row per *pair* (site, accelerator
  type): capacity, power, host power, rental price; shared by every request on the network;
* ``engine.weights``: signal weights, the value of one kW per pair and slot under a metric,
  and their prefix sums (the objective of a run over any start is a difference of two);
* ``engine.capacity``: the capacity ledger and ``free[p, k]``, accelerators of pair ``p``
  free during slot ``k`` after the running allocations and down sites;
* ``engine.jobs``: per job a ``JobView`` (the pairs it may use, its run time, when its data
  can be there, its power and fixed costs) or a ``Rejection``;
* ``engine.options``: every start of a job with its value (start- or end-aligned).

This module sets the request's time grid (below), checks the request, and prices a chosen
start (``breakdown``, ``transfers``).

Internally the engine plans on sub-slots of ``FINE_SLOT_S`` (15 min) when the request's
slots are whole multiples of it (hourly requests): the horizon is the same, but short jobs
hold capacity for a quarter hour rather than an hour and may start on any quarter. Below,
"slot" means these internal slots.

Units: times in seconds, ``slot_s`` seconds per slot, money CNY, power kW, energy kWh,
carbon kg (grams in signals).
"""

from __future__ import annotations

import math

import numpy as np

from computenet.engine.arrays import (
    INF,
    BArray,
    FArray,
    IntArray,
    NetworkArrays,
    allowed_sites,
    memo,
    network_arrays,
    slowest_speed,
)
from computenet.engine.capacity import CapacityLedger
from computenet.engine.jobs import DatasetInfo, JobView, LazyViews, Rejection, subset
from computenet.engine.options import ALIGN_TOL, Choice, Options, StartOptions
from computenet.engine.power import POLICIES_WITH_POWER
from computenet.engine.types import Breakdown, PlanRequest, Transfer
from computenet.engine.weights import interp
from computenet.errors import InputError
from computenet.model import Site

__all__ = [
    "ALIGN_TOL",
    "FINE_SLOT_S",
    "INF",
    "BArray",
    "CapacityLedger",
    "Choice",
    "DatasetInfo",
    "FArray",
    "IntArray",
    "JobView",
    "NetworkArrays",
    "Options",
    "Problem",
    "Rejection",
    "allowed_sites",
    "network_arrays",
    "subset",
]

FINE_SLOT_S = 900
"""Internal slot length (s) when the request's slot is a multiple of it."""


class Problem(StartOptions):
    """A compiled ``PlanRequest``; see the module docstring."""

    def __init__(self, req: PlanRequest, *, fine: bool = True) -> None:
        if req.slot_s < 1:
            raise InputError("slot_s must be at least 1 s", source="plan request")
        if req.horizon_slots < 1:
            raise InputError("horizon_slots must be at least 1", source="plan request")
        for name in ("lookahead_s", "milp_node_limit", "lp_iteration_limit", "bound_rounds"):
            if not isinstance(getattr(req, name), int) or getattr(req, name) < 1:
                raise InputError(
                    f"{name} must be a whole number >= 1, got {getattr(req, name)!r}",
                    source="plan request",
                    where=name,
                )
        if not math.isfinite(req.carbon_price_cny_per_t) or req.carbon_price_cny_per_t < 0:
            raise InputError(
                "carbon price must be a number >= 0", source="plan request", where="carbon price"
            )
        if req.capacity is not None and req.running:
            raise InputError(
                "a request has both running allocations and a capacity ledger",
                source="plan request",
                fix="add the running allocations to the ledger and leave running empty",
            )
        self.req = req
        self.net = network_arrays(req.network)
        self.now = int(req.now_s)
        # Plan on quarter-hour sub-slots when the request's slots are whole hours (or
        # longer multiples of 15 min): a 10-minute job then holds its accelerators for
        # 15 minutes, not an hour, and may start on any quarter. The horizon is the same.
        self.refine = req.slot_s // FINE_SLOT_S if fine and req.slot_s % FINE_SLOT_S == 0 else 1
        self.slot = int(req.slot_s) // self.refine
        self.slot_h = self.slot / 3600.0
        # Starts are planned no further ahead than the look-ahead, whatever the horizon
        # asked for (a horizon up to a deadline in 2099 would take gigabytes).
        self.T = min(int(req.horizon_slots) * self.refine, max(1, req.lookahead_s // self.slot))
        self.cp = float(req.carbon_price_cny_per_t)
        if not 0.0 <= req.home_reserve < 1.0:
            raise InputError(
                f"home_reserve must be in [0, 1), got {req.home_reserve}",
                source="plan request",
                where="home_reserve",
            )
        net = self.net
        # Accelerators of each pair that only work homed at its site may take.
        self.reserve = memo(
            net,
            ("reserve", req.home_reserve),
            lambda: np.ceil(req.home_reserve * net.cap - 1e-9).astype(np.int64),
        )
        self.down = memo(
            net,
            ("down", frozenset(req.down_sites)),
            lambda: np.array([s.id in req.down_sites for s in net.sites], dtype=bool),
        )
        self._datasets = {d.id: d for d in req.datasets}
        self._ds_memo: dict[str, DatasetInfo | Rejection] = {}
        self._speed_memo: dict[tuple[tuple[str, float], ...], FArray] = {}
        ids = [j.id for j in req.jobs]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise InputError(f"duplicate job id(s): {', '.join(dup)}", source="plan request")
        self._view_cache: dict[int, JobView | Rejection] = {}
        # Horizon plus the longest run any job could have (at its slowest usable speed).
        slowest = memo(net, ("slowest",), lambda: slowest_speed(net.default_speed))
        max_ns = 1
        for j in req.jobs:
            sp = [x for x in j.accelerator_speed.values() if x > 0] if j.accelerator_speed else []
            s = min(sp) if sp else slowest
            if math.isfinite(j.work_h) and j.work_h > 0 and s > 0:
                max_ns = max(max_ns, math.ceil(j.work_h * 3600 / s / self.slot))
        self.T_ext = self.T + max_ns + 2
        self._signals()
        self._capacity()
        if req.power_caps and req.policy not in POLICIES_WITH_POWER:
            raise InputError(
                f"policy {req.policy!r} does not take power caps",
                source="plan request",
                where="power_caps",
                fix=f"use one of: {', '.join(sorted(POLICIES_WITH_POWER))}",
            )
        self._power(tuple(req.power_caps), tuple(req.power_drawn))

    @property
    def views(self) -> LazyViews:
        """Each job's ``JobView`` (or ``Rejection``), in request order, built when first
        read."""
        return LazyViews(self)

    # ------------------------------------------------------------------ results

    def breakdown(self, v: JobView, i: int, start_off: int) -> Breakdown:
        """Cost and carbon of running ``v`` on usable pair ``i`` from ``now + start_off``."""
        p = int(v.pairs[i])
        s = int(self.net.pair_site[p])
        r = int(v.run_s[i])
        x0 = start_off / self.slot
        x1 = (start_off + r) / self.slot
        kwh_per_h = float(v.kw[i]) * float(self.net.pue[s])
        pc, cc = self._site_cums(s, x1)
        energy_cost = kwh_per_h * (interp(pc, x1) - interp(pc, x0))
        carbon_kg = kwh_per_h * (interp(cc, x1) - interp(cc, x0)) / 1000
        compute = float(v.fixed[i] - v.transfer_cny[i])
        transfer = float(v.transfer_cny[i])
        obj = energy_cost + compute + transfer + self.cp * carbon_kg / 1000.0
        return Breakdown(kwh_per_h * r / 3600.0, energy_cost, compute, transfer, carbon_kg, obj)

    def transfers(self, v: JobView, i: int) -> tuple[Transfer, ...]:
        s = int(self.net.pair_site[int(v.pairs[i])])
        out = []
        for info in v.datasets:
            src = int(info.source[s])
            if src == s:  # a copy is already at the site
                continue
            out.append(
                Transfer(
                    info.dataset.id,
                    self.net.sites[src].id,
                    self.net.sites[s].id,
                    info.dataset.size_gb,
                    self.now,
                    self.now + int(info.time_s[s]),
                    float(info.cost[s]),
                )
            )
        return tuple(out)

    def site_of(self, v: JobView, i: int) -> Site:
        return self.net.sites[int(self.net.pair_site[int(v.pairs[i])])]

    def acc_of(self, v: JobView, i: int) -> str:
        return self.net.pair_acc[int(v.pairs[i])]
