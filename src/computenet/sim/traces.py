"""Loaders for public GPU-cluster traces, each turned into the same ``Trace`` of ``TraceJob``.

Formats (``--trace-format``):

``openb``
    Alibaba's 2023 ``openb_pod_list_*.csv`` (Weng et al., ATC'23). A pod is a job; it runs
    from ``scheduled_time`` to ``deletion_time`` (seconds from the trace start) on
    ``num_gpu`` GPUs. For a shared GPU (``num_gpu == 1``), ``gpu_milli / 1000`` is read as
    the share of the GPU's power the pod draws. CPU-only pods (``num_gpu == 0``) and pods
    never scheduled (``Pending``, no ``scheduled_time``) are skipped, and counted. Pods whose
    ``deletion_time`` is the last second of the trace were still running when it was cut
    off: their run time is only a lower bound; they are kept (``cut_off``) and counted, or
    dropped with ``cutoff="drop"``.
``philly``
    Microsoft Philly run times as published in Alibaba's 2020 analysis
    (``alibaba_v2020_analysis_philly_runtime.csv``, one ``runtime`` column in seconds).
    The file has no arrival times and no job sizes, and is sorted by run time: run times are
    shuffled (seeded), arrivals filled as a Poisson process (``arrival_rate_per_h``), sizes
    drawn from ``PHILLY_GPU_MIX``.
``helios``
    SenseTime Helios 10-minute counts (``helios_venus_cluster_throughput_10min.csv``):
    ``submit_gpu_job`` jobs and ``submit_gpu_num`` GPUs per 10 minutes. Each job's arrival
    is drawn uniformly inside its 10 minutes, the GPUs of the interval are split among its
    jobs, and run times are drawn from a log-normal with the Venus cluster's published
    median (204 s) and mean (13,040.6 s) GPU run time (``helios_cluster_summary.csv``).
``gaia``
    The CSV of the GAIA carbon-aware scheduler (UMass, MIT licence):
    ``arrival_time,length,cpus``. GAIA's own code reads both times in seconds (it divides by
    3600 to get hours), which is the default here; its 100k-job traces are in hours (their
    arrivals span 8,760 of them): read them with ``time_unit="h"`` (``--time-unit h``).
    ``cpus`` is read as the number of accelerators.
``csv``
    The generic format, one job per line, header required, columns in any order::

        id,arrival_s,duration_s,accelerators,deadline_s,data_gb,classification,home_site,checkpointable,work_kind,walltime_s

    ``arrival_s`` and ``deadline_s`` are seconds from the trace start; ``duration_s`` the
    run time on the network's reference accelerator. Only ``arrival_s``, ``duration_s``
    and ``accelerators`` are required; an empty cell means "fill it" (see
    ``computenet.sim.workload.FillOptions``). ``classification`` is one of public,
    general, important, core, personal; ``checkpointable`` is true/false/1/0;
    ``work_kind`` is training (the default), inference or other (``model.WorkKind``: it
    sets the power a job draws); ``walltime_s`` the requested walltime (``sim.estimates``:
    filled by the over-request model when empty). A file whose
    times are in minutes or hours is read with ``time_unit`` (``--time-unit``).

The loaders of ``gaia`` and ``csv`` check that the times fit their unit (``check_units``):
more than 10,000 jobs, and most of the trace, arriving within one day, or most run times
under the one-minute floor, mean the file is in a larger unit than the one it was read
with; arrivals over more than ten years or a median run past a month, a smaller one. The
error names the ``--time-unit`` to try (``--no-unit-check`` reads the file as it is).
Every file is read through ``computenet.textfile``: UTF-8 with or without a byte-order
mark, each row as many fields as the header, or one error naming the file and the line.

Every loader is deterministic: the same file and seed give the same trace.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from computenet.errors import TraceFileError, UnknownNameError
from computenet.model import WorkKind
from computenet.textfile import CsvFile

MIN_DURATION_S = 60
"""Run times below one minute (Philly has many 0 s jobs) are raised to this floor: a job
that is placed at all holds its accelerators for at least a scheduling tick."""

# Philly job sizes: the trace gives none. Shares chosen so the mean (1.96 GPUs) and the
# median (1) match Philly's row in acme_cluster_summary.csv (avg_gpu_num 1.928, median 1).
PHILLY_GPU_MIX: tuple[tuple[int, float], ...] = (
    (1, 0.72),
    (2, 0.12),
    (4, 0.09),
    (8, 0.06),
    (16, 0.01),
)

# Venus cluster, helios_cluster_summary.csv: med_run_time_gpu, avg_run_time_gpu (seconds).
HELIOS_VENUS_MEDIAN_RUN_S = 204.0
HELIOS_VENUS_MEAN_RUN_S = 13040.598
MAX_SAMPLED_RUN_S = 7 * 86400  # a sampled run time is capped at a week

TRACE_FORMATS = ("openb", "philly", "helios", "gaia", "csv")

TIME_UNITS_S = {"s": 1.0, "min": 60.0, "h": 3600.0}
"""Units a ``gaia`` or ``csv`` trace may state its times in (``time_unit``, ``--time-unit``)."""
TIME_UNIT_NAMES = {"s": "seconds", "min": "minutes", "h": "hours"}

# Unit plausibility (``check_units``). A year of arrivals written in hours and read as
# seconds lands within 2.4 hours; run times of a few hours fall under the one-minute floor.
BURST_JOBS_PER_DAY = 10_000  # more than this many jobs, and most of the trace, within a day
MAX_PLAUSIBLE_SPAN_S = 10 * 365 * 86400  # arrivals spread over more than ten years
MAX_PLAUSIBLE_MEDIAN_RUN_S = 30 * 86400  # a median run time of more than a month


@dataclass(frozen=True)
class TraceJob:
    """One job as a trace records it. Times are seconds from the trace start.

    ``None`` means the trace does not say; ``FillOptions`` decides it later and the
    report lists what was filled. ``utilisation`` is the share of accelerator power drawn.
    """

    id: str
    arrival_s: int
    duration_s: int
    accelerators: int
    utilisation: float | None = None
    deadline_s: int | None = None
    data_gb: float | None = None
    classification: str | None = None
    home_site: str | None = None
    checkpointable: bool | None = None
    cut_off: bool = False
    work_kind: str | None = None  # a ``model.WorkKind`` value; None: training
    walltime_s: int | None = None  # requested walltime (``sim.estimates``); csv only


@dataclass(frozen=True)
class Trace:
    """A loaded trace: jobs sorted by (arrival, id), and notes on what reading it did."""

    name: str
    format: str
    source: str
    jobs: tuple[TraceJob, ...]
    notes: tuple[str, ...] = ()
    filled_by_loader: tuple[str, ...] = field(default=())

    @property
    def span_s(self) -> int:
        if not self.jobs:
            return 0
        return max(j.arrival_s for j in self.jobs) - min(j.arrival_s for j in self.jobs)

    @property
    def cut_off_jobs(self) -> int:
        return sum(1 for j in self.jobs if j.cut_off)

    def window(self, start_s: int, end_s: int) -> Trace:
        """Jobs arriving in ``[start_s, end_s)``, shifted so the window starts at 0."""
        jobs = tuple(
            replace(
                j,
                arrival_s=j.arrival_s - start_s,
                deadline_s=None if j.deadline_s is None else j.deadline_s - start_s,
            )
            for j in self.jobs
            if start_s <= j.arrival_s < end_s
        )
        note = (
            f"window: jobs arriving {start_s} s to {end_s} s after the trace start "
            f"({len(jobs)} jobs)"
        )
        return replace(self, jobs=jobs, notes=(*self.notes, note))

    def head(self, n: int) -> Trace:
        """The first ``n`` jobs."""
        if n >= len(self.jobs):
            return self
        return replace(self, jobs=self.jobs[:n], notes=(*self.notes, f"first {n} jobs only"))


# --------------------------------------------------------------------------- helpers


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV as dicts with their 1-based line numbers; checks the header, the
    encoding and the number of fields (``computenet.textfile``)."""
    if not path.is_file():
        raise TraceFileError("file not found", source=str(path), fix="pass an existing trace file")
    table = CsvFile(path, error=TraceFileError)
    table.require(required, fix="check --trace-format matches the file")
    yield from table.dicts()


