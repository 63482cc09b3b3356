"""``carbon-now``: what a carbon-aware SDK's best-location query does — among the sites that
may run the job, the one whose run, started as soon as possible there, emits the least CO2.
Price plays no part."""

from __future__ import annotations

from computenet.engine import explain
from computenet.engine.policies.base import Decision, run_sequential
from computenet.engine.policies.now import choose_now
from computenet.engine.problem import JobView, Problem
from computenet.engine.types import PlanReply

NAME = "carbon-now"


def _more_carbon(alt: float, chosen: float, alt_start: int, chosen_start: int) -> str:
    # values are kWh x g/kWh: grams of CO2
    d = (alt - chosen) / 1000.0
    if d <= 1e-12:
        return f"emits as much; starts {explain.when(alt_start)}, later in the order"
    return f"emits {d:,.2f} kg CO2 more"


def choose(pb: Problem, v: JobView) -> Decision:
    return choose_now(pb, v, "carbon", "lowest-carbon site now: ")


def plan(pb: Problem) -> PlanReply:
    return run_sequential(pb, NAME, choose, _more_carbon)
