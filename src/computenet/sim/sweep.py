"""A grid of simulations: policies x carbon prices x seeds x load levels, locally or on Ray.

One *scenario* per (seed, load level) fixes what is simulated: the network with its capacity
scaled to the load level, the workload drawn with that seed, the faults. One *grid point*
runs one policy at one carbon price on one scenario (``run_point``, a pure function of its
arguments: the simulator is deterministic, so the same point gives the same figures in this
process, in a worker process and on a Ray worker). A ``Runner`` carries the points out:
``LocalRunner`` on this machine, ``RayRunner`` as one Ray task per point; ``run_sweep`` is the
same for both.

A load level L multiplies the demand each accelerator meets: every pool of the network is
cut to 1/L of its accelerators (1: the network as it is), never below the widest gang the
workload holds (or the pool's own size, if smaller), so no job becomes unplaceable by the
cut. ``Scenario.offered_load`` says how scarce the scenario really is: the queueing
utilisation rho, accelerator-hours asked per hour of the arrival window over accelerators.
"""

from __future__ import annotations

import logging
import math
import socket
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from computenet.errors import ComputenetError, InputError, MissingDependencyError
from computenet.model import Network
from computenet.sim.compare import BASELINE, cost_split
from computenet.sim.metrics import summarise
from computenet.sim.simulator import SimConfig, simulate
from computenet.sim.workload import Workload

# Figures that depend on the machine, not on the simulation: left out of comparisons of
# runs (``deterministic_figures``) and of the summary.
TIMING_KEYS = frozenset({"wall_s", "events_per_s"})


@dataclass(frozen=True)
class Scenario:
    """What every grid point of one (seed, load level) simulates."""

    seed: int
    load: float
    network: Network
    workload: Workload
    config: SimConfig  # policy and carbon price are set per grid point
    offered_load: float  # offered load / accelerators on the cut network (rho)
    capacity_share: float = 1.0  # accelerators after the cut / before

    @property
    def accelerators(self) -> int:
        return sum(s.accelerators_total for s in self.network.sites)


@dataclass(frozen=True)
class GridPoint:
    """One run of the sweep: a policy at a carbon price (CNY/t) on one scenario."""

    policy: str
    carbon_price_cny_per_t: float
    seed: int
    load: float


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep; every combination is one grid point."""

    policies: tuple[str, ...]
    carbon_prices_cny_per_t: tuple[float, ...]
    seeds: tuple[int, ...]
    loads: tuple[float, ...]

    def __post_init__(self) -> None:
        for name, axis in (
            ("policies", self.policies),
            ("carbon prices", self.carbon_prices_cny_per_t),
            ("seeds", self.seeds),
            ("load levels", self.loads),
        ):
            if not axis:
                raise InputError(f"the sweep has no {name}")
            if len(set(axis)) != len(axis):
                raise InputError(f"a value is listed twice among the {name}: {list(axis)}")
        for load in self.loads:
            if not (math.isfinite(load) and load > 0):
                raise InputError(f"load level {load:g} is not a positive number")

    def points(self) -> list[GridPoint]:
        """Every point, seeds and loads outermost (the order of the JSON)."""
        return [
            GridPoint(pol, price, seed, load)
            for seed in self.seeds
            for load in self.loads
            for price in self.carbon_prices_cny_per_t
            for pol in self.policies
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "policies": list(self.policies),
            "carbon_prices_cny_per_t": list(self.carbon_prices_cny_per_t),
            "seeds": list(self.seeds),
            "loads": list(self.loads),
        }


# --------------------------------------------------------------------------- load levels


def offered_load(network: Network, workload: Workload) -> float:
    """Accelerator-hours asked per hour of the arrival window, over the accelerators of
    ``network`` (a window shorter than one hour counts as one hour)."""
    acc_h = sum(j.accelerators * j.work_h for j in workload.jobs)
    window_h = max(1.0, (workload.end_s - workload.start_s) / 3600.0)
    total = sum(s.accelerators_total for s in network.sites)
    return acc_h / window_h / total if total else math.inf


def at_load(network: Network, workload: Workload, load: float) -> tuple[Network, float]:
    """``network`` with every pool cut to ``1 / load`` of its accelerators (rounded, and
    never below the widest gang of ``workload`` or the pool's own size, whichever is
    smaller), and the offered load of ``workload`` on it (``offered_load``). ``load`` 1 is
    the network as it is; 2 doubles the demand each accelerator meets."""
    if not (math.isfinite(load) and load > 0):
        raise InputError(f"load level {load:g} is not a positive number", source="--loads")
    widest = max((j.accelerators for j in workload.jobs), default=1)
    sites = tuple(
        replace(
            s,
            pools=tuple(
                replace(p, count=max(min(widest, p.count), round(p.count / load))) for p in s.pools
            ),
        )
        for s in network.sites
    )
    scaled = replace(network, sites=sites)
    return scaled, offered_load(scaled, workload)


def build_scenario(
    network: Network,
    workload: Workload,
    *,
    seed: int,
    load: float,
    config: SimConfig,
    outage_rate_per_site_day: float = 0.0,
    outage_mean_h: float = 4.0,
) -> Scenario:
    """The scenario of one (seed, load level): ``network`` cut to ``load`` (``at_load``),
    ``config`` with that seed and, when ``outage_rate_per_site_day`` > 0, that seed's
    outages over the workload's span."""
    from computenet.sim.faults import seeded_outages

    net, rho = at_load(network, workload, load)
    outs: tuple[Any, ...] = ()
    if outage_rate_per_site_day > 0 and workload.jobs:
        outs = tuple(
            seeded_outages(
                net.site_ids,
                workload.start_s,
                max(j.deadline_s for j in workload.jobs),
                rate_per_site_day=outage_rate_per_site_day,
                mean_hours=outage_mean_h,
                seed=seed,
            )
        )
    before = sum(s.accelerators_total for s in network.sites)
    after = sum(s.accelerators_total for s in net.sites)
    cfg = replace(
        config, seed=seed, outages=tuple(sorted(outs, key=lambda o: (o.start_s, o.site_id)))
    )
    return Scenario(seed, load, net, workload, cfg, rho, after / before if before else 1.0)


