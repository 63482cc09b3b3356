"""Job views: one job as the policies see it (``JobView``): the pairs it may use (accelerator
type, gang, data rules, down sites), its run time at each, when its data can be there, its
power and fixed costs; or why it cannot run at all (``Rejection``). Datasets are priced once
per request (``DatasetInfo``: where a dataset may go and what bringing it there costs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from computenet.engine import rules
from computenet.engine.arrays import (
    INF,
    BArray,
    FArray,
    IntArray,
    NetworkArrays,
    allowed_sites,
    memo,
    one_speed,
    pairs_are_sites,
)
from computenet.engine.capacity import CapacityGrid
from computenet.model import Dataset, TrainingJob, WorkKind, job_power_kw

WORK_KINDS = frozenset(str(k) for k in WorkKind)


@dataclass(frozen=True)
class Rejection:
    """Why a job cannot be placed at all: a constraint name and a sentence."""

    constraint: str
    reason: str


@dataclass(frozen=True, eq=False)
class DatasetInfo:
    """Where one dataset may go and what bringing it to each site costs."""

    dataset: Dataset
    home: int
    allowed: BArray  # (S,) the data rules allow it there
    cost: FArray  # (S,) CNY to copy it there (0 where a copy is)
    time_s: FArray  # (S,) seconds to copy it there (inf: unreachable)
    source: IntArray  # (S,) site to copy from
    sites: BArray  # (S,) allowed and reachable: ``allowed & isfinite(time_s)``


class JobView:
    """One job as the policies see it: the pairs it may use and what each costs."""

    __slots__ = (
        "count",
        "datasets",
        "deadline_off",
        "earliest_off",
        "fixed",
        "index",
        "job",
        "kw",
        "pairs",
        "ready",
        "run_1",
        "run_s",
        "site_ok",
        "transfer_cny",
    )

    def __init__(
        self,
        job: TrainingJob,
        index: int,
        pairs: IntArray,
        run_s: IntArray,
        ready: IntArray,
        kw: FArray,
        fixed: FArray,
        transfer_cny: FArray,
        site_ok: BArray,
        datasets: tuple[DatasetInfo, ...],
        earliest_off: int,
        deadline_off: int,
        run_1: int | None = None,
    ) -> None:
        self.job = job
        self.index = index
        self.count = job.accelerators
        self.pairs = pairs
        self.run_s = run_s
        self.ready = ready
        self.kw = kw
        self.fixed = fixed
        self.transfer_cny = transfer_cny
        self.site_ok = site_ok
        self.datasets = datasets
        self.earliest_off = earliest_off
        self.deadline_off = deadline_off
        self.run_1 = run_1  # the run length when it is the same at every pair, else None


class LazyViews:
    """``JobView`` (or ``Rejection``) of each job of the request, built when first read.

    A fresh proxy on every ``Problem.views``: the views are cached on the problem, which
    holds no reference back, so a problem (one per arrival in the simulator) and its arrays
    are freed as soon as it is dropped rather than when the garbage collector finds a
    cycle."""

    __slots__ = ("_pb",)

    def __init__(self, pb: JobViews) -> None:
        self._pb = pb

    def __len__(self) -> int:
        return len(self._pb.req.jobs)

    def __getitem__(self, n: int) -> JobView | Rejection:
        pb = self._pb
        v = pb._view_cache.get(n)
        if v is None:
            v = pb._view_cache[n] = pb._view(pb.req.jobs[n], n)
        return v

    def __iter__(self) -> Iterator[JobView | Rejection]:
        return (self[n] for n in range(len(self)))


def subset(v: JobView, rows: IntArray) -> JobView:
    """The same job restricted to the usable pairs ``rows`` (indices into ``v.pairs``)."""
    return JobView(
        v.job,
        v.index,
        v.pairs[rows],
        v.run_s[rows],
        v.ready[rows],
        v.kw[rows],
        v.fixed[rows],
        v.transfer_cny[rows],
        v.site_ok,
        v.datasets,
        v.earliest_off,
        v.deadline_off,
        v.run_1,
    )


def _gang(speed: FArray, cap: IntArray, count: int) -> tuple[BArray, bool, BArray, bool]:
    usable = speed > 0
    gang = usable & (cap >= count)
    return usable, bool(usable.any()), gang, bool(gang.any())


def all_pairs(v: JobView, net: NetworkArrays) -> bool:
    """Whether ``v`` may use every pair (its pairs are sorted and distinct, so the count
    tells)."""
    return len(v.pairs) == net.n_pairs


class JobViews(CapacityGrid):
    """The job part of a compiled request: each job's view, built when first read."""

    _datasets: dict[str, Dataset]
    _ds_memo: dict[str, DatasetInfo | Rejection]
    _speed_memo: dict[tuple[tuple[str, float], ...], FArray]
    _view_cache: dict[int, JobView | Rejection]

    def _speed_key(self, job: TrainingJob) -> tuple[tuple[str, float], ...]:
        return tuple(sorted((str(k), float(v)) for k, v in job.accelerator_speed.items()))

    def _speeds(self, job: TrainingJob) -> FArray:
        if not job.accelerator_speed:
            return self.net.default_speed
        key = self._speed_key(job)
        hit = self._speed_memo.get(key)
        if hit is None:
            m = dict(key)
            known = self.net.network.accelerators
            hit = np.array(
                [
                    m.get(a, 0.0) if a in known and math.isfinite(m.get(a, 0.0)) else 0.0
                    for a in self.net.pair_acc
                ],
                dtype=np.float64,
            )
            self._speed_memo[key] = hit
        return hit

    def dataset_info(self, ds_id: str) -> DatasetInfo | Rejection:
        hit = self._ds_memo.get(ds_id)
        if hit is not None:
            return hit
        out: DatasetInfo | Rejection
        d = self._datasets.get(ds_id)
        net = self.net
        # What a dataset may cost depends only on it, its replicas and the network: share
        # the answer across requests (keyed on the dataset object, held so its id stays).
        key = (id(d), frozenset(self.req.replicas.get(ds_id, frozenset())))
        shared = net.ds_memo.get(key) if d is not None else None
        if shared is not None and shared[0] is d:
            self._ds_memo[ds_id] = shared[1]
            return shared[1]
        if d is None:
            out = Rejection("dataset", f"unknown dataset {ds_id!r} (not in the request)")
        elif d.home_site not in net.site_index:
            out = Rejection("dataset", f"dataset {ds_id} lives at {d.home_site!r}, not a site")
        elif not (math.isfinite(d.size_gb) and d.size_gb >= 0):
            out = Rejection("dataset", f"dataset {ds_id} has size {d.size_gb} GB")
        else:
            home = net.site_index[d.home_site]
            scope = rules.effective_scope(d)
            rule = rules.RULES[d.classification]
            n = net.n_sites
            # The same for every dataset with this home, scope and level (read-only).
            allowed = allowed_sites(net, home, scope, rule.min_security_level)
            reps = self.req.replicas.get(ds_id)
            others = (
                sorted(
                    net.site_index[s]
                    for s in reps
                    if s in net.site_index and net.site_index[s] != home
                )
                if reps and (len(reps) > 1 or d.home_site not in reps)
                else []
            )
            if not others:
                # One source: the home site's rows of the network's arrays.
                cost = d.size_gb * net.egress[home]
                time_s = np.ceil(d.size_gb * net.s_per_gb[home])
                source = memo(net, ("source", home), lambda: np.full(n, home, dtype=np.int64))
                cost[home], time_s[home] = 0.0, 0.0
                # Finite everywhere when the slowest copy is (sizes and times are >= 0).
                slowest = memo(net, ("slowest-copy", home), lambda: float(net.s_per_gb[home].max()))
                finite = math.isfinite(d.size_gb * slowest)
            else:
                srcs = [home, *others]
                cost = np.full(n, INF)
                time_s = np.full(n, INF)
                source = np.full(n, home, dtype=np.int64)
                for src in srcs:
                    c = d.size_gb * net.egress[src]
                    t = np.ceil(d.size_gb * net.s_per_gb[src])
                    better = np.isfinite(t) & ((c < cost) | ((c == cost) & (t < time_s)))
                    cost = np.where(better, c, cost)
                    time_s = np.where(better, t, time_s)
                    source = np.where(better, src, source)
                for src in srcs:  # a copy is already there
                    cost[src], time_s[src], source[src] = 0.0, 0.0, src
                finite = False
            if finite:
                sites = allowed
            else:
                reach = np.isfinite(time_s)
                if not reach.all():
                    cost[~reach] = INF
                sites = allowed & reach
                sites.setflags(write=False)
            for arr in (cost, time_s, source):
                arr.setflags(write=False)
            out = DatasetInfo(d, home, allowed, cost, time_s, source, sites)
        if d is not None:
            if len(net.ds_memo) >= 4096:
                net.ds_memo.clear()
            net.ds_memo[key] = (d, out)
        self._ds_memo[ds_id] = out
        return out

    def _view(self, job: TrainingJob, index: int) -> JobView | Rejection:
        net = self.net
        count = job.accelerators
        if not isinstance(count, int) or count < 1:
            return Rejection("gang", f"asks for {count} accelerators; a job needs at least 1")
        if not (math.isfinite(job.work_h) and job.work_h >= 0):
            return Rejection("work", f"work of {job.work_h} h is not a number >= 0")
        if not (0 < job.utilisation <= 1.0 + 1e-9):
            return Rejection("work", f"utilisation {job.utilisation} is not in (0, 1]")
        if job.work_kind not in WORK_KINDS:
            return Rejection(
                "work",
                f"work kind {job.work_kind!r} is not one of {', '.join(sorted(WORK_KINDS))}",
            )
        if job.deadline_s < job.earliest_start_s:
            return Rejection(
                "deadline",
                f"deadline is {(job.earliest_start_s - job.deadline_s) / 3600:.1f} h "
                "before the earliest start",
            )
        speed = self._speeds(job)
        # Which pairs the accelerator types and gang allow: the same for every job with
        # these speeds and this gang, so shared across requests.
        usable, any_usable, gang, any_gang = memo(
            net,
            ("gang", self._speed_key(job) if job.accelerator_speed else (), count),
            lambda: _gang(speed, net.cap, count),
        )
        if not any_usable:
            want = ", ".join(sorted(job.accelerator_speed)) or "any"
            have = ", ".join(sorted(set(net.pair_acc))) or "none"
            return Rejection(
                "accelerator-type",
                f"no site has an accepted accelerator type ({want}); the network has {have}",
            )
        if not any_gang:
            best = int(net.cap[usable].max())
            return Rejection(
                "gang",
                f"needs {count} accelerators at one site; the largest usable pool has {best}",
            )
        infos: list[DatasetInfo] = []
        for ds_id in job.datasets:
            info = self.dataset_info(ds_id)
            if isinstance(info, Rejection):
                return info
            infos.append(info)
        if len(infos) == 1:
            # One dataset: its arrays as they are (``tready`` only feeds a maximum with
            # the earliest start, which is >= 0, so the 0 it starts from can be left out).
            info = infos[0]
            site_ok, tcost, tready = info.sites, info.cost + 0.0, info.time_s
        else:
            site_ok = np.ones(net.n_sites, dtype=bool)
            tcost = np.zeros(net.n_sites)
            tready = np.zeros(net.n_sites)
            for info in infos:
                site_ok &= info.sites
                tcost = tcost + info.cost
                tready = np.maximum(tready, info.time_s)
        same = pairs_are_sites(net)
        ok = gang & (site_ok if same else site_ok[net.pair_site])
        if not ok.any():
            s = int(net.pair_site[np.flatnonzero(gang)[0]])
            return Rejection("data-rule", self.site_rule_reason(infos, s) or "no allowed site")
        if self.req.down_sites:
            up = ok & ~self.down[net.pair_site]
            if not up.any():
                names = sorted({net.sites[int(s)].id for s in net.pair_site[ok]})
                return Rejection(
                    "down", f"every site that could run it is down: {', '.join(names)}"
                )
        else:
            up = ok
        # The same few sets of pairs come up again and again: share their index arrays.
        pairs = memo(net, ("pairs", up.tobytes()), lambda: np.flatnonzero(up))
        every = len(pairs) == net.n_pairs
        earliest_off = max(0, job.earliest_start_s - self.now)
        sp0 = memo(net, ("one-speed",), lambda: one_speed(net.default_speed))
        x = job.work_h * 3600 / sp0 if sp0 and not job.accelerator_speed else INF
        if x < 2.0**52:
            # One speed at every pair: one run length, computed once (the same numbers).
            run_1 = max(1, math.ceil(x))
            run_s = np.full(len(pairs), run_1, dtype=np.int64)
        else:
            run_1 = None
            sp = speed if every else speed[pairs]
            run_s = np.maximum(1, np.ceil(job.work_h * 3600 / sp)).astype(np.int64)
        if same and every:
            t_ready, transfer = tready, tcost
        else:
            ps = net.pair_site if every else net.pair_site[pairs]
            t_ready, transfer = tready[ps], tcost[ps]
        ready = np.maximum(t_ready, earliest_off).astype(np.int64)
        # Power per pair for this gang, utilisation and kind of work (a few of each).
        kw = memo(
            net,
            ("kw", count, job.utilisation, str(job.work_kind)),
            lambda: pair_power_kw(net, count, job.utilisation, job.work_kind),
        )
        rent = memo(net, ("rent", count), lambda: count * net.price_h)
        if not every:
            kw, rent = kw[pairs], rent[pairs]
        fixed = (rent * (run_s if run_1 is None else run_1)) / 3600.0 + transfer
        return JobView(
            job,
            index,
            pairs,
            run_s,
            ready,
            kw,
            fixed,
            transfer,
            site_ok,
            tuple(infos),
            earliest_off,
            job.deadline_s - self.now,
            run_1,
        )

    def site_rule_reason(self, infos: list[DatasetInfo] | tuple[DatasetInfo, ...], s: int) -> str:
        """Why the data of a job may not go to site ``s`` (empty when it may)."""
        site = self.net.sites[s]
        for info in infos:
            why = rules.breach(info.dataset, site, self.net.sites[info.home])
            if why:
                return f"violates data rule: {why}"
            if not math.isfinite(info.time_s[s]):
                return f"dataset {info.dataset.id} cannot reach {site.id} (no bandwidth)"
        return ""


def pair_power_kw(net: NetworkArrays, count: int, utilisation: float, kind: str) -> FArray:
    """Per pair, the power (kW, before PUE) of a gang of ``count`` doing ``kind`` of work
    busy ``utilisation`` of the time (``model.job_power_kw`` at each pair)."""
    accs = net.network.accelerators
    return np.array(
        [
            job_power_kw(accs.get(a), kind, utilisation, count, float(h))
            for a, h in zip(net.pair_acc, net.host_w, strict=True)
        ],
        dtype=np.float64,
    )
