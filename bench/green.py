"""Green supply and modelled hourly carbon: the figures ``bench/grid.py`` reports.

* ``model_validation()`` — the modelled hourly carbon against the true hourly series of DE,
  GB and FR (``computenet.signals.modelled``): per zone ``corr``, ``mape`` and ``mape_flat``
  (the error of the flat annual mean, the baseline the model must beat);
* ``green_supply_demo()`` — the demo week (``computenet demo``'s network, workload, outages)
  under one policy with the green supply off (grid only), ``declared`` (the default: reported
  shares) and ``targets`` (policy targets too): per-hub share of the accelerator-hours used,
  per-site use, and the carbon both as charged (effective mix) and as the grid alone would
  count it for the same placements, so a change of accounting is not read as a change of
  placement.

Run: ``python bench/green.py --json [--days 7] [--policy greedy]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench._data import DATA

WEST_HUBS = ("Inner Mongolia", "Guizhou", "Gansu", "Ningxia")


def model_validation(data_dir: Path = DATA) -> dict[str, dict[str, Any]]:
    """Per zone ``{corr, mape, mape_flat, vre_share, hours, year}``; empty when the shared
    data is missing."""
    from computenet.signals.modelled import model_validation as validate

    return validate(data_dir)


def _run(mode: str, days: float, jobs: int, policy: str, seed: int) -> dict[str, Any]:
    from computenet.catalog import load_network
    from computenet.cli.demo import DEMO_START
    from computenet.cli.simulate import parse_start
    from computenet.sim.faults import seeded_outages
    from computenet.sim.metrics import summarise, utilisation
    from computenet.sim.simulator import SimConfig, simulate
    from computenet.sim.workload import FillOptions, demo_trace, materialise

    net = load_network("china", green_supply=mode)
    wl = materialise(
        demo_trace(days=days, jobs=jobs, seed=seed),
        net,
        parse_start(DEMO_START),
        FillOptions(seed=seed),
    )
    end = max(j.deadline_s for j in wl.jobs)
    outs = seeded_outages(
        net.site_ids, wl.start_s, end, rate_per_site_day=0.02, mean_hours=4.0, seed=seed
    )
    t0 = time.perf_counter()
    result = simulate(net, wl, SimConfig(policy=policy, seed=seed, outages=outs))
    wall = time.perf_counter() - t0
    m = summarise(result)
    sites = {s.id: s for s in net.sites}
    acc_h: dict[str, float] = {}
    grid_kg = 0.0
    for seg in result.segments:
        acc_h[seg.site_id] = (
            acc_h.get(seg.site_id, 0.0) + seg.count * (seg.end_s - seg.start_s) / 3600
        )
        s = sites[seg.site_id]
        grid = s.grid_carbon if s.grid_carbon is not None else s.carbon
        if seg.end_s > seg.start_s:
            grid_kg += seg.energy_kwh * grid.mean(seg.start_s, seg.end_s) / 1000.0
    total = sum(acc_h.values()) or 1.0
    by_hub: dict[str, float] = {}
    for sid, h in acc_h.items():
        by_hub[sites[sid].hub] = by_hub.get(sites[sid].hub, 0.0) + h / total
    use = utilisation(result)
    return {
        "green_supply": mode,
        "policy": policy,
        "jobs": len(wl.jobs),
        "carbon_kg_charged": round(m.carbon_kg, 1),
        "carbon_kg_grid_accounting": round(grid_kg, 1),
        "cost_cny": round(m.cost_cny, 1),
        "energy_kwh": round(m.energy_kwh, 1),
        "deadline_misses": m.deadline_misses,
        "west_hub_share_of_acc_h": round(sum(by_hub.get(h, 0.0) for h in WEST_HUBS), 4),
        "hub_share_of_acc_h": {h: round(v, 4) for h, v in sorted(by_hub.items())},
        "site_utilisation": {k: round(v, 4) for k, v in use.items()},
        "wall_s": round(wall, 1),
    }


def green_supply_demo(
    days: float = 7.0, jobs: int | None = None, policy: str = "greedy", seed: int = 0
) -> dict[str, Any]:
    """The demo week with green supply off / declared / targets (see the module docstring)."""
    n = jobs if jobs is not None else int(300 * days)
    return {mode: _run(mode, days, n, policy, seed) for mode in ("off", "declared", "targets")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--policy", default="greedy")
    ap.add_argument("--no-demo", action="store_true", help="only the model validation")
    a = ap.parse_args()
    out: dict[str, Any] = {"model_validation": model_validation()}
    if not a.no_demo:
        out["green_supply_demo"] = green_supply_demo(a.days, a.jobs, a.policy)
    print(json.dumps(out, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