# --------------------------------------------------------------------------- one point


def run_point(scenario: Scenario, policy: str, carbon_price_cny_per_t: float) -> dict[str, Any]:
    """Simulate one grid point and return its figures (a plain dict: it crosses processes).

    A pure function of its arguments apart from the timing keys (``TIMING_KEYS``)."""
    cfg = replace(scenario.config, policy=policy, carbon_price_cny_per_t=carbon_price_cny_per_t)
    res = simulate(scenario.network, scenario.workload, cfg)
    m = summarise(res)
    split = cost_split(res)
    return {
        "policy": policy,
        "carbon_price_cny_per_t": carbon_price_cny_per_t,
        "seed": scenario.seed,
        "load": scenario.load,
        "offered_load": round(scenario.offered_load, 6),
        "jobs": m.jobs,
        "objective_cny": round(m.objective_cny, 6),
        "cost_cny": round(m.cost_cny, 6),
        "energy_cost_cny": round(split.energy_cny, 6),
        "compute_cost_cny": round(split.compute_cny, 6),
        "transfer_cost_cny": round(split.transfer_cny, 6),
        "carbon_kg": round(m.carbon_kg, 6),
        "energy_kwh": round(m.energy_kwh, 6),
        "deadline_misses": m.deadline_misses,
        "late": m.late,
        "rejected": m.rejected,
        "violations": m.violations,
        "mean_wait_h": round(m.mean_wait_h, 6),
        "p99_wait_h": round(m.p99_wait_h, 6),
        "preemptions": m.preemptions,
        "data_moved_gb": round(m.data_moved_gb, 6),
        "events": m.events,
        "wall_s": round(m.wall_s, 6),
        "events_per_s": round(m.events_per_s, 3),
    }


def deterministic_figures(row: dict[str, Any]) -> dict[str, Any]:
    """A point's figures without those that depend on the machine (``TIMING_KEYS``)."""
    return {k: v for k, v in row.items() if k not in TIMING_KEYS}


# --------------------------------------------------------------------------- runners

Task = tuple[Scenario, str, float]
Done = Callable[[int], None]  # called with the index of each task as it finishes


class Runner(Protocol):
    """Carries out ``run_point`` over tasks; results in the order of the tasks."""

    name: str

    def run(self, tasks: Sequence[Task], done: Done) -> list[dict[str, Any]]: ...


