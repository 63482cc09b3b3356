"""Shared by ``cheapest-now`` and ``carbon-now``: start as soon as possible at each site,
and pick the site that is best *at that moment* under one measure."""

from __future__ import annotations

import numpy as np

from computenet.engine.policies.base import Decision, Pick, start_matrix, tol
from computenet.engine.problem import INF, JobView, Problem


def choose_now(pb: Problem, v: JobView, metric: str, note: str) -> Decision:
    opts = pb.options(v, metric)
    if opts.width == 0:
        return Decision(opts)
    starts = start_matrix(pb, v, opts)
    col = np.argmin(starts, axis=1)  # each site's earliest start
    rows = np.arange(len(v.pairs))
    first = starts[rows, col]
    val = np.where(np.isfinite(first), opts.value[rows, col], INF)
    m = float(val.min())
    if m == INF:
        return Decision(opts)
    # Lowest value; ties to the earliest start, then network order.
    cand = np.flatnonzero(val <= m + tol(m))
    i = int(cand[np.argmin(first[cand])])
    c = int(col[i])
    return Decision(opts, Pick(i, c, float(val[i]), note), row_best=(val, col))
