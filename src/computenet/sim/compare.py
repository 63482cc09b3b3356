"""Run several policies on the same workload, plus a carbon-price sweep, and collect figures.

This is what ``computenet simulate`` and ``computenet demo`` print and report: one
``SimResult`` and ``PolicyMetrics`` per policy (all runs see the same workload, network,
outages and forecasts), the engine's lower bound where it can be computed, and the
cost-carbon Pareto curve obtained by re-running one policy at several carbon prices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from computenet.model import Network
from computenet.sim.metrics import PolicyMetrics, lower_bound, summarise
from computenet.sim.simulator import Planner, SimConfig, SimResult, default_planner, simulate
from computenet.sim.workload import Workload

BASELINE = "fifo-home"
DEFAULT_SWEEP_CNY_PER_T = (0.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ParetoPoint:
    """One run of the sweep: the carbon price it ran at and what it cost and emitted."""

    carbon_price_cny_per_t: float
    cost_cny: float
    carbon_kg: float
    deadline_misses: int


@dataclass(frozen=True)
class CostSplit:
    """What a run's cost (CNY) is made of: electricity, accelerator rental and data moved.
    ``total_cny`` equals ``PolicyMetrics.cost_cny`` of the same run."""

    energy_cny: float
    compute_cny: float
    transfer_cny: float

    @property
    def total_cny(self) -> float:
        return self.energy_cny + self.compute_cny + self.transfer_cny

    def to_json(self) -> dict[str, float]:
        return {
            "energy_cny": round(self.energy_cny, 6),
            "compute_cny": round(self.compute_cny, 6),
            "transfer_cny": round(self.transfer_cny, 6),
        }


def cost_split(result: SimResult) -> CostSplit:
    """The cost split of one run, from what the simulated executor charged (every segment,
    preempted ones included, and every transfer)."""
    return CostSplit(
        energy_cny=sum(s.energy_cost_cny for s in result.segments),
        compute_cny=sum(s.compute_cost_cny for s in result.segments),
        transfer_cny=sum(t.cost_cny for t in result.transfers),
    )


@dataclass(frozen=True)
class Comparison:
    """Everything one comparison produced."""

    title: str
    network: Network
    workload: Workload
    results: tuple[SimResult, ...]
    metrics: tuple[PolicyMetrics, ...]
    pareto_policy: str | None = None
    pareto: tuple[ParetoPoint, ...] = ()
    bound_note: str = ""
    network_notes: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def metric(self, policy: str) -> PolicyMetrics | None:
        return next((m for m in self.metrics if m.policy == policy), None)

    def result(self, policy: str) -> SimResult | None:
        return next((r for r in self.results if r.policy == policy), None)

    def to_json(self) -> dict[str, Any]:
        """``{"policies": [...]}`` plus context; each policy object carries the figures of
        ``PolicyMetrics`` and its change against ``fifo-home`` when that ran."""
        base = self.metric(BASELINE)
        pols = []
        splits = {r.policy: cost_split(r) for r in self.results}
        for m in self.metrics:
            d = m.to_json()
            if m.policy in splits:
                d["cost_split"] = splits[m.policy].to_json()
            if base is not None and m.policy != BASELINE:
                d["vs_fifo_home"] = {
                    "cost_pct": _pct(m.cost_cny, base.cost_cny),
                    "carbon_pct": _pct(m.carbon_kg, base.carbon_kg),
                    "energy_pct": _pct(m.energy_kwh, base.energy_kwh),
                    "deadline_misses_delta": m.deadline_misses - base.deadline_misses,
                }
            pols.append(d)
        return {
            "title": self.title,
            "network": self.network.name,
            "sites": len(self.network.sites),
            "jobs": len(self.workload.jobs),
            "start_s": self.workload.start_s,
            "policies": pols,
            "pareto": {
                "policy": self.pareto_policy,
                "points": [p.__dict__ for p in self.pareto],
            },
            "lower_bound": self.bound_note,
            "filled": list(self.workload.filled),
            "trace_notes": list(self.workload.notes),
            "network_notes": list(self.network_notes),
            "notes": list(self.notes),
        }


def _pct(x: float, base: float) -> float | None:
    return None if base == 0 else round(100.0 * (x - base) / base, 3)


def compare(
    network: Network,
    workload: Workload,
    policies: Sequence[str],
    config: SimConfig,
    *,
    planner: Planner | None = None,
    sweep_policy: str | None = "greedy",
    sweep_prices: Sequence[float] = DEFAULT_SWEEP_CNY_PER_T,
    bound: bool = True,
    bound_chunk_jobs: int = 400,
    title: str = "",
    network_notes: Sequence[str] = (),
    progress: Progress | None = None,
) -> Comparison:
    """Run every policy in ``policies`` (same workload and faults), then the sweep."""
    if planner is None:
        planner = default_planner()
    bound_cny: float | None = None
    note = "lower bound not requested"
    if bound:
        bound_cny, note = lower_bound(
            network,
            workload,
            planner,
            carbon_price_cny_per_t=config.carbon_price_cny_per_t,
            slot_s=config.slot_s,
            chunk_jobs=bound_chunk_jobs,
            progress=None if progress is None else (lambda a, t: progress("lower bound", a, t)),
        )
    results, metrics = [], []
    for pol in policies:
        cb = None if progress is None else (lambda a, t, _p=pol: progress(_p, a, t))
        res = simulate(network, workload, replace(config, policy=pol), planner=planner, progress=cb)
        results.append(res)
        metrics.append(summarise(res, bound_cny))
    points: list[ParetoPoint] = []
    if sweep_policy is not None and sweep_prices:
        for price in sweep_prices:
            label = f"{sweep_policy} @ {price:g} CNY/t"
            cb = None if progress is None else (lambda a, t, _l=label: progress(_l, a, t))
            same = next(
                (
                    r
                    for r in results
                    if r.policy == sweep_policy and r.config.carbon_price_cny_per_t == price
                ),
                None,
            )
            res = same or simulate(
                network,
                workload,
                replace(config, policy=sweep_policy, carbon_price_cny_per_t=price),
                planner=planner,
                progress=cb,
            )
            m = summarise(res)
            points.append(ParetoPoint(price, m.cost_cny, m.carbon_kg, m.deadline_misses))
    return Comparison(
        title=title or f"{len(workload.jobs)} jobs on {network.name}",
        network=network,
        workload=workload,
        results=tuple(results),
        metrics=tuple(metrics),
        pareto_policy=sweep_policy if points else None,
        pareto=tuple(points),
        bound_note=note,
        network_notes=tuple(network_notes),
        notes=_config_notes(config),
    )


def _config_notes(config: SimConfig) -> tuple[str, ...]:
    """What every run assumed beyond the workload, network, carbon price and forecasts
    (which the report states already)."""
    if config.home_reserve <= 0:
        return ()
    return (
        f"Home reserve {config.home_reserve:.0%}: work moved away from its data's home site "
        "may not take that share of another site's accelerators (kept for that site's own "
        "work, as Kueue's lending limit)",
    )
