"""``cheapest-now``: what a cloud broker does — among the sites that may run the job, the one
with the lowest cost in CNY (energy at the price then + compute price + data transfer) for a
start as soon as possible there. Carbon plays no part."""

from __future__ import annotations

from computenet.engine import explain
from computenet.engine.policies.base import Decision, run_sequential
from computenet.engine.policies.now import choose_now
from computenet.engine.problem import JobView, Problem
from computenet.engine.types import PlanReply

NAME = "cheapest-now"


def choose(pb: Problem, v: JobView) -> Decision:
    return choose_now(pb, v, "cost", "cheapest site now: ")


def plan(pb: Problem) -> PlanReply:
    return run_sequential(pb, NAME, choose, explain.costs_more())
