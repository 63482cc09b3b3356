"""``plan(request) -> reply``: compile the request once, hand it to the named policy.

Pure: no clock, no randomness, no I/O; the same request gives the same reply. Policies are
registered by name here; an unknown name raises ``UnknownNameError`` listing the valid ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import MappingProxyType, ModuleType

from computenet.engine import quotas, why
from computenet.engine.problem import Problem
from computenet.engine.types import PlanReply, PlanRequest
from computenet.errors import UnknownNameError

PolicyFn = Callable[[Problem], PlanReply]

POLICIES = MappingProxyType(
    {
        "fifo": "computenet.engine.policies.fifo",
        "fifo-home": "computenet.engine.policies.fifo_home",
        "suspend-resume": "computenet.engine.policies.suspend_resume",
        "ecovisor": "computenet.engine.policies.ecovisor",
        "cheapest-now": "computenet.engine.policies.cheapest_now",
        "carbon-now": "computenet.engine.policies.carbon_now",
        "wait-awhile": "computenet.engine.policies.wait_awhile",
        "greedy": "computenet.engine.policies.greedy",
        "milp": "computenet.engine.policies.milp",
        "priced": "computenet.engine.policies.priced",
        "bound": "computenet.engine.policies.bound",
        "quota-fifo": "computenet.engine.policies.quota_fifo",
        "fair-share": "computenet.engine.policies.fair_share",
        "fair-share-home": "computenet.engine.policies.fair_share_home",
    }
)
"""Policy name -> module with a ``plan(problem) -> PlanReply`` function. A module may
declare how it admits jobs under quotas (``ADMISSION``: ``"fifo"``, the default, or
``"fair"``) and whether it preempts (``PREEMPTS``, default false); see ``engine.quotas``."""


SEGMENTED = frozenset({"suspend-resume", "ecovisor"})
"""Policies whose placements may pause and resume (``Placement.segments``): the simulator
carries them out; the service's executors do not checkpoint and requeue yet, so the service
refuses them."""


def policy_fn(name: str) -> PolicyFn:
    """The policy registered as ``name``."""
    fn: PolicyFn = _module(name).plan
    return fn


def _module(name: str) -> ModuleType:
    module = POLICIES.get(name)
    if module is None:
        raise UnknownNameError("policy", name, POLICIES, source="policy")
    return importlib.import_module(module)


def plan(request: PlanRequest) -> PlanReply:
    """Decide where and when the request's jobs run under ``request.policy``.

    Placements carry their cost/carbon ``Breakdown`` (CNY, kWh, kg CO2) and the best
    rejected alternatives; jobs that cannot be placed come back as ``Deferral`` (retry
    later) or ``Infeasible`` with the constraint that made them so. Each decision carries
    its structured reason (``why``, ``engine.reasons``).
    """
    fn = policy_fn(request.policy)
    if request.quotas is not None:
        mod = _module(request.policy)
        return quotas.plan_with_quotas(
            request,
            request.quotas,
            lambda req: _with_reasons(fn, req),
            getattr(mod, "ADMISSION", "fifo"),
            bool(getattr(mod, "PREEMPTS", False)),
        )
    return _with_reasons(fn, request)


def _with_reasons(fn: PolicyFn, request: PlanRequest) -> PlanReply:
    """The policy's reply with every decision's structured reason attached. Every policy,
    the bound included, works on the same sub-slot grid, so the bound prices runs with
    exactly the signal values the policies see."""
    pb = Problem(request)
    return why.attach(pb, fn(pb))
