"""Run-time estimates: what a real scheduler knows of a job's length, and what it predicts.

A job carries two lengths. Its *actual* run time (``TrainingJob.work_h`` in the workload)
is known only to the simulator, which runs the job for it. Its *requested walltime*
(``Workload.walltime_h``) is what the user asked for: taken from the trace where it gives
one (the ``csv`` format's ``walltime_s`` column), else drawn by ``requested_walltime_s``.
Under ``SimConfig.knowledge == "estimate"`` the engine plans with an ``Estimator``'s
prediction, never the actual run time; the simulator stops a job that reaches its
walltime (Slurm's TIMEOUT: no extension) and frees the accelerators of a job that ends
before its reservation at once.

The over-request model (modelled, stated in every report that uses it) combines two
published observations on the Parallel Workloads Archive:

* the "f-model" of Mu'alem and Feitelson (IEEE TPDS 12(6), 2001, "Utilization,
  predictability, workloads, and user runtime estimates in scheduling the IBM SP2 with
  backfilling"): a request drawn uniformly from ``[r, (f + 1) r]`` for an actual run ``r``;
* Tsafrir, Etsion and Feitelson (JSSPP 2005, "Modeling user runtime estimates"): users
  pick a few round values (15 min, 30 min, 1 h, 2 h, 4 h, ... a day, ...), so the draw is
  rounded up to the next of ``ROUND_VALUES_S`` (whole days beyond them).

Users who under-request (killed at their limit) are not drawn: every filled walltime is at
least the actual run. ``f`` is ``FillOptions.walltime_f`` (default ``DEFAULT_WALLTIME_F``).

Estimators (``SimConfig.estimator``), stated per run:

``walltime``
    The requested walltime less the work already done: what Slurm's backfill plans with.
``class-mean``
    As GAIA's class averages: jobs fall into classes by requested walltime
    (``CLASS_BOUNDS_H``); a job is predicted to run as long as the mean actual run of the
    jobs of its class that have already finished (less the work it has done), its
    walltime while its class has no history, never more than its walltime. A job that
    outlives its prediction keeps running (``Simulator._extend``).
``auto``
    Stated per policy: ``walltime`` for the policies that move work across sites
    (``MOVERS``), ``class-mean`` for those that keep it at home. A mover that underestimates
    holds capacity at a site it copied data to past its reservation and bumps the work
    planned there; on the openb bench greedy with ``class-mean`` kept 15 % of its oracle
    carbon saving on ten zones against 106 % with ``walltime``, while the policies that stay
    at home kept more with ``class-mean`` (``bench/uncertainty.py``).
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from computenet.errors import InputError

KNOWLEDGE = ("oracle", "estimate")
ESTIMATORS = ("walltime", "class-mean", "auto")
MOVERS = frozenset({"greedy", "milp", "priced", "cheapest-now", "carbon-now", "bound"})
"""Policies that move work across sites: ``auto`` gives them ``walltime``."""
DEFAULT_WALLTIME_F = 2.0
ROUND_VALUES_S = tuple(
    int(h * 3600) for h in (0.25, 0.5, 1, 2, 4, 6, 8, 12, 24, 48, 72, 96, 120, 168)
)
CLASS_BOUNDS_H = (1.0, 4.0, 24.0)  # classes: <= 1 h, <= 4 h, <= 24 h, longer


def round_up_s(seconds: float) -> int:
    """The smallest round value (``ROUND_VALUES_S``, then whole days) at least ``seconds``."""
    i = bisect.bisect_left(ROUND_VALUES_S, seconds)
    if i < len(ROUND_VALUES_S):
        return ROUND_VALUES_S[i]
    return int(math.ceil(seconds / 86400) * 86400)


def requested_walltime_s(actual_s: np.ndarray, u: np.ndarray, f: float) -> np.ndarray:
    """Requested walltimes for actual runs ``actual_s``, from uniform draws ``u`` in [0, 1):
    the f-model's ``r (1 + f u)`` rounded up to a round value (module docstring)."""
    if not math.isfinite(f) or f < 0:
        raise InputError("walltime f must be a number >= 0", source="walltime model")
    raw = np.asarray(actual_s, dtype=np.float64) * (1.0 + f * np.asarray(u))
    return np.array([round_up_s(float(x)) for x in raw], dtype=np.int64)


class Estimator:
    """Predicts the run left of a job from what a scheduler knows: its walltime and the
    work it has done (both in reference hours), and the jobs already finished."""

    name = "walltime"

    def predict(self, walltime_h: float, done_h: float) -> float:
        return max(0.0, walltime_h - done_h)

    def observe(self, walltime_h: float | None, actual_h: float) -> None:
        """A job of walltime ``walltime_h`` finished after ``actual_h`` (ignored here)."""


class ClassMean(Estimator):
    """GAIA-style class averages (module docstring)."""

    name = "class-mean"

    def __init__(self) -> None:
        self._sum = [0.0] * (len(CLASS_BOUNDS_H) + 1)
        self._n = [0] * (len(CLASS_BOUNDS_H) + 1)

    @staticmethod
    def _class(walltime_h: float) -> int:
        return bisect.bisect_left(CLASS_BOUNDS_H, walltime_h)

    def predict(self, walltime_h: float, done_h: float) -> float:
        left = max(0.0, walltime_h - done_h)
        c = self._class(walltime_h)
        if not self._n[c]:
            return left
        mean = self._sum[c] / self._n[c]
        return left if mean <= done_h else min(left, mean - done_h)

    def observe(self, walltime_h: float | None, actual_h: float) -> None:
        if walltime_h is None or not math.isfinite(walltime_h):
            return
        c = self._class(walltime_h)
        self._sum[c] += actual_h
        self._n[c] += 1


def resolve(name: str, policy: str) -> str:
    """The estimator ``name`` means for ``policy`` (``auto``: module docstring)."""
    if name != "auto":
        return name
    return "walltime" if policy in MOVERS else "class-mean"


def estimator(knowledge: str, name: str, policy: str = "") -> Estimator | None:
    """The estimator a run of ``policy`` plans with; ``None`` for the oracle."""
    if knowledge not in KNOWLEDGE:
        raise InputError(
            f"unknown knowledge {knowledge!r}", source="--knowledge", fix="use oracle or estimate"
        )
    if name not in ESTIMATORS:
        raise InputError(
            f"unknown estimator {name!r}",
            source="--estimator",
            fix="use walltime, class-mean or auto",
        )
    if knowledge == "oracle":
        return None
    return ClassMean() if resolve(name, policy) == "class-mean" else Estimator()
