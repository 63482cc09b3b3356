"""``fair-share``: quotas with dominant-resource fair sharing and priority preemption.

Jobs are admitted within their tenant's quota (borrowing idle quota up to the limit) by
priority, then the tenant with the lowest weighted dominant share; the admitted jobs are
placed by ``greedy`` (lowest objective over sites and starts). A job whose deadline is at
risk and that found no room may preempt lower-priority checkpointable work, which loses
at most one checkpoint interval (``engine.quotas``). Without quotas in the request it is
``greedy``.
"""

from __future__ import annotations

from dataclasses import replace

from computenet.engine.policies import greedy
from computenet.engine.problem import Problem
from computenet.engine.types import PlanReply

NAME = "fair-share"
ADMISSION = "fair"
PREEMPTS = True


def plan(pb: Problem) -> PlanReply:
    return replace(greedy.plan(pb), policy=NAME)
