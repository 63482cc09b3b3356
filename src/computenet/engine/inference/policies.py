"""Placement policies: each one turns a ``Problem`` into the coefficients the solvers use.

* ``cost-carbon`` (the new policy): least cost + carbon priced at the carbon price, every
  region within its latency target.
* ``casper``: least carbon under the latency target, cost ignored (after CASPER, carbon-aware
  geographic load balancing under a latency limit).
* ``carbon-only``: the cleanest sites, latency ignored (data rules still hold: they are law).
* ``latency-only``: each region's nearest sites that meet its target (round trip first,
  cost ignored), replicas fixed at the horizon's peak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from computenet.engine.inference.problem import BoolArray, Problem
from computenet.errors import UnknownNameError
from computenet.model import FloatArray

UNSERVED_CNY_PER_RPS_H = 1.0e6
"""Penalty per request/s left unserved for an hour: far above any placement's cost."""


@dataclass(frozen=True)
class Costs:
    """Objective coefficients: per replica-hour ``fixed`` (J x T), per request/s served for
    an hour ``marginal`` (J x T) plus ``route`` (R x J), per warm-up ``warm`` (J x T); the
    pairs a region may use (``mask``, R x J); ``fixed_replicas``: keep each slot's peak
    replica count over the whole horizon."""

    fixed: FloatArray
    marginal: FloatArray
    route: FloatArray
    warm: FloatArray
    mask: BoolArray
    fixed_replicas: bool = False
    unit: str = "CNY"


def _priced(p: Problem, per_kwh: FloatArray, rent: bool, transfer: bool, unit: str) -> Costs:
    return Costs(
        fixed=p.kwh_replica_h[:, None] * per_kwh
        + (p.compute_cny_per_replica_h[:, None] if rent else 0.0),
        marginal=p.kwh_per_rps_h[:, None] * per_kwh,
        route=np.zeros_like(p.rtt_ms),
        warm=p.kwh_warmup[:, None] * per_kwh + (p.warm_transfer_cny[:, None] if transfer else 0.0),
        mask=p.feasible,
        unit=unit,
    )


def cost_carbon(p: Problem, carbon_price_cny_per_t: float) -> Costs:
    per_kwh = p.price + carbon_price_cny_per_t * p.carbon / 1.0e6
    return _priced(p, per_kwh, rent=True, transfer=True, unit="CNY")


def casper(p: Problem, carbon_price_cny_per_t: float) -> Costs:
    return _priced(p, p.carbon / 1000.0, rent=False, transfer=False, unit="kg CO2")


def carbon_only(p: Problem, carbon_price_cny_per_t: float) -> Costs:
    c = casper(p, carbon_price_cny_per_t)
    return Costs(c.fixed, c.marginal, c.route, c.warm, p.allowed, unit=c.unit)


def latency_only(p: Problem, carbon_price_cny_per_t: float) -> Costs:
    n_j, n_t = p.price.shape
    # Nearest first (ms of round trip per request/s); a replica costs a token amount so
    # that, at equal distance, fewer replicas win.
    return Costs(
        fixed=np.full((n_j, n_t), 1.0e-3),
        marginal=np.zeros((n_j, n_t)),
        route=p.rtt_ms.copy(),
        warm=np.zeros((n_j, n_t)),
        mask=p.feasible,
        fixed_replicas=True,
        unit="ms",
    )


POLICIES: dict[str, Callable[[Problem, float], Costs]] = {
    "cost-carbon": cost_carbon,
    "casper": casper,
    "carbon-only": carbon_only,
    "latency-only": latency_only,
}
NEW_POLICY = "cost-carbon"


def costs_for(policy: str, p: Problem, carbon_price_cny_per_t: float) -> Costs:
    make = POLICIES.get(policy)
    if make is None:
        raise UnknownNameError("inference policy", policy, POLICIES)
    return make(p, carbon_price_cny_per_t)
