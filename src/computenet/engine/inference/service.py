"""What an inference service asks for, and the demand it serves. Pure data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from computenet.engine.inference.profile import (
    DEFAULT_KV_GB_PER_SEQUENCE,
    DEFAULT_WEIGHTS_GB,
    PROFILES,
)
from computenet.errors import InputError
from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T, HOUR_S, Classification, FloatArray

RESIDENT_CLASSES = frozenset(
    {Classification.PERSONAL, Classification.IMPORTANT, Classification.CORE}
)
"""Prompt data classes served only inside the user's own jurisdiction (PIPL Art. 38-40 and
the Data Security Law for important and core data; CHINA_FACTS.md §4)."""


@dataclass(frozen=True)
class ServiceSpec:
    """A model deployment and its latency target.

    ``ttft_target_ms`` bounds the time to first token at p99: network round trip + queueing
    (at ``max_utilisation``) + prefill of a ``prompt_tokens_p99`` prompt. ``headroom`` is the
    share of capacity kept on top of the forecast hourly demand against forecast error and
    the minutes above the hour's mean. ``warmup_s`` is how long a new replica loads its
    weights at busy power before it serves (priced, with the weights' transfer).
    """

    id: str
    ttft_target_ms: float
    prompt_tokens_mean: float
    prompt_tokens_p99: float
    output_tokens_mean: float
    accelerator_types: tuple[str, ...] = ()
    accelerators_per_replica: int = 1
    weights_gb: float = DEFAULT_WEIGHTS_GB
    kv_gb_per_sequence: float = DEFAULT_KV_GB_PER_SEQUENCE
    data_class: Classification = Classification.GENERAL
    min_replicas: int = 1
    max_utilisation: float = 0.8
    headroom: float = 0.15
    warmup_s: float = 120.0
    profile: str = "memory-bound"

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("ttft_target_ms", self.ttft_target_ms > 0, "a positive number of ms, e.g. 1500"),
            ("prompt_tokens_mean", self.prompt_tokens_mean > 0, "a positive token count"),
            ("prompt_tokens_p99", self.prompt_tokens_p99 > 0, "a positive token count"),
            ("output_tokens_mean", self.output_tokens_mean > 0, "a positive token count"),
            ("accelerators_per_replica", self.accelerators_per_replica >= 1, "1 or more"),
            ("min_replicas", self.min_replicas >= 0, "0 or more"),
            ("max_utilisation", 0 < self.max_utilisation < 1, "a share in (0, 1), e.g. 0.8"),
            ("headroom", 0 <= self.headroom <= 2, "a share in [0, 2], e.g. 0.15"),
            ("warmup_s", self.warmup_s >= 0, "0 or more seconds"),
            ("weights_gb", self.weights_gb > 0, "the model's weights in GB, e.g. 13.5"),
        ]
        for name, ok, fix in checks:
            value = getattr(self, name)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise InputError(f"{name} {value!r} is out of range", where=name, fix=fix)
        if self.profile not in PROFILES:
            raise InputError(
                f"profile {self.profile!r} is unknown",
                where="profile",
                fix=f"one of {', '.join(PROFILES)}",
            )

    @property
    def resident(self) -> bool:
        """Whether prompts must be served in the user's own jurisdiction."""
        return Classification(self.data_class) in RESIDENT_CLASSES


@dataclass(frozen=True)
class Demand:
    """Forecast mean requests per second per user region (rows, ``region_ids``) and hour
    (columns) from ``start_s`` (UTC, on the hour)."""

    region_ids: tuple[str, ...]
    rps: FloatArray
    start_s: int
    source: str = ""

    def __post_init__(self) -> None:
        rps = np.asarray(self.rps, dtype=np.float64)
        if rps.ndim != 2 or rps.shape[0] != len(self.region_ids):
            raise InputError(
                f"demand has shape {rps.shape}, not (regions={len(self.region_ids)}, hours)",
                where="demand",
                fix="give one row of hourly requests/s per user region",
            )
        if not np.all(np.isfinite(rps)) or np.any(rps < 0):
            raise InputError(
                "demand has a negative or non-finite rate",
                where="demand",
                fix="requests/s are finite and >= 0",
            )
        if self.start_s % HOUR_S:
            raise InputError(
                f"start {self.start_s} is not on the hour", where="start_s", fix="round it"
            )
        object.__setattr__(self, "rps", rps)

    @property
    def hours(self) -> int:
        return int(self.rps.shape[1])


@dataclass(frozen=True)
class InferenceRequest:
    """One placement question: a service, its demand and the policy that answers.

    ``initial_replicas`` maps ``(site_id, accelerator)`` to replicas already warm at
    ``start_s`` (they start without warm-up).
    """

    spec: ServiceSpec
    demand: Demand
    policy: str = "cost-carbon"
    carbon_price_cny_per_t: float = DEFAULT_CARBON_PRICE_CNY_PER_T
    method: str = "auto"  # "milp", "heuristic" or "auto" (MILP while small)
    initial_replicas: tuple[tuple[str, str, int], ...] = field(default=())
