"""``quota-fifo``: the quota baseline, as Kueue's BestEffortFIFO ClusterQueues — jobs are
admitted within their tenant's quota (borrowing idle quota up to the limit) by priority,
then arrival, and each admitted job runs at its data's home site as soon as capacity allows
(``fifo-home``). No fair sharing between tenants, no preemption. Without quotas in the
request it is ``fifo-home``."""

from __future__ import annotations

from dataclasses import replace

from computenet.engine.policies import fifo_home
from computenet.engine.problem import Problem
from computenet.engine.types import PlanReply

NAME = "quota-fifo"
ADMISSION = "fifo"
PREEMPTS = False


def plan(pb: Problem) -> PlanReply:
    return replace(fifo_home.plan(pb), policy=NAME)
