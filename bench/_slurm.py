"""Timing Slurm dispatches for the benchmarks: how long ``submit`` takes and how soon each
job runs. Each job writes the time its first command ran (``date +%s.%N``) into its run
directory, so "running" is measured to the millisecond, not at Slurm's one-second
``StartTime`` granularity or a polling interval."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from computenet.executors.base import Dispatch
from computenet.executors.slurm import SlurmExecutor


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def dispatch_timing(
    executors: Sequence[SlurmExecutor],
    jobs: int,
    *,
    accelerators: int = 0,
    run_s: float = 1.0,
    wait_s: float = 600.0,
) -> dict[str, float]:
    """Submit ``jobs`` jobs round-robin over ``executors`` (one per site), each running
    ``run_s`` seconds, and wait until all have started (at most ``wait_s``).

    Returns ``submit_ms_median``/``_p90`` (our ``submit``: a queue lookup by name, then
    sbatch), ``start_s_median``/``_p90``/``_max`` (from submit returning to the job's first
    command), ``started`` and ``jobs_per_s`` (jobs started per second from the first
    submission to the last start).
    """
    tag = uuid.uuid4().hex[:8]
    submitted: dict[str, tuple[Path, float]] = {}
    submit_s: list[float] = []
    for i in range(jobs):
        ex = executors[i % len(executors)]
        request_id = f"bench-{tag}-{i}"
        command = f"date +%s.%N > started; sleep {run_s}"
        dispatch = Dispatch(request_id, request_id, "bench", command, accelerators, "H100", 600)
        before = time.time()
        ex.submit(dispatch)
        submit_s.append(time.time() - before)
        submitted[request_id] = (ex.root / request_id / "started", before + submit_s[-1])
    starts = _wait_for_starts(submitted, wait_s)
    first = min(t for _, t in submitted.values()) - submit_s[0]
    waits = sorted(starts[r] - submitted[r][1] for r in starts)
    submit_s.sort()
    return {
        "submit_ms_median": 1000 * statistics.median(submit_s),
        "submit_ms_p90": 1000 * _quantile(submit_s, 0.9),
        "start_s_median": statistics.median(waits) if waits else float("nan"),
        "start_s_p90": _quantile(waits, 0.9) if waits else float("nan"),
        "start_s_max": waits[-1] if waits else float("nan"),
        "started": float(len(starts)),
        "jobs_per_s": len(starts) / (max(starts.values()) - first) if starts else 0.0,
    }


def _wait_for_starts(submitted: dict[str, tuple[Path, float]], wait_s: float) -> dict[str, float]:
    """The start time each job wrote, for those that wrote one within ``wait_s``."""
    starts: dict[str, float] = {}
    deadline = time.monotonic() + wait_s
    while len(starts) < len(submitted) and time.monotonic() < deadline:
        for request_id, (path, _) in submitted.items():
            if request_id not in starts:
                text = path.read_text().strip() if path.exists() else ""
                if text:
                    starts[request_id] = float(text)
        time.sleep(0.1)
    return starts