class LocalRunner:
    """Every point on this machine: in this process one after the other, or with
    ``workers`` > 1 in that many worker processes (started fresh, not forked, so they
    inherit no threads of this one)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise InputError("must be at least 1", source="--workers")
        self.workers = workers

    def run(self, tasks: Sequence[Task], done: Done) -> list[dict[str, Any]]:
        if self.workers == 1 or len(tasks) < 2:
            out = []
            for i, (scenario, policy, price) in enumerate(tasks):
                out.append(run_point(scenario, policy, price))
                done(i)
            return out
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        results: dict[int, dict[str, Any]] = {}
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(self.workers, len(tasks)), mp_context=ctx) as pool:
            futures = {pool.submit(run_point, *task): i for i, task in enumerate(tasks)}
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                done(i)
        return [results[i] for i in range(len(tasks))]


def check_ray_address(address: str) -> str:
    """The address as ``ray.init`` takes it: ``auto``, ``HOST:PORT`` (the head's GCS port,
    which ``ray start --head`` prints) or ``ray://HOST:PORT`` (Ray Client)."""
    text = address.strip()
    if text == "auto" or text.startswith("ray://"):
        return text
    host, sep, port = text.rpartition(":")
    if "://" in text or not sep or not host or not port.isdigit():
        raise InputError(
            f"{address!r} is not a Ray cluster address",
            source="--ray",
            fix="give the head's address as HOST:PORT (the GCS port `ray start --head` "
            "prints, 6379 by default), ray://HOST:10001, or auto; the dashboard's http:// "
            "address is not one",
        )
    return text


