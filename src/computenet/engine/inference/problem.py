"""The arrays every inference policy and solver works on, built from a network.

A *slot* is one accelerator type at one site that can hold a replica of the model. For
user region ``r`` and slot ``j``: ``rtt_ms[r, j]`` (the network's latency model: measured
where a matrix has the pair, else fibre-bounded distance), ``ttft_ms[r, j]`` (p99 time to
first token at the planning utilisation: round trip + queueing + prefill), ``allowed``
(the data rule) and ``feasible`` (allowed and within the latency target). For slot ``j`` and
hour ``t``: energy in kWh per replica-hour (idle with the model loaded), per request/s served
for an hour (the load-dependent part) and per warm-up, each at the site's PUE, and the
site's price and carbon in that hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from computenet.engine.inference.profile import ReplicaProfile, replica_profile
from computenet.engine.inference.service import InferenceRequest, ServiceSpec
from computenet.engine.signals import slot_means
from computenet.errors import InputError, UnknownNameError
from computenet.model import HOUR_S, FloatArray, Network, Site

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Slot:
    site_id: str
    accelerator: str
    jurisdiction: str
    max_replicas: int
    profile: ReplicaProfile


@dataclass(frozen=True)
class Problem:
    """See the module docstring; shapes: R regions, J slots, T hours."""

    slots: tuple[Slot, ...]
    region_ids: tuple[str, ...]
    region_jurisdictions: tuple[str, ...]
    start_s: int
    rtt_ms: FloatArray  # R x J
    ttft_ms: FloatArray  # R x J, p99 at max utilisation
    latency_budget_ms: FloatArray  # J: target - prefill - queueing: the RTT a region may have
    allowed: BoolArray  # R x J: the data rule
    feasible: BoolArray  # R x J: allowed and within the target
    demand_rps: FloatArray  # R x T forecast (without headroom)
    headroom: float
    cap_rps: FloatArray  # J: requests/s one replica serves at the planning utilisation
    max_n: npt.NDArray[np.int64]  # J
    kwh_replica_h: FloatArray  # J: facility kWh per replica-hour, idle part
    kwh_per_rps_h: FloatArray  # J: facility kWh per request/s served for an hour
    kwh_warmup: FloatArray  # J: facility kWh per warm-up
    warm_transfer_cny: FloatArray  # J: copying the weights to the site
    compute_cny_per_replica_h: FloatArray  # J
    price: FloatArray  # J x T, CNY/kWh
    carbon: FloatArray  # J x T, gCO2/kWh
    min_replicas: int
    ttft_target_ms: float

    @property
    def hours(self) -> int:
        return int(self.demand_rps.shape[1])

    @property
    def planned_rps(self) -> FloatArray:
        """Demand the plan provisions for: the forecast plus headroom."""
        return self.demand_rps * (1.0 + self.headroom)


def _slots(net: Network, spec: ServiceSpec) -> list[Slot]:
    known = set(net.accelerators)
    for a in spec.accelerator_types:
        if a not in known:
            raise UnknownNameError("accelerator type", a, sorted(known))
    out: list[Slot] = []
    for site in net.sites:
        for acc_id in dict.fromkeys(p.accelerator for p in site.pools):
            if spec.accelerator_types and acc_id not in spec.accelerator_types:
                continue
            acc = net.accelerators.get(acc_id)
            if acc is None:
                continue
            prof = replica_profile(
                acc,
                accelerators=spec.accelerators_per_replica,
                profile=spec.profile,
                weights_gb=spec.weights_gb,
                kv_gb_per_sequence=spec.kv_gb_per_sequence,
            )
            n = site.capacity(acc_id) // spec.accelerators_per_replica
            if prof is None or n < 1:
                continue
            out.append(Slot(site.id, acc_id, str(site.jurisdiction), n, prof))
    if not out:
        raise InputError(
            "no site can hold a replica of this service",
            where="accelerator_types",
            fix="accept more accelerator types or use fewer accelerators per replica",
        )
    return out


def _pool_max(site: Site, accelerator: str, attr: str) -> float:
    """The largest ``attr`` (host power, rent) of the site's pools of that type."""
    return max(
        (float(getattr(pl, attr)) for pl in site.pools if pl.accelerator == accelerator),
        default=0.0,
    )


