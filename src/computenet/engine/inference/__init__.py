"""Inference placement (mission part M9): replicas of a model service placed hour by hour
by user demand, latency target, cost and carbon, edge sites included.

``plan_inference(network, InferenceRequest) -> InferencePlan``; pure like the training
engine (no clock, no I/O, no randomness)."""

from computenet.engine.inference.plan import (
    InferencePlan,
    ReplicaPlacement,
    plan_inference,
    plan_problem,
)
from computenet.engine.inference.policies import NEW_POLICY, POLICIES
from computenet.engine.inference.problem import Problem, Slot, build_problem
from computenet.engine.inference.profile import PROFILES, ReplicaProfile, replica_profile
from computenet.engine.inference.service import Demand, InferenceRequest, ServiceSpec

__all__ = [
    "NEW_POLICY",
    "POLICIES",
    "PROFILES",
    "Demand",
    "InferencePlan",
    "InferenceRequest",
    "Problem",
    "ReplicaPlacement",
    "ReplicaProfile",
    "ServiceSpec",
    "Slot",
    "build_problem",
    "plan_inference",
    "plan_problem",
    "replica_profile",
]