class RayRunner:
    """One Ray task per grid point on the cluster at ``address``.

    Each scenario is put in the object store once and shared by its points. This process's
    ``computenet`` package travels with the tasks (``runtime_env`` ``py_modules``), so the
    workers run the same code as a local sweep; the workers' Python needs computenet's
    dependencies. ``cpus_per_task`` is what Ray reserves for each point.
    """

    name = "ray"

    def __init__(self, address: str, *, cpus_per_task: float = 1.0, ship_code: bool = True):
        self.address = check_ray_address(address)
        self.cpus_per_task = cpus_per_task
        self.ship_code = ship_code
        self._ray: Any = None
        self._owned = False

    def __enter__(self) -> RayRunner:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Join the cluster (before any work, so a wrong address costs nothing)."""
        try:
            import ray
        except ImportError:
            raise MissingDependencyError("ray", "ray", "computenet sweep --ray") from None
        self._ray = ray
        if ray.is_initialized():
            return
        self._probe()
        env: dict[str, Any] = {}
        if self.ship_code:
            import computenet

            env["py_modules"] = [computenet]
        try:
            ray.init(
                address=self.address,
                runtime_env=env or None,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError, by version
            raise ComputenetError(
                f"--ray: could not join the Ray cluster at {self.address}: "
                f"{type(exc).__name__}: {exc}. Is the head running (ray status)?"
            ) from None
        self._owned = True

    def _probe(self, timeout_s: float = 5.0) -> None:
        """Refuse an address where nothing listens within ``timeout_s``: ``ray.init``
        would retry it for minutes."""
        if self.address == "auto":
            return
        host, _, port = self.address.removeprefix("ray://").rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                pass
        except (OSError, ValueError) as exc:
            raise ComputenetError(
                f"--ray: nothing answers at {self.address} ({exc}). Is the head running "
                "(ray status), and is this its GCS address (ray start --head prints it)?"
            ) from None

    def close(self) -> None:
        if self._owned and self._ray is not None:
            self._ray.shutdown()
        self._owned = False

    def run(self, tasks: Sequence[Task], done: Done) -> list[dict[str, Any]]:
        if self._ray is None:
            self.connect()
        ray = self._ray
        remote = ray.remote(num_cpus=self.cpus_per_task, max_retries=1)(run_point)
        # One copy of each scenario in the object store (``tasks`` keeps them alive, so
        # their ids are stable for this call).
        refs: dict[int, Any] = {}
        for scenario, _, _ in tasks:
            if id(scenario) not in refs:
                refs[id(scenario)] = ray.put(scenario)
        pending = {
            remote.remote(refs[id(sc)], pol, price): i for i, (sc, pol, price) in enumerate(tasks)
        }
        out: dict[int, dict[str, Any]] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i = pending.pop(ref)
                try:
                    out[i] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    sc, pol, price = tasks[i]
                    for left in pending:
                        ray.cancel(left)
                    raise ComputenetError(
                        f"--ray: grid point {pol} at {price:g} CNY/t, seed {sc.seed}, load "
                        f"{sc.load:g} failed on the cluster: {_first_line(exc)}"
                    ) from None
                done(i)
        return [out[i] for i in range(len(tasks))]


def _first_line(exc: BaseException) -> str:
    """The last line of a remote error (the exception itself, not Ray's traceback)."""
    lines = [x for x in str(exc).splitlines() if x.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


# --------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class SweepResult:
    """Every point's figures and their means over seeds."""

    title: str
    grid: Grid
    runner: str
    scenarios: tuple[Scenario, ...]
    points: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()

    def summary(self) -> list[dict[str, Any]]:
        """Per (load, carbon price, policy): means over seeds, and the change of the mean
        objective, cost and carbon against ``fifo-home`` at the same load and price."""
        cells: dict[tuple[float, float, str], list[dict[str, Any]]] = {}
        for p in self.points:
            cells.setdefault((p["load"], p["carbon_price_cny_per_t"], p["policy"]), []).append(p)
        rows = []
        for load in self.grid.loads:
            for price in self.grid.carbon_prices_cny_per_t:
                base = cells.get((load, price, BASELINE))
                for pol in self.grid.policies:
                    rows.append(_summary_row(load, price, pol, cells[(load, price, pol)], base))
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "runner": self.runner,
            "grid": self.grid.to_json(),
            "network": self.scenarios[0].network.name if self.scenarios else "",
            "scenarios": [
                {
                    "seed": s.seed,
                    "load": s.load,
                    "offered_load": round(s.offered_load, 6),
                    "capacity_share": round(s.capacity_share, 6),
                    "jobs": len(s.workload.jobs),
                    "accelerators": s.accelerators,
                    "sites": len(s.network.sites),
                }
                for s in self.scenarios
            ],
            "points": list(self.points),
            "summary": self.summary(),
            "notes": list(self.notes),
        }


MEAN_KEYS = (
    "objective_cny",
    "cost_cny",
    "energy_cost_cny",
    "compute_cost_cny",
    "transfer_cost_cny",
    "carbon_kg",
    "deadline_misses",
    "mean_wait_h",
)


def _summary_row(
    load: float,
    price: float,
    policy: str,
    rows: list[dict[str, Any]],
    base: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "load": load,
        "carbon_price_cny_per_t": price,
        "policy": policy,
        "seeds": len(rows),
        "violations": sum(r["violations"] for r in rows),
    }
    for k in MEAN_KEYS:
        out[k] = round(statistics.fmean(r[k] for r in rows), 6)
    out["objective_cny_sd"] = (
        round(statistics.stdev(r["objective_cny"] for r in rows), 6) if len(rows) > 1 else 0.0
    )
    if base is not None and policy != BASELINE:
        for k in ("objective_cny", "cost_cny", "carbon_kg"):
            b = statistics.fmean(r[k] for r in base)
            out[f"{k.removesuffix('_cny').removesuffix('_kg')}_vs_fifo_home_pct"] = (
                None if b == 0 else round(100.0 * (out[k] - b) / b, 3)
            )
    return out


def run_sweep(
    scenarios: Sequence[Scenario],
    grid: Grid,
    runner: Runner,
    *,
    title: str = "",
    notes: Sequence[str] = (),
    done: Done | None = None,
) -> SweepResult:
    """Run every grid point of ``grid`` over ``scenarios`` (one per seed and load level)
    with ``runner``; ``done`` is told each finished point's index in ``grid.points()``."""
    by_cell = {(s.seed, s.load): s for s in scenarios}
    tasks: list[Task] = []
    for pt in grid.points():
        sc = by_cell.get((pt.seed, pt.load))
        if sc is None:
            raise InputError(f"no scenario for seed {pt.seed} at load {pt.load:g}")
        tasks.append((sc, pt.policy, pt.carbon_price_cny_per_t))
    rows = runner.run(tasks, done or (lambda i: None))
    return SweepResult(
        title=title or f"sweep of {len(tasks)} runs",
        grid=grid,
        runner=runner.name,
        scenarios=tuple(scenarios),
        points=tuple(rows),
        notes=tuple(notes),
    )


def iter_cells(grid: Grid) -> Iterator[tuple[int, float]]:
    """Every (seed, load level) of ``grid``: one scenario each."""
    for seed in grid.seeds:
        for load in grid.loads:
            yield seed, load
