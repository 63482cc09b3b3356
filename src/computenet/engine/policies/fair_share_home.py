"""``fair-share-home``: ``fair-share``'s admission (quotas, dominant-resource fair order)
and preemption (deadline at risk; reclaiming nominal quota from borrowers), with each
admitted job placed as ``fifo-home`` places it: at its data's home site as soon as
capacity allows, so no data moves and a job waits at home instead. Without quotas in the
request it is ``fifo-home``."""

from __future__ import annotations

from dataclasses import replace

from computenet.engine.policies import fifo_home
from computenet.engine.problem import Problem
from computenet.engine.types import PlanReply

NAME = "fair-share-home"
ADMISSION = "fair"
PREEMPTS = True


def plan(pb: Problem) -> PlanReply:
    return replace(fifo_home.plan(pb), policy=NAME)
