"""From a trace to the engine's work: fill what the trace lacks, shift it onto the signals' year.

A trace says when jobs arrived, how long they ran and on how many accelerators. The engine
also needs a deadline, the dataset each job reads (size, data class, home site) and whether
the job can checkpoint. ``FillOptions`` decides those with documented, seeded rules, and
``Workload.filled`` says in plain words what was filled, for the report.

The built-in demo workload (``demo_trace``) follows the published statistics of the Helios
GPU clusters of SenseTime (Hu et al., SC'21; ``helios_cluster_summary.csv`` and the
"Helios" row of ``acme_cluster_summary.csv``), typed here as facts:

* GPUs per job: mean 3.716, median 1 (Helios, all four clusters);
* GPU run time: median 206 s, mean 6,651.7 s (Helios, all clusters).

The demo keeps only jobs of at least 10 minutes: under the fitted log-normal those are about
a third of GPU jobs but about 99% of GPU time, and shorter jobs are not worth shifting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from computenet.errors import InputError
from computenet.model import Classification, Dataset, Network, Role, TrainingJob, WorkKind
from computenet.sim import estimates
from computenet.sim.traces import Trace, TraceJob

# Helios (SC'21), all clusters: acme_cluster_summary.csv row "Helios".
HELIOS_MEDIAN_RUN_S = 206.0
HELIOS_MEAN_RUN_S = 6651.681
# GPUs per job, powers of two; shares chosen so the mean is 3.69 (published 3.716) and the
# median is 1 (published 1).
HELIOS_GPU_MIX: tuple[tuple[int, float], ...] = (
    (1, 0.557),
    (2, 0.12),
    (4, 0.12),
    (8, 0.15),
    (16, 0.04),
    (32, 0.012),
    (64, 0.001),
)
DEMO_MIN_RUN_S = 600
DEMO_MAX_RUN_S = 3 * 86400

DEFAULT_CLASS_MIX: tuple[tuple[str, float], ...] = (
    ("public", 0.30),
    ("general", 0.45),
    ("important", 0.10),
    ("core", 0.05),
    ("personal", 0.10),
)


@dataclass(frozen=True)
class FillOptions:
    """How to fill what a trace does not say. Every draw comes from ``seed``.

    * deadline: ``arrival + max(deadline_slack x run time, run time + min_slack_h)``;
    * dataset: one per job, size log-normal with median ``data_gb_median`` GB and log-sd
      ``data_gb_sigma``; class drawn from ``classification_mix``;
    * home site (where the data lives and where ``fifo-home`` runs the job): ``home`` is
      ``capacity`` (sites drawn in proportion to their accelerators), ``uniform``, ``east``
      (east and edge sites, by accelerators: data is born where users are) or ``auto``
      (``east`` when the network has such sites, else ``capacity``);
    * checkpointable: with probability ``checkpointable_share``, every
      ``checkpoint_interval_s`` of run time;
    * power: a job draws ``utilisation`` of its accelerators' power (times the trace's
      GPU share where it gives one);
    * waiting allowance by length class (``wait_allowance``, as GAIA's ``6x24``): pairs
      ``(longest run s, allowance s)`` in increasing order; given, a job may start up to
      the allowance of the first class its length fits after its arrival (its start-by,
      ``Workload.start_by``) and its deadline is that plus its run time, in place of the
      slack rule (the class is read from the run time, or from the requested walltime with
      ``deadline_from="walltime"``);
    * requested walltime: where the trace gives none, the over-request model of
      ``sim.estimates`` with ``walltime_f``.
    """

    seed: int = 0
    deadline_slack: float = 2.0
    min_slack_h: float = 6.0
    data_gb_median: float = 50.0
    data_gb_sigma: float = 1.5
    classification_mix: tuple[tuple[str, float], ...] = DEFAULT_CLASS_MIX
    home: str = "auto"
    checkpointable_share: float = 0.7
    checkpoint_interval_s: int = 3600
    utilisation: float = 0.8
    personal_individuals: int = 50_000
    wait_allowance: tuple[tuple[float, float], ...] = ()
    deadline_from: str = "run"
    """What the deadline rules take as "run time": ``run``, the actual run (the trace's);
    ``walltime``, the requested walltime, the only length a user knows when setting a
    deadline (for comparisons of oracle and estimates on equal terms). With waiting
    allowances it picks the length class; the deadline adds the actual run."""
    walltime_f: float = estimates.DEFAULT_WALLTIME_F

    def describe(self) -> list[str]:
        mix = ", ".join(f"{c} {w:.0%}" for c, w in self.classification_mix)
        if self.wait_allowance:
            deadline = "deadline: arrival + run time + waiting allowance by run time (" + (
                ", ".join(f"{_hours(r)}: {_hours(a)}" for r, a in self.wait_allowance) + ")"
            )
        else:
            deadline = (
                f"deadline: arrival + max({self.deadline_slack:g} x run time, "
                f"run time + {self.min_slack_h:g} h)"
            )
        if self.deadline_from == "walltime":
            deadline = deadline.replace("run time", "requested walltime")
        return [
            deadline,
            f"dataset per job: log-normal size, median {self.data_gb_median:g} GB "
            f"(log-sd {self.data_gb_sigma:g})",
            f"data class mix: {mix}",
            f"home site: {self.home}",
            f"checkpointable: {self.checkpointable_share:.0%} of jobs, "
            f"every {self.checkpoint_interval_s // 60} min",
            f"power drawn: {self.utilisation:.0%} of accelerator power",
            f"requested walltime where the trace has none: actual run x (1 + {self.walltime_f:g}"
            " x U(0,1)) rounded up to a round value (modelled: Mu'alem & Feitelson 2001 "
            "f-model, Tsafrir et al. 2005 round values)",
            f"seed: {self.seed}",
        ]


def _hours(s: float) -> str:
    return "inf" if math.isinf(s) else f"{s / 3600:g}h"


def parse_wait_allowance(text: str) -> tuple[tuple[float, float], ...]:
    """``"2h:6h,inf:24h"`` -> ``((7200, 21600), (inf, 86400))``: per length class (runs up
    to the first duration) the wait allowed (the second). Units ``s``, ``min``, ``h``,
    ``d``; the last class must be ``inf`` so every job has one."""
    units = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

    def dur(x: str) -> float:
        x = x.strip().lower()
        if x == "inf":
            return math.inf
        for u in ("min", "s", "h", "d"):
            if x.endswith(u) and x[: -len(u)].replace(".", "", 1).isdigit():
                return float(x[: -len(u)]) * units[u]
        raise InputError(
            f"cannot read duration {x!r}",
            source="--wait-allowance",
            fix="write classes as RUN:WAIT pairs, e.g. 2h:6h,inf:24h",
        )

    out: list[tuple[float, float]] = []
    for part in text.split(","):
        if part.count(":") != 1:
            raise InputError(
                f"cannot read {part!r}",
                source="--wait-allowance",
                fix="write classes as RUN:WAIT pairs, e.g. 2h:6h,inf:24h",
            )
        r, a = (dur(x) for x in part.split(":"))
        if math.isinf(a) or (out and r <= out[-1][0]):
            raise InputError(
                f"class {part!r}: waits must be finite and run bounds increasing",
                source="--wait-allowance",
                fix="e.g. 2h:6h,inf:24h",
            )
        out.append((r, a))
    if not out or not math.isinf(out[-1][0]):
        raise InputError(
            "the last class must be inf so every job has an allowance",
            source="--wait-allowance",
            fix="end with inf:WAIT, e.g. 2h:6h,inf:24h",
        )
    return tuple(out)


def allowance_s(classes: tuple[tuple[float, float], ...], run_s: float) -> float:
    """The waiting allowance of the first class whose bound ``run_s`` does not exceed."""
    for bound, wait in classes:
        if run_s <= bound:
            return wait
    return classes[-1][1]


@dataclass(frozen=True)
class Workload:
    """Jobs and datasets ready for the engine; times in UTC epoch seconds."""

    jobs: tuple[TrainingJob, ...]
    datasets: tuple[Dataset, ...]
    home: dict[str, str] = field(default_factory=dict)
    filled: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    cut_off: frozenset[str] = frozenset()
    source: str = ""
    walltime_h: dict[str, float] = field(default_factory=dict)
    """Requested walltime per job (reference hours; ``sim.estimates``): from the trace or
    the over-request model. A job missing here has its actual run as walltime."""
    start_by: dict[str, int] = field(default_factory=dict)
    """Latest start the user allows (UTC s), where waiting allowances by class set the
    deadline (``FillOptions.wait_allowance``): the deadline is this plus the run. Planning
    with estimates, the engine is given ``start_by + estimate`` as the deadline."""

    @property
    def start_s(self) -> int:
        return min((j.earliest_start_s for j in self.jobs), default=0)

    @property
    def end_s(self) -> int:
        return max((j.earliest_start_s for j in self.jobs), default=0)


def _home_sites(network: Network, mode: str) -> tuple[list[str], np.ndarray]:
    sites = [s for s in network.sites if s.accelerators_total > 0] or list(network.sites)
    if mode == "auto":
        mode = "east" if any(s.role in (Role.EAST, Role.EDGE) for s in sites) else "capacity"
    if mode == "east":
        east = [s for s in sites if s.role in (Role.EAST, Role.EDGE)]
        if not east:
            raise InputError(
                "the network has no east or edge sites",
                source="--home",
                fix="use capacity or uniform",
            )
        sites = east
        mode = "capacity"
    if mode == "capacity":
        w = np.array([max(1, s.accelerators_total) for s in sites], dtype=np.float64)
    elif mode == "uniform":
        w = np.ones(len(sites))
    else:
        raise InputError(
            f"unknown home mode {mode!r}",
            source="--home",
            fix="use auto, capacity, uniform or east",
        )
    return [s.id for s in sites], w / w.sum()


def materialise(
    trace: Trace | Sequence[TraceJob],
    network: Network,
    start_s: int,
    fill: FillOptions = FillOptions(),
) -> Workload:
    """Turn trace jobs into ``TrainingJob``s and ``Dataset``s, trace time 0 at ``start_s``."""
    jobs_in = trace.jobs if isinstance(trace, Trace) else tuple(trace)
    classes = [c for c, _ in fill.classification_mix]
    for c in classes:
        if c not in {x.value for x in Classification}:
            raise InputError(
                f"unknown data class {c!r}",
                source="classification mix",
                fix="use public, general, important, core, personal",
            )
    p_class = np.array([w for _, w in fill.classification_mix], dtype=np.float64)
    p_class = p_class / p_class.sum()
    if fill.deadline_from not in ("run", "walltime"):
        raise InputError(
            f"unknown deadline basis {fill.deadline_from!r}",
            source="--deadline-from",
            fix="use run or walltime",
        )
    home_ids, p_home = _home_sites(network, fill.home)
    valid_sites = set(network.site_ids)
    rng = np.random.default_rng(fill.seed)
    n = len(jobs_in)
    # Draw every column at once, whether or not it is used, so a job's fill does not
    # depend on which other jobs happened to give the value themselves.
    d_size = rng.lognormal(math.log(fill.data_gb_median), fill.data_gb_sigma, size=n)
    d_class = rng.choice(len(classes), size=n, p=p_class)
    d_home = rng.choice(len(home_ids), size=n, p=p_home)
    d_ckpt = rng.random(n) < fill.checkpointable_share
    # Drawn after the others, so adding it changed none of the earlier fills.
    d_wall = estimates.requested_walltime_s(
        np.array([tj.duration_s for tj in jobs_in], dtype=np.float64),
        rng.random(n),
        fill.walltime_f,
    )
    walltime: dict[str, float] = {}
    start_by: dict[str, int] = {}

    counts = {
        "deadline": 0,
        "data size": 0,
        "data class": 0,
        "home site": 0,
        "checkpointable": 0,
        "walltime": 0,
    }
    jobs: list[TrainingJob] = []
    datasets: list[Dataset] = []
    home: dict[str, str] = {}
    cut: set[str] = set()
    for i, tj in enumerate(jobs_in):
        arrival = start_s + tj.arrival_s
        run_s = tj.duration_s
        if tj.deadline_s is None:
            counts["deadline"] += 1
            basis = run_s
            if fill.deadline_from == "walltime":
                basis = tj.walltime_s if tj.walltime_s is not None else int(d_wall[i])
            if fill.wait_allowance:
                # The job may wait its class's allowance, then runs: a start-by time the
                # scheduler knows (the class is the user's), and a deadline on the finish.
                wait = allowance_s(fill.wait_allowance, basis)
                start_by[tj.id] = arrival + math.ceil(wait)
                slack = run_s + wait
            else:
                slack = max(fill.deadline_slack * basis, basis + fill.min_slack_h * 3600)
            deadline = arrival + math.ceil(slack)
        else:
            deadline = start_s + tj.deadline_s
        if tj.data_gb is None:
            counts["data size"] += 1
        size = float(round(d_size[i], 3)) if tj.data_gb is None else tj.data_gb
        if tj.classification is None:
            counts["data class"] += 1
            cls = Classification(classes[int(d_class[i])])
        else:
            try:
                cls = Classification(tj.classification)
            except ValueError:
                raise InputError(
                    f"job {tj.id}: unknown data class {tj.classification!r}",
                    source="trace",
                    fix="use public, general, important, core, personal",
                ) from None
        if tj.home_site is None:
            counts["home site"] += 1
            site = home_ids[int(d_home[i])]
        else:
            if tj.home_site not in valid_sites:
                raise InputError(
                    f"job {tj.id}: unknown home site {tj.home_site!r}",
                    source="trace",
                    fix=f"use one of: {', '.join(sorted(valid_sites))}",
                )
            site = tj.home_site
        if tj.checkpointable is None:
            counts["checkpointable"] += 1
        ckpt = bool(d_ckpt[i]) if tj.checkpointable is None else tj.checkpointable
        ds = Dataset(
            id=f"ds-{tj.id}",
            size_gb=size,
            home_site=site,
            classification=cls,
            individuals=fill.personal_individuals if cls is Classification.PERSONAL else 0,
        )
        util = fill.utilisation * (tj.utilisation if tj.utilisation is not None else 1.0)
        jobs.append(
            TrainingJob(
                id=tj.id,
                accelerators=tj.accelerators,
                work_h=run_s / 3600.0,
                earliest_start_s=arrival,
                deadline_s=max(deadline, arrival + run_s),
                checkpointable=ckpt,
                checkpoint_interval_s=fill.checkpoint_interval_s,
                datasets=(ds.id,),
                utilisation=round(util, 6),
                submitted_s=arrival,
                work_kind=tj.work_kind or WorkKind.TRAINING,
            )
        )
        datasets.append(ds)
        home[tj.id] = site
        wall_s = tj.walltime_s if tj.walltime_s is not None else int(d_wall[i])
        if tj.walltime_s is None:
            counts["walltime"] += 1
        walltime[tj.id] = wall_s / 3600.0
        if tj.cut_off:
            cut.add(tj.id)
    filled = [f"{k}: filled for {v} of {n} jobs" for k, v in counts.items() if v]
    filled += fill.describe()
    src_notes: tuple[str, ...] = ()
    source = ""
    if isinstance(trace, Trace):
        filled = list(trace.filled_by_loader) + filled
        src_notes = trace.notes
        source = f"{trace.format} trace {trace.source}"
    return Workload(
        tuple(jobs),
        tuple(datasets),
        home,
        tuple(filled),
        src_notes,
        frozenset(cut),
        source,
        walltime,
        start_by,
    )


def demo_trace(days: float = 7.0, jobs: int = 1500, seed: int = 0) -> Trace:
    """A built-in trace shaped like the Helios clusters (see the module docstring).

    ``jobs`` jobs of at least 10 minutes arrive over ``days`` days with a daily cycle
    (busier in working hours, China time), sizes from ``HELIOS_GPU_MIX`` and run times from
    the log-normal fitted to Helios's median and mean, cut to 10 min .. 3 days.
    """
    rng = np.random.default_rng(seed)
    span_s = int(days * 86400)
    # Arrivals: thinning of a uniform draw by a daily cycle peaking at 15:00 China time
    # (07:00 UTC), as submission counts in Helios and Philly rise in working hours.
    arrivals: list[int] = []
    while len(arrivals) < jobs:
        t = rng.integers(0, span_s, size=jobs * 2)
        hour = ((t % 86400) / 3600.0 + 8.0) % 24.0
        weight = 0.6 + 0.4 * np.cos((hour - 15.0) / 24.0 * 2 * math.pi)
        keep = rng.random(t.size) < weight
        arrivals.extend(int(x) for x in t[keep])
    arr = np.sort(np.array(arrivals[:jobs], dtype=np.int64))
    sizes = np.array([s for s, _ in HELIOS_GPU_MIX])
    p = np.array([w for _, w in HELIOS_GPU_MIX])
    gpus = rng.choice(sizes, size=jobs, p=p / p.sum())
    mu = math.log(HELIOS_MEDIAN_RUN_S)
    sigma = math.sqrt(2 * math.log(HELIOS_MEAN_RUN_S / HELIOS_MEDIAN_RUN_S))
    # Inverse-CDF draw from the log-normal truncated to [10 min, 3 days].
    from scipy.stats import norm

    lo = norm.cdf((math.log(DEMO_MIN_RUN_S) - mu) / sigma)
    hi = norm.cdf((math.log(DEMO_MAX_RUN_S) - mu) / sigma)
    u = lo + (hi - lo) * rng.random(jobs)
    runs = np.exp(mu + sigma * norm.ppf(u))
    tj = tuple(
        TraceJob(f"demo-{i:05d}", int(arr[i]), int(runs[i]), int(gpus[i])) for i in range(jobs)
    )
    filled = (
        f"built-in workload: {jobs} GPU jobs over {days:g} days shaped like Helios "
        "(SenseTime, SC'21): "
        "GPUs per job mean 3.7 / median 1; run time log-normal with Helios's median 206 s and mean "
        "6,652 s, kept between 10 min and 3 days; arrivals follow a daily cycle "
        "peaking at 15:00 China time",
    )
    return Trace("demo", "builtin", "computenet.sim.workload.demo_trace", tj, (), filled)


def with_jobs(workload: Workload, jobs: Sequence[TrainingJob]) -> Workload:
    """A copy of ``workload`` with other jobs (and only their datasets)."""
    keep = {d for j in jobs for d in j.datasets}
    return replace(
        workload,
        jobs=tuple(jobs),
        datasets=tuple(d for d in workload.datasets if d.id in keep),
    )
