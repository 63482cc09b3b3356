"""The placement engine: ``plan(PlanRequest) -> PlanReply``, pure and deterministic.

Policies: ``fifo-home``, ``cheapest-now``, ``carbon-now``, ``wait-awhile``, ``greedy``,
``milp`` and ``bound`` (the LP lower bound); see ``computenet.engine.policies``.
"""

from computenet.engine.planner import POLICIES, plan

__all__ = ["POLICIES", "plan"]
