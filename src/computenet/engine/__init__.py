"""The placement engine: ``plan(PlanRequest) -> PlanReply``, pure and deterministic.

Policies: ``fifo-home``, ``cheapest-now``, ``carbon-now``, ``wait-awhile``, ``greedy``,
``milp``, ``bound`` (the LP lower bound), and on tenants' quotas ``quota-fifo`` and
``fair-share`` (``engine.quotas``); see ``computenet.engine.policies``.
"""

from computenet.engine.planner import POLICIES, plan

__all__ = ["POLICIES", "plan"]
