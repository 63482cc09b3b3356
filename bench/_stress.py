"""Synthetic traces for the stress section of ``bench/simulate.py``.

* ``burst``: ``n`` jobs arriving within one hour (uniformly, seeded);
* ``pai_year``: ``n`` jobs over 8,760 hours shaped like the Alibaba PAI GPU jobs of the
  100,000-job traces in GAIA's repository (umassos/GAIA, derived from Alibaba's
  cluster-trace-gpu-v2020 of Weng et al., "MLaaS in the Wild", NSDI'22), as the issue gives
  their statistics: median run about 0.7 h, mean about 2.3 h, a tail past 70 h. A log-normal
  with that median and mean (log-sd 1.54) has about 0.14 % of runs past 70 h; runs are cut at
  the 8,760-hour year. Gangs are powers of two up to twice a site's capacity (the largest
  ones rare), so some jobs fit no site and must come back infeasible.

Both draw run times, gangs and arrivals from one seeded generator: same seed, same trace.
"""

from __future__ import annotations

import math

import numpy as np

from computenet.sim.traces import Trace, TraceJob

PAI_MEDIAN_RUN_H = 0.7
PAI_MEAN_RUN_H = 2.3
PAI_SIGMA = math.sqrt(2 * math.log(PAI_MEAN_RUN_H / PAI_MEDIAN_RUN_H))


def _runs_h(rng: np.random.Generator, n: int) -> np.ndarray:
    runs = rng.lognormal(math.log(PAI_MEDIAN_RUN_H), PAI_SIGMA, n)
    return np.clip(runs, 1 / 60, 8760.0)


def _gangs(rng: np.random.Generator, n: int, site_capacity: int) -> np.ndarray:
    """Powers of two from 1 up to twice ``site_capacity``; each size half as likely as the
    one below it (so the mean is small, and gangs past a site's capacity are rare)."""
    top = max(1, 2 * site_capacity)
    sizes = [1 << k for k in range(int(math.log2(top)) + 1)]
    if sizes[-1] < top:
        sizes.append(top)
    w = np.array([0.5**k for k in range(len(sizes))])
    return np.array(sizes)[rng.choice(len(sizes), size=n, p=w / w.sum())]


def _trace(name: str, arrivals: np.ndarray, runs_h: np.ndarray, gangs: np.ndarray) -> Trace:
    order = np.argsort(arrivals, kind="stable")
    jobs = tuple(
        TraceJob(
            id=f"{name}-{i}",
            arrival_s=int(arrivals[i]),
            duration_s=max(60, round(float(runs_h[i]) * 3600)),
            accelerators=int(gangs[i]),
        )
        for i in order
    )
    return Trace(name=name, format="synthetic", source="bench/_stress.py", jobs=jobs)


def burst(n: int, site_capacity: int, seed: int = 0) -> Trace:
    """``n`` jobs arriving within one hour, PAI-shaped runs and gangs."""
    rng = np.random.default_rng(seed)
    arrivals = np.sort(rng.integers(0, 3600, n))
    return _trace("burst", arrivals, _runs_h(rng, n), _gangs(rng, n, site_capacity))


def pai_year(n: int, site_capacity: int, seed: int = 0) -> Trace:
    """``n`` PAI-shaped jobs arriving uniformly over 8,760 hours."""
    rng = np.random.default_rng(seed + 1)
    arrivals = np.sort(rng.integers(0, 8760 * 3600, n))
    return _trace("pai-year", arrivals, _runs_h(rng, n), _gangs(rng, n, site_capacity))