def build_problem(net: Network, request: InferenceRequest) -> Problem:
    """The arrays for ``request`` on ``net`` (signals read as hourly means)."""
    spec, demand = request.spec, request.demand
    regions = {r.id: r for r in net.regions}
    for rid in demand.region_ids:
        if rid not in regions:
            raise UnknownNameError("user region", rid, sorted(regions))
    slots = _slots(net, spec)
    n_r, n_j, n_t = len(demand.region_ids), len(slots), demand.hours
    rtt = np.array(
        [[net.links.latency(rid, s.site_id).rtt_ms for s in slots] for rid in demand.region_ids],
        dtype=np.float64,
    ).reshape(n_r, n_j)
    p, o, p99 = spec.prompt_tokens_mean, spec.output_tokens_mean, spec.prompt_tokens_p99
    u = spec.max_utilisation
    serve_ms = np.array(
        [1000.0 * (s.profile.prefill_s(p99) + s.profile.queue_s(u, p, o)) for s in slots]
    )
    ttft = rtt + serve_ms[None, :]
    jur = tuple(str(regions[rid].jurisdiction) for rid in demand.region_ids)
    if spec.resident:
        allowed = np.array([[j == s.jurisdiction for s in slots] for j in jur], dtype=bool)
    else:
        allowed = np.ones((n_r, n_j), dtype=bool)
    allowed = allowed.reshape(n_r, n_j)
    sites = {s.id: s for s in net.sites}
    pue = np.array([sites[s.site_id].pue for s in slots])
    host_w = np.array([_pool_max(sites[s.site_id], s.accelerator, "host_power_w") for s in slots])
    host_w *= spec.accelerators_per_replica
    cap = np.array([s.profile.capacity_rps(p, o) for s in slots]) * u
    full = cap / u
    idle_kw = (np.array([s.profile.idle_w for s in slots]) + host_w) / 1000.0
    busy_kw = (np.array([s.profile.busy_w for s in slots]) + host_w) / 1000.0
    price = np.array(
        [slot_means(sites[s.site_id].price, demand.start_s, HOUR_S, n_t) for s in slots]
    ).reshape(n_j, n_t)
    carbon = np.array(
        [slot_means(sites[s.site_id].carbon, demand.start_s, HOUR_S, n_t) for s in slots]
    ).reshape(n_j, n_t)
    rent = np.array([_pool_max(sites[s.site_id], s.accelerator, "price_cny_per_h") for s in slots])
    rent *= spec.accelerators_per_replica
    # The weights come from the service's registry: priced at the network's default egress.
    egress = np.full(n_j, float(getattr(net.links, "egress_cny_per_gb_default", 0.0)))
    return Problem(
        slots=tuple(slots),
        region_ids=demand.region_ids,
        region_jurisdictions=jur,
        start_s=demand.start_s,
        rtt_ms=rtt,
        ttft_ms=ttft,
        latency_budget_ms=spec.ttft_target_ms - serve_ms,
        allowed=allowed,
        feasible=allowed & (ttft <= spec.ttft_target_ms),
        demand_rps=demand.rps,
        headroom=spec.headroom,
        cap_rps=cap,
        max_n=np.array([s.max_replicas for s in slots], dtype=np.int64),
        kwh_replica_h=idle_kw * pue,
        kwh_per_rps_h=(busy_kw - idle_kw) * pue / full,
        kwh_warmup=busy_kw * pue * spec.warmup_s / HOUR_S,
        warm_transfer_cny=egress * spec.weights_gb,
        compute_cny_per_replica_h=rent,
        price=price,
        carbon=carbon,
        min_replicas=spec.min_replicas,
        ttft_target_ms=spec.ttft_target_ms,
    )
