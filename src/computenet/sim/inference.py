"""Replay actual inference demand against a placement plan, minute by minute.

Each hour, a region's requests go to the slots the plan routes it to, in the plan's
proportions. Per slot and minute the replicas' load share is ``rho = load / capacity``;
a request waits for its prefill slot (M/M/1 on prefill, ``ReplicaProfile.queue_s``) plus any
backlog left when demand ran above capacity (a fluid queue carried from minute to minute).
Its time to first token is the round trip + that wait + the prefill of its prompt (the
trace's prompt quantiles). Energy per slot and minute is the replicas' power at their load
(``ReplicaProfile.power_w``, plus host power) x PUE, plus warm-ups; cost is that energy at the
site's price plus rent and the weights' transfer; carbon is that energy at the site's grid
intensity. A data-rule violation is a request served in a jurisdiction its data class may
not leave. All of it is modelled from the measured H100 profile (``engine/inference``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from computenet.engine.inference.plan import InferencePlan, initial_vector, plan_problem
from computenet.engine.inference.problem import build_problem
from computenet.engine.inference.service import InferenceRequest, ServiceSpec
from computenet.engine.inference.solvers import starts
from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T, FloatArray, Network
from computenet.sim.inference_demand import Spread

MAX_MS = 120_000


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    requests: float
    slo_attainment: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    replica_hours: int
    energy_kwh: float
    carbon_kg: float
    cost_cny: float
    violations: float
    beyond_target_pairs: int
    unserved_requests: float
    warmups: int
    method: str
    gap: float
    headroom: float
    by_hour: dict[str, list[float]] = field(default_factory=dict)
    by_site: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "slo_attainment": self.slo_attainment,
            "ttft_p50_ms": self.ttft_p50_ms,
            "ttft_p99_ms": self.ttft_p99_ms,
            "replica_hours": self.replica_hours,
            "energy_kwh": self.energy_kwh,
            "carbon_kg": self.carbon_kg,
            "cost_cny": self.cost_cny,
            "violations": self.violations,
            "beyond_target_pairs": self.beyond_target_pairs,
            "requests": self.requests,
            "unserved_requests": self.unserved_requests,
            "warmups": self.warmups,
            "method": self.method,
            "gap": self.gap,
            "headroom": self.headroom,
            "by_hour": self.by_hour,
            "by_site": self.by_site,
        }


def _quantile(hist: FloatArray, q: float) -> float:
    cum = np.cumsum(hist)
    if cum[-1] <= 0:
        return 0.0
    return float(np.searchsorted(cum, q * cum[-1]))


def replay(
    plan: InferencePlan,
    request: InferenceRequest,
    actual_rps: FloatArray,
    prompt_quantiles: FloatArray,
) -> PolicyResult:
    """Replay ``actual_rps`` (R x T x 60 requests/s) against ``plan``."""
    p, sol, spec = plan.problem, plan.solution, request.spec
    _, n_j, n_t = sol.flow_rps.shape
    full = p.cap_rps / spec.max_utilisation  # requests/s per replica at full batch
    prefill_ms = np.array(
        [[1000 * s.profile.prefill_s(q) for q in prompt_quantiles] for s in p.slots]
    )
    # ReplicaProfile.queue_s, for all slots at once
    prefill_mean_s = np.array([s.profile.prefill_s(spec.prompt_tokens_mean) for s in p.slots])
    prefill_share = prefill_mean_s / np.array(
        [s.profile.service_s(spec.prompt_tokens_mean, spec.output_tokens_mean) for s in p.slots]
    )
    hist = np.zeros(MAX_MS + 1)
    backlog = np.zeros(n_j)  # requests waiting
    kwh = np.zeros((n_j, n_t))
    violations = unserved = 0.0
    idle_kw = p.kwh_replica_h / 1.0  # facility kW per idle replica
    for t in range(n_t):
        flow = sol.flow_rps[:, :, t]
        total = flow.sum(axis=1, keepdims=True)
        share = np.divide(flow, total, out=np.zeros_like(flow), where=total > 0)
        demand = actual_rps[:, t, :]  # R x 60
        unserved += float(np.sum(demand[total[:, 0] <= 0]) * 60)
        violations += float(np.sum(share * ~p.allowed * demand.sum(axis=1)[:, None]) * 60)
        load = share.T @ demand  # J x 60
        cap = sol.replicas[:, t] * full
        wait_ms = np.zeros((n_j, 60))
        for m in range(60):
            rho = np.divide(load[:, m], cap, out=np.full(n_j, 2.0), where=cap > 0)
            rho_p = np.minimum(0.99, rho) * prefill_share
            queue = prefill_mean_s * rho_p / (1.0 - rho_p)
            wait_ms[:, m] = 1000 * (
                queue + np.divide(backlog, cap, out=np.zeros(n_j), where=cap > 0)
            )
            backlog = np.maximum(0.0, backlog + (load[:, m] - cap) * 60)
            busy = np.minimum(1.0, rho)
            kwh[:, t] += sol.replicas[:, t] * (idle_kw + p.kwh_per_rps_h * full * busy) / 60.0
        for r, j in np.argwhere(share > 0):
            counts = demand[r] * share[r, j] * 60 / len(prompt_quantiles)  # per minute & bucket
            ttft = p.rtt_ms[r, j] + wait_ms[j][:, None] + prefill_ms[j][None, :]
            idx = np.minimum(MAX_MS, ttft.astype(np.int64)).ravel()
            hist += np.bincount(
                idx, weights=np.repeat(counts, len(prompt_quantiles)), minlength=MAX_MS + 1
            )
    warm = starts(sol.replicas, initial_vector(p, request))
    kwh += warm * p.kwh_warmup[:, None]
    cost = (
        kwh * p.price
        + sol.replicas * p.compute_cny_per_replica_h[:, None]
        + warm * p.warm_transfer_cny[:, None]
    )
    carbon = kwh * p.carbon / 1000.0
    served = hist.sum()
    within = hist[: int(np.floor(spec.ttft_target_ms)) + 1].sum()
    requests = served + unserved
    beyond = int(np.sum((sol.flow_rps.sum(axis=2) > 1e-9) & ~p.feasible))
    by_site: dict[str, dict[str, float]] = {}
    for j, s in enumerate(p.slots):
        if sol.replicas[j].any():
            key = f"{s.site_id}/{s.accelerator}"
            by_site[key] = {
                "replica_hours": float(sol.replicas[j].sum()),
                "energy_kwh": float(kwh[j].sum()),
                "carbon_kg": float(carbon[j].sum()),
                "cost_cny": float(cost[j].sum()),
            }
    return PolicyResult(
        policy=plan.policy,
        requests=float(requests),
        slo_attainment=float(within / requests) if requests > 0 else 1.0,
        ttft_p50_ms=_quantile(hist, 0.5),
        ttft_p99_ms=_quantile(hist, 0.99),
        replica_hours=int(sol.replicas.sum()),
        energy_kwh=float(kwh.sum()),
        carbon_kg=float(carbon.sum()),
        cost_cny=float(cost.sum()),
        violations=violations,
        beyond_target_pairs=beyond,
        unserved_requests=unserved,
        warmups=int(warm.sum()),
        method=sol.method,
        gap=sol.gap,
        headroom=p.headroom,
        by_hour={
            "replicas": [float(v) for v in sol.replicas.sum(axis=0)],
            "carbon_kg": [float(v) for v in carbon.sum(axis=0)],
            "cost_cny": [float(v) for v in cost.sum(axis=0)],
        },
        by_site=by_site,
    )


def compare_policies(
    net: Network,
    spec: ServiceSpec,
    spread: Spread,
    prompt_quantiles: FloatArray,
    policies: tuple[str, ...],
    *,
    carbon_price_cny_per_t: float = DEFAULT_CARBON_PRICE_CNY_PER_T,
    method: str = "auto",
) -> list[PolicyResult]:
    """Plan with each policy on the forecast, replay the actual demand against each plan."""
    base = InferenceRequest(spec, spread.forecast, carbon_price_cny_per_t=carbon_price_cny_per_t)
    problem = build_problem(net, base)
    out = []
    for policy in policies:
        req = InferenceRequest(
            spec,
            spread.forecast,
            policy=policy,
            carbon_price_cny_per_t=carbon_price_cny_per_t,
            method=method,
        )
        out.append(replay(plan_problem(problem, req), req, spread.actual_rps, prompt_quantiles))
    return out
