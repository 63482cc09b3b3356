"""``plan(request) -> reply``: compile the request once, hand it to the named policy.

Pure: no clock, no randomness, no I/O; the same request gives the same reply. Policies are
registered by name here; an unknown name raises ``UnknownNameError`` listing the valid ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import MappingProxyType

from computenet.engine import why
from computenet.engine.problem import Problem
from computenet.engine.types import PlanReply, PlanRequest
from computenet.errors import UnknownNameError

PolicyFn = Callable[[Problem], PlanReply]

POLICIES = MappingProxyType(
    {
        "fifo-home": "computenet.engine.policies.fifo_home",
        "cheapest-now": "computenet.engine.policies.cheapest_now",
        "carbon-now": "computenet.engine.policies.carbon_now",
        "wait-awhile": "computenet.engine.policies.wait_awhile",
        "greedy": "computenet.engine.policies.greedy",
        "milp": "computenet.engine.policies.milp",
        "bound": "computenet.engine.policies.bound",
    }
)
"""Policy name -> module with a ``plan(problem) -> PlanReply`` function."""


def policy_fn(name: str) -> PolicyFn:
    """The policy registered as ``name``."""
    module = POLICIES.get(name)
    if module is None:
        raise UnknownNameError("policy", name, POLICIES, source="policy")
    fn: PolicyFn = importlib.import_module(module).plan
    return fn


def plan(request: PlanRequest) -> PlanReply:
    """Decide where and when the request's jobs run under ``request.policy``.

    Placements carry their cost/carbon ``Breakdown`` (CNY, kWh, kg CO2) and the best
    rejected alternatives; jobs that cannot be placed come back as ``Deferral`` (retry
    later) or ``Infeasible`` with the constraint that made them so. Each decision carries
    its structured reason (``why``, ``engine.reasons``).
    """
    fn = policy_fn(request.policy)
    # Every policy, the bound included, works on the same sub-slot grid, so the bound
    # prices runs with exactly the signal values the policies see.
    pb = Problem(request)
    return why.attach(pb, fn(pb))