def _num(row: dict[str, str], col: str, path: Path, line: int) -> float:
    text = (row.get(col) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise TraceFileError(
            f"column {col!r} is {text!r}, not a number",
            source=str(path),
            where=f"line {line}",
            fix="fix or remove that line",
        ) from None
    if not math.isfinite(value):
        raise TraceFileError(f"column {col!r} is {text!r}", source=str(path), where=f"line {line}")
    return value


MAX_TIME_S = 2**40
"""Times past this (about 35,000 years) are refused: they overflow the simulator's clock."""
MAX_COUNT = 100_000
"""Accelerators of one job, or jobs of one interval, past this are refused."""


def _whole_s(value: float, path: Path, line: int, col: str) -> int:
    """A time in seconds as a whole number, 0 to ``MAX_TIME_S``."""
    if not 0 <= value <= MAX_TIME_S:
        raise TraceFileError(
            f"column {col!r} is {value:g} s, out of range",
            source=str(path),
            where=f"line {line}",
            fix=f"times are seconds from the trace start, 0 to {MAX_TIME_S:,}",
        )
    return int(value)


def _count(value: float, path: Path, line: int, col: str) -> int:
    """A count (accelerators, jobs) as a whole number up to ``MAX_COUNT``."""
    if value > MAX_COUNT:
        raise TraceFileError(
            f"column {col!r} is {value:g}, more than {MAX_COUNT:,}",
            source=str(path),
            where=f"line {line}",
            fix="fix or remove that line",
        )
    return int(value)


MAX_RUN_S = 366 * 86400
"""A job running more than a year is refused: no GPU trace holds one, and the simulator's
time grid (and its lower bound) grows with the longest run."""
MAX_SPAN_S = 20 * 365 * 86400
"""Arrivals spread over more than twenty years are refused, for the same reason."""


def _sorted(jobs: list[TraceJob], path: Path) -> tuple[TraceJob, ...]:
    """The jobs in arrival order, after checking that the trace fits the simulator."""
    ordered = tuple(sorted(jobs, key=lambda j: (j.arrival_s, j.id)))
    longest = max(ordered, key=lambda j: j.duration_s, default=None)
    if longest is not None and longest.duration_s > MAX_RUN_S:
        raise TraceFileError(
            f"job {longest.id!r} runs {longest.duration_s / 86400:,.0f} days, more than a year",
            source=str(path),
            fix="check the time unit (--time-unit) or remove that job",
        )
    if ordered and ordered[-1].arrival_s - ordered[0].arrival_s > MAX_SPAN_S:
        years = (ordered[-1].arrival_s - ordered[0].arrival_s) / (365 * 86400)
        raise TraceFileError(
            f"its arrivals span {years:,.0f} years, more than {MAX_SPAN_S // (365 * 86400)}",
            source=str(path),
            fix="check the time unit (--time-unit) or split the trace",
        )
    return ordered


def _lognormal_from_median_mean(
    rng: np.random.Generator, median_s: float, mean_s: float, n: int
) -> np.ndarray:
    """Draw ``n`` log-normal values with the given median and mean (mean > median)."""
    mu = math.log(median_s)
    sigma = math.sqrt(2.0 * math.log(mean_s / median_s))
    return np.asarray(rng.lognormal(mu, sigma, size=n), dtype=np.float64)


# --------------------------------------------------------------------------- loaders


def load_openb(path: Path, *, cutoff: str = "keep") -> Trace:
    """Alibaba openb pod list; see the module docstring for what is kept and why."""
    if cutoff not in ("keep", "drop"):
        raise TraceFileError(f"cutoff must be keep or drop, got {cutoff!r}", source="cutoff")
    cols = (
        "name",
        "num_gpu",
        "gpu_milli",
        "pod_phase",
        "creation_time",
        "deletion_time",
        "scheduled_time",
    )
    raw: list[tuple[int, dict[str, str]]] = list(_rows(path, cols))
    end_s = max(
        (_whole_s(_num(r, "deletion_time", path, i), path, i, "deletion_time") for i, r in raw),
        default=0,
    )
    jobs: list[TraceJob] = []
    cpu_only = never_scheduled = cut = dropped_cut = 0
    for line, row in raw:
        gpus = _count(_num(row, "num_gpu", path, line), path, line, "num_gpu")
        if gpus <= 0:
            cpu_only += 1
            continue
        if not (row.get("scheduled_time") or "").strip():
            never_scheduled += 1
            continue
        sched = _whole_s(_num(row, "scheduled_time", path, line), path, line, "scheduled_time")
        deleted = _whole_s(_num(row, "deletion_time", path, line), path, line, "deletion_time")
        created = _whole_s(_num(row, "creation_time", path, line), path, line, "creation_time")
        is_cut = deleted >= end_s and row["pod_phase"].strip() == "Running"
        if is_cut:
            cut += 1
            if cutoff == "drop":
                dropped_cut += 1
                continue
        milli = (
            _num(row, "gpu_milli", path, line) if (row.get("gpu_milli") or "").strip() else 1000.0
        )
        share = min(1.0, max(0.05, milli / 1000.0)) if gpus == 1 else 1.0
        jobs.append(
            TraceJob(
                id=row["name"].strip(),
                arrival_s=created,
                duration_s=max(MIN_DURATION_S, deleted - sched),
                accelerators=gpus,
                utilisation=share,
                cut_off=is_cut,
            )
        )
    notes = [
        f"{len(raw)} pods read; {cpu_only} CPU-only pods skipped; "
        f"{never_scheduled} pods never scheduled (Pending) skipped",
        f"{cut} pods were still running at the trace end ({end_s} s): their run time is cut off "
        + ("and they were dropped" if cutoff == "drop" else "and is used as a lower bound"),
        "shared GPUs (num_gpu 1, gpu_milli < 1000) count as one accelerator "
        "drawing gpu_milli/1000 of its power",
    ]
    return Trace(path.stem, "openb", str(path), _sorted(jobs, path), tuple(notes))


def _mix_draw(rng: np.random.Generator, mix: tuple[tuple[int, float], ...], n: int) -> np.ndarray:
    sizes = np.array([s for s, _ in mix])
    p = np.array([w for _, w in mix], dtype=np.float64)
    return np.asarray(rng.choice(sizes, size=n, p=p / p.sum()))


def load_philly(path: Path, *, seed: int = 0, arrival_rate_per_h: float = 60.0) -> Trace:
    """Philly run times with seeded Poisson arrivals and sizes from ``PHILLY_GPU_MIX``."""
    if arrival_rate_per_h <= 0:
        raise TraceFileError("arrival_rate_per_h must be positive", source="arrival_rate_per_h")
    runtimes = [
        _whole_s(_num(r, "runtime", path, i), path, i, "runtime")
        for i, r in _rows(path, ("runtime",))
    ]
    rng = np.random.default_rng(seed)
    n = len(runtimes)
    # The published file is sorted by run time, not by arrival: shuffle (seeded) so that
    # arrival order does not follow job length.
    order = rng.permutation(n)
    runtimes = [runtimes[int(k)] for k in order]
    gaps = rng.exponential(3600.0 / arrival_rate_per_h, size=n)
    arrivals = np.floor(np.cumsum(gaps) - (gaps[0] if n else 0.0)).astype(np.int64)
    sizes = _mix_draw(rng, PHILLY_GPU_MIX, n)
    floored = sum(1 for r in runtimes if r < MIN_DURATION_S)
    jobs = [
        TraceJob(
            f"philly-{i:06d}",
            int(arrivals[i]),
            max(MIN_DURATION_S, int(runtimes[i])),
            int(sizes[i]),
        )
        for i in range(n)
    ]
    notes = (
        f"{n} run times read; {floored} shorter than {MIN_DURATION_S} s "
        f"raised to {MIN_DURATION_S} s",
    )
    filled = (
        f"arrival times: Poisson process, {arrival_rate_per_h:g} jobs/h, seed {seed} "
        "(the file has none; it is sorted by run time, so run times are shuffled first)",
        "accelerators per job: drawn from "
        + ", ".join(f"{s}: {w:.0%}" for s, w in PHILLY_GPU_MIX)
        + " (mean and median of Philly in acme_cluster_summary.csv)",
    )
    return Trace(path.stem, "philly", str(path), _sorted(jobs, path), notes, filled)


def load_helios(path: Path, *, seed: int = 0) -> Trace:
    """Helios 10-minute submission counts expanded into jobs (see the module docstring)."""
    import datetime as dt

    cols = ("time", "submit_gpu_job", "submit_gpu_num")
    rng = np.random.default_rng(seed)
    jobs: list[TraceJob] = []
    origin: dt.datetime | None = None
    rows = 0
    for line, row in _rows(path, cols):
        rows += 1
        try:
            t = dt.datetime.fromisoformat(row["time"].strip())
            if t.tzinfo is not None:  # compare every time as naive UTC
                t = t.astimezone(dt.UTC).replace(tzinfo=None)
        except ValueError:
            raise TraceFileError(
                f"time {row['time']!r} is not 'YYYY-MM-DD HH:MM:SS'",
                source=str(path),
                where=f"line {line}",
            ) from None
        if origin is None:
            origin = t
        base = int((t - origin).total_seconds())
        if base < 0:
            raise TraceFileError(
                f"time {row['time'].strip()!r} is before the first row's",
                source=str(path),
                where=f"line {line}",
                fix="sort the rows by time, oldest first",
            )
        n = _count(_num(row, "submit_gpu_job", path, line), path, line, "submit_gpu_job")
        gpus = _count(_num(row, "submit_gpu_num", path, line), path, line, "submit_gpu_num")
        if n <= 0:
            continue
        gpus = max(gpus, n)
        # Split the interval's GPUs among its jobs: each gets one, the rest go to jobs drawn
        # in proportion to a Dirichlet share, so one large job per interval stays possible.
        extra = gpus - n
        shares = rng.dirichlet(np.full(n, 0.3)) if n > 1 else np.ones(1)
        alloc = np.ones(n, dtype=np.int64) + rng.multinomial(extra, shares)
        offsets = np.sort(rng.integers(0, 600, size=n))
        runs = _lognormal_from_median_mean(
            rng, HELIOS_VENUS_MEDIAN_RUN_S, HELIOS_VENUS_MEAN_RUN_S, n
        )
        for k in range(n):
            jobs.append(
                TraceJob(
                    id=f"helios-{base // 600:06d}-{k:03d}",
                    arrival_s=base + int(offsets[k]),
                    duration_s=int(min(MAX_SAMPLED_RUN_S, max(MIN_DURATION_S, runs[k]))),
                    accelerators=int(alloc[k]),
                )
            )
    notes = (f"{rows} ten-minute intervals read, {len(jobs)} GPU jobs",)
    filled = (
        f"arrival inside each 10 minutes: uniform, seed {seed}",
        "GPUs per job: the interval's submit_gpu_num split among its jobs "
        "(one each, the rest by a seeded Dirichlet share)",
        f"run times: log-normal with Venus's median {HELIOS_VENUS_MEDIAN_RUN_S:g} s and mean "
        f"{HELIOS_VENUS_MEAN_RUN_S:g} s (helios_cluster_summary.csv), {MIN_DURATION_S} s to 7 days",
    )
    return Trace(path.stem, "helios", str(path), _sorted(jobs, path), notes, filled)


def _unit_scale(time_unit: str) -> float:
    scale = TIME_UNITS_S.get(time_unit)
    if scale is None:
        raise UnknownNameError("time unit", time_unit, TIME_UNITS_S, source="--time-unit")
    return scale


def _max_jobs_within(arrivals_s: np.ndarray, window_s: int) -> int:
    """The most arrivals inside any ``window_s`` long interval (``arrivals_s`` sorted)."""
    if arrivals_s.size == 0:
        return 0
    ends = np.searchsorted(arrivals_s, arrivals_s + window_s, side="left")
    return int((ends - np.arange(arrivals_s.size)).max())


def check_units(
    path: Path, arrivals_s: list[int], runs_s: list[float], time_unit: str, fmt: str
) -> None:
    """Refuse times that only make sense in another unit, and say which flag to try.

    ``runs_s`` are the run times as read (before the ``MIN_DURATION_S`` floor), both in
    seconds after ``time_unit`` was applied. Seconds read as hours spread a month of
    arrivals over centuries; hours read as seconds squeeze a year into hours and put most
    run times under the one-minute floor.
    """
    if not arrivals_s:
        return
    arr = np.sort(np.asarray(arrivals_s, dtype=np.int64))
    runs = np.asarray(runs_s, dtype=np.float64)
    n = int(arr.size)
    in_a_day = _max_jobs_within(arr, 86400)
    short = int((runs < MIN_DURATION_S).sum())
    median_run_s = float(np.median(runs))
    span_s = int(arr[-1] - arr[0])
    smaller = [u for u, f in TIME_UNITS_S.items() if f < TIME_UNITS_S[time_unit]]
    larger = [u for u, f in TIME_UNITS_S.items() if f > TIME_UNITS_S[time_unit]]
    why = ""
    try_unit = ""
    if larger and in_a_day > BURST_JOBS_PER_DAY and 2 * in_a_day > n:
        why = f"{in_a_day:,} of its {n:,} jobs arrive within one day"
        try_unit = larger[-1]
    elif larger and n >= 10 and 2 * short > n:
        why = f"{short:,} of its {n:,} run times are shorter than {MIN_DURATION_S} s"
        try_unit = larger[-1]
    elif smaller and (span_s > MAX_PLAUSIBLE_SPAN_S or median_run_s > MAX_PLAUSIBLE_MEDIAN_RUN_S):
        why = (
            f"its arrivals span {span_s / (365 * 86400):,.0f} years"
            if span_s > MAX_PLAUSIBLE_SPAN_S
            else f"its median run time is {median_run_s / 86400:,.0f} days"
        )
        try_unit = smaller[0]
    if why:
        raise TraceFileError(
            f"read with times in {TIME_UNIT_NAMES[time_unit]}, {why}: the file's times are "
            f"likely in {TIME_UNIT_NAMES[try_unit]}",
            source=str(path),
            fix=f"try --time-unit {try_unit} (time_unit={try_unit!r}); if the {fmt} trace is "
            "right as it is, pass --no-unit-check (unit_check=False)",
        )


def load_gaia(path: Path, *, time_unit: str = "s", unit_check: bool = True) -> Trace:
    """GAIA's ``arrival_time,length,cpus`` CSV; ``time_unit`` is ``"s"`` (GAIA's own code, and
    its ``pai_1k.csv``), ``"min"`` or ``"h"`` (GAIA's 100k-job traces); ``check_units``
    refuses a unit the times do not fit unless ``unit_check`` is false."""
    scale = _unit_scale(time_unit)
    jobs = []
    runs: list[float] = []
    for i, (line, row) in enumerate(_rows(path, ("arrival_time", "length", "cpus"))):
        run_s = _num(row, "length", path, line) * scale
        runs.append(run_s)
        jobs.append(
            TraceJob(
                id=f"gaia-{i:06d}",
                arrival_s=_whole_s(
                    _num(row, "arrival_time", path, line) * scale, path, line, "arrival_time"
                ),
                duration_s=max(MIN_DURATION_S, _whole_s(run_s, path, line, "length")),
                accelerators=max(1, _count(_num(row, "cpus", path, line), path, line, "cpus")),
            )
        )
    if unit_check:
        check_units(path, [j.arrival_s for j in jobs], runs, time_unit, "gaia")
    unit = TIME_UNIT_NAMES[time_unit]
    notes = (
        f"{len(jobs)} jobs read; arrival_time and length in {unit}; cpus read as accelerators",
    )
    return Trace(path.stem, "gaia", str(path), _sorted(jobs, path), notes)


WORK_KINDS = tuple(str(k) for k in WorkKind)
_TRUE = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def load_csv(path: Path, *, time_unit: str = "s", unit_check: bool = True) -> Trace:
    """The generic CSV described in the module docstring. Its times are seconds; a file
    written in minutes or hours is read with ``time_unit`` (``check_units`` refuses one
    whose times do not fit the unit, unless ``unit_check`` is false)."""
    scale = _unit_scale(time_unit)
    jobs = []
    runs: list[float] = []
    for i, (line, row) in enumerate(_rows(path, ("arrival_s", "duration_s", "accelerators"))):

        def opt(col: str, _row: dict[str, str] = row) -> str | None:
            text = (_row.get(col) or "").strip()
            return text or None

        def seconds(col: str, _row: dict[str, str] = row, _line: int = line) -> int:
            return _whole_s(_num(_row, col, path, _line) * scale, path, _line, col)

        ck_text = opt("checkpointable")
        if ck_text is not None and ck_text.lower() not in _TRUE:
            raise TraceFileError(
                f"checkpointable is {ck_text!r}",
                source=str(path),
                where=f"line {line}",
                fix="use true or false",
            )
        kind = opt("work_kind")
        if kind is not None and kind.lower() not in WORK_KINDS:
            raise TraceFileError(
                f"work_kind is {kind!r}",
                source=str(path),
                where=f"line {line}",
                fix=f"use one of: {', '.join(WORK_KINDS)} (or leave it empty for training)",
            )
        accelerators = _count(_num(row, "accelerators", path, line), path, line, "accelerators")
        if accelerators < 1:
            raise TraceFileError(
                "accelerators must be at least 1", source=str(path), where=f"line {line}"
            )
        data_gb = None if opt("data_gb") is None else _num(row, "data_gb", path, line)
        if data_gb is not None and data_gb < 0:
            raise TraceFileError(
                f"data_gb is {data_gb:g}, below 0", source=str(path), where=f"line {line}"
            )
        runs.append(_num(row, "duration_s", path, line) * scale)
        jobs.append(
            TraceJob(
                id=opt("id") or f"job-{i:06d}",
                arrival_s=seconds("arrival_s"),
                duration_s=max(1, seconds("duration_s")),
                accelerators=accelerators,
                deadline_s=None if opt("deadline_s") is None else seconds("deadline_s"),
                data_gb=data_gb,
                classification=opt("classification"),
                home_site=opt("home_site"),
                checkpointable=None if ck_text is None else _TRUE[ck_text.lower()],
                work_kind=None if kind is None else kind.lower(),
                walltime_s=None if opt("walltime_s") is None else seconds("walltime_s"),
            )
        )
    counts = Counter(j.id for j in jobs)
    dup = sorted(x for x, k in counts.items() if k > 1)[:3]
    if dup:
        raise TraceFileError(
            f"duplicate job id(s) {', '.join(dup)}", source=str(path), fix="make ids unique"
        )
    if unit_check:
        check_units(path, [j.arrival_s for j in jobs], runs, time_unit, "csv")
    return Trace(path.stem, "csv", str(path), _sorted(jobs, path), (f"{len(jobs)} jobs read",))


def load_trace(path: str | Path, fmt: str, *, seed: int = 0, **options: object) -> Trace:
    """Load a trace by format name (one of ``TRACE_FORMATS``)."""
    p = Path(path)
    loaders: dict[str, Callable[[], Trace]] = {
        "openb": lambda: load_openb(p, **options),  # type: ignore[arg-type]
        "philly": lambda: load_philly(p, seed=seed, **options),  # type: ignore[arg-type]
        "helios": lambda: load_helios(p, seed=seed),
        "gaia": lambda: load_gaia(p, **options),  # type: ignore[arg-type]
        "csv": lambda: load_csv(p, **options),  # type: ignore[arg-type]
    }
    if fmt not in loaders:
        raise UnknownNameError("trace format", fmt, loaders, source="--trace-format")
    return loaders[fmt]()
