"""A ``PlanRequest`` compiled into arrays: the shared feasibility and objective code.

Every policy works on the same compiled ``Problem``:

* *pairs*: one per (site, accelerator type), in network order, with their capacity, power,
  host power and rental price;
* ``free[p, k]``: accelerators of pair ``p`` free during slot ``k`` after the running
  allocations and down sites (an allocation that touches any part of a slot takes the whole
  slot, so a plan that fits slot by slot fits second by second);
* cumulative slot sums of the objective weight per kW, so the objective of a run over any
  start is a difference of two prefix sums (vectorised over every start and pair at once);
* per job, a ``JobView``: the pairs it may use (accelerator type, gang, data rules, down
  sites), its run time, when its data can be there, its power and fixed costs.

Internally the engine plans on sub-slots of ``FINE_SLOT_S`` (15 min) when the request's
slots are whole multiples of it (hourly requests): the horizon is the same, but short jobs
hold capacity for a quarter hour rather than an hour and may start on any quarter. Below,
"slot" means these internal slots.

A job starting in slot ``k`` is placed either at the start of the slot (start-aligned) or
so that it ends on a slot boundary (end-aligned, when its run is not a whole number of
slots); both occupy the same ``ceil(run / slot)`` slots, and the cheaper is taken (on a tie,
the start-aligned one, which starts sooner). Between
such breakpoints the cost of a run is linear in its start, so these two cover the best start
within each slot.

Units: times in seconds, ``slot_s`` seconds per slot, money CNY, power kW, energy kWh,
carbon kg (grams in signals).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from computenet.engine import rules
from computenet.engine.capacity import CapacityLedger, fits_window, fits_window_rows, free_grid
from computenet.engine.signals import SiteGrid
from computenet.engine.types import Breakdown, PlanRequest, Transfer
from computenet.errors import InputError
from computenet.model import Dataset, Network, Site, TrainingJob

IntArray = npt.NDArray[np.int64]
FArray = npt.NDArray[np.float64]
BArray = npt.NDArray[np.bool_]

INF = math.inf
FINE_SLOT_S = 900
"""Internal slot length (s) when the request's slot is a multiple of it."""
ALIGN_TOL = 1e-12
"""End-aligned wins only when cheaper by more than this share: under a flat price the two
cost the same, and rounding noise must not decide (start-aligned starts sooner)."""


@dataclass(frozen=True, eq=False)
class NetworkArrays:
    """Static arrays of a network (cached per ``Network`` object)."""

    network: Network
    sites: tuple[Site, ...]
    site_index: Mapping[str, int]
    pair_site: IntArray
    pair_acc: tuple[str, ...]
    cap: IntArray
    acc_power_w: FArray
    host_w: FArray
    price_h: FArray
    default_speed: FArray
    pue: FArray
    juris: IntArray
    level: IntArray
    pair_of: Mapping[tuple[str, str], int]  # (site id, accelerator) -> pair
    egress: FArray  # CNY/GB, [from, to]
    s_per_gb: FArray  # transfer seconds per GB, [from, to]; inf when unreachable
    # Derived read-only arrays shared by every request on this network (the simulator
    # asks once per arrival): keyed on immutable inputs, bounded, never mutated.
    memo: dict[Any, Any] = field(default_factory=dict)
    ds_memo: dict[tuple[int, frozenset[str]], Any] = field(default_factory=dict)

    @property
    def n_sites(self) -> int:
        return len(self.sites)

    @property
    def n_pairs(self) -> int:
        return len(self.pair_acc)


_EMPTY_LEDGER = CapacityLedger()

_NET_MEMO: dict[int, NetworkArrays] = {}


def network_arrays(net: Network) -> NetworkArrays:
    """The static arrays of ``net``, computed once per network object."""
    hit = _NET_MEMO.get(id(net))
    if hit is not None and hit.network is net:
        return hit
    sites = net.sites
    idx = {s.id: i for i, s in enumerate(sites)}
    if len(idx) != len(sites):
        raise InputError("two sites share an id", source=f"network {net.name}")
    pair_site: list[int] = []
    pair_acc: list[str] = []
    cap: list[int] = []
    power: list[float] = []
    host: list[float] = []
    price: list[float] = []
    speed: list[float] = []
    for i, s in enumerate(sites):
        seen: dict[str, int] = {}
        for pool in s.pools:
            if pool.accelerator in seen:  # same type twice: one pool; first pool's prices
                cap[seen[pool.accelerator]] += pool.count
                continue
            seen[pool.accelerator] = len(pair_acc)
            acc = net.accelerators.get(pool.accelerator)
            pair_site.append(i)
            pair_acc.append(pool.accelerator)
            cap.append(pool.count)
            power.append(acc.power_w if acc else 0.0)
            host.append(pool.host_power_w)
            price.append(pool.price_cny_per_h)
            ok = acc is not None and net.reference_accelerator in net.accelerators
            speed.append(net.speed(pool.accelerator) if ok else 0.0)
    n = len(sites)
    egress = np.zeros((n, n))
    s_per_gb = np.zeros((n, n))
    for a, sa in enumerate(sites):
        for b, sb in enumerate(sites):
            if a == b:
                continue
            egress[a, b] = float(net.links.egress_cny_per_gb(sa.id, sb.id))
            bw = float(net.links.bandwidth_gbps(sa.id, sb.id))
            s_per_gb[a, b] = 8.0 / bw if bw > 0 else INF
    jcodes = {j: k for k, j in enumerate(sorted({str(s.jurisdiction) for s in sites}))}
    arrays = NetworkArrays(
        network=net,
        sites=sites,
        site_index=idx,
        pair_site=np.array(pair_site, dtype=np.int64),
        pair_acc=tuple(pair_acc),
        cap=np.array(cap, dtype=np.int64),
        acc_power_w=np.array(power, dtype=np.float64),
        host_w=np.array(host, dtype=np.float64),
        price_h=np.array(price, dtype=np.float64),
        default_speed=np.array(speed, dtype=np.float64),
        pue=np.array([s.pue for s in sites], dtype=np.float64),
        juris=np.array([jcodes[str(s.jurisdiction)] for s in sites], dtype=np.int64),
        level=np.array([s.security_level for s in sites], dtype=np.int64),
        pair_of={
            (sites[s].id, a): p for p, (s, a) in enumerate(zip(pair_site, pair_acc, strict=True))
        },
        egress=egress,
        s_per_gb=s_per_gb,
    )
    if len(_NET_MEMO) >= 16:
        _NET_MEMO.clear()
    _NET_MEMO[id(net)] = arrays
    return arrays


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

    def __init__(self, pb: Problem) -> None:
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


@dataclass
class Options:
    """Every start of one job: ``value[i, c]`` for usable pair ``i`` and slot ``k0 + c``
    (``inf`` where the start is not allowed), whether it is end-aligned, and whether it is
    allowed by time alone (window and deadline, ignoring capacity)."""

    k0: int
    value: FArray
    end_aligned: BArray
    time_ok: BArray

    @property
    def width(self) -> int:
        return int(self.value.shape[1])


@dataclass(frozen=True)
class Choice:
    """One start of one job: usable-pair index ``i``, slot ``k``, start offset (s)."""

    i: int
    k: int
    start_off: int


class Problem:
    """A compiled ``PlanRequest``; see the module docstring."""

    def __init__(self, req: PlanRequest, *, fine: bool = True) -> None:
        if req.slot_s < 1:
            raise InputError("slot_s must be at least 1 s", source="plan request")
        if req.horizon_slots < 1:
            raise InputError("horizon_slots must be at least 1", source="plan request")
        if not math.isfinite(req.carbon_price_cny_per_t) or req.carbon_price_cny_per_t < 0:
            raise InputError(
                "carbon price must be a number >= 0", source="plan request", where="carbon price"
            )
        if req.capacity is not None and req.running:
            raise InputError(
                "a request has both running allocations and a capacity ledger",
                source="plan request",
                fix="add the running allocations to the ledger and leave running empty",
            )
        self.req = req
        self.net = network_arrays(req.network)
        self.now = int(req.now_s)
        # Plan on quarter-hour sub-slots when the request's slots are whole hours (or
        # longer multiples of 15 min): a 10-minute job then holds its accelerators for
        # 15 minutes, not an hour, and may start on any quarter. The horizon is the same.
        self.refine = req.slot_s // FINE_SLOT_S if fine and req.slot_s % FINE_SLOT_S == 0 else 1
        self.slot = int(req.slot_s) // self.refine
        self.slot_h = self.slot / 3600.0
        self.T = int(req.horizon_slots) * self.refine
        self.cp = float(req.carbon_price_cny_per_t)
        if not 0.0 <= req.home_reserve < 1.0:
            raise InputError(
                f"home_reserve must be in [0, 1), got {req.home_reserve}",
                source="plan request",
                where="home_reserve",
            )
        net = self.net
        # Accelerators of each pair that only work homed at its site may take.
        self.reserve = _memo(
            net,
            ("reserve", req.home_reserve),
            lambda: np.ceil(req.home_reserve * net.cap - 1e-9).astype(np.int64),
        )
        self.down = _memo(
            net,
            ("down", frozenset(req.down_sites)),
            lambda: np.array([s.id in req.down_sites for s in net.sites], dtype=bool),
        )
        self._datasets = {d.id: d for d in req.datasets}
        self._ds_memo: dict[str, DatasetInfo | Rejection] = {}
        self._speed_memo: dict[tuple[tuple[str, float], ...], FArray] = {}
        ids = [j.id for j in req.jobs]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise InputError(f"duplicate job id(s): {', '.join(dup)}", source="plan request")
        self._view_cache: dict[int, JobView | Rejection] = {}
        # Horizon plus the longest run any job could have (at its slowest usable speed).
        slowest = _memo(net, ("slowest",), lambda: _slowest(net.default_speed))
        max_ns = 1
        for j in req.jobs:
            sp = [x for x in j.accelerator_speed.values() if x > 0] if j.accelerator_speed else []
            s = min(sp) if sp else slowest
            if math.isfinite(j.work_h) and j.work_h > 0 and s > 0:
                max_ns = max(max_ns, math.ceil(j.work_h * 3600 / s / self.slot))
        self.T_ext = self.T + max_ns + 2
        self._signals()
        self._capacity()

    @property
    def views(self) -> LazyViews:
        """Each job's ``JobView`` (or ``Rejection``), in request order, built when first
        read."""
        return LazyViews(self)

    # ------------------------------------------------------------------ signals

    def _signals(self) -> None:
        net, n = self.net, self.T_ext
        # Blended when first needed, and the one-job path blends only the slots it reads.
        self._grid = SiteGrid(net.network, self.req.forecasts, self.now, self.slot, n)
        self._price: FArray | None = None
        self._carbon: FArray | None = None
        self._price_cum: FArray | None = None
        self._carbon_cum: FArray | None = None
        self._w: dict[str, FArray] = {}
        self._W: dict[str, FArray] = {}
        self._w_head: dict[str, tuple[FArray, FArray]] = {}
        self._head: FArray = _NO_COLUMNS  # the first columns of the grid, once blended
        self._wmin: dict[str, FArray] = {}
        if not self._grid.finite:
            for name, arr in (("price", self.price), ("carbon", self.carbon)):
                bad = ~np.isfinite(arr).all(axis=1)
                if bad.any():
                    sid = net.sites[int(np.flatnonzero(bad)[0])].id
                    raise InputError(
                        f"the {name} signal has no value for part of the planning window",
                        source=f"site {sid}",
                        fix="give a signal (or forecast) that covers the horizon",
                    )

    def _blend_all(self) -> None:
        out = self._grid.blend(slice(None), self.T_ext)
        k = self.net.n_sites
        self._price, self._carbon = out[:k], out[k:]

    @property
    def price(self) -> FArray:
        """CNY/kWh per site and slot (``T_ext`` slots)."""
        if self._price is None:
            self._blend_all()
        assert self._price is not None
        return self._price

    @property
    def carbon(self) -> FArray:
        """g/kWh per site and slot."""
        if self._carbon is None:
            self._blend_all()
        assert self._carbon is not None
        return self._carbon

    @property
    def price_cum(self) -> FArray:
        """Per site: prefix sums of price times slot hours (CNY per kW), one column longer
        than the slots (computed when first read)."""
        if self._price_cum is None:
            self._price_cum = _cum_rows(self.price, self.slot_h)
        return self._price_cum

    @property
    def carbon_cum(self) -> FArray:
        """Per site: prefix sums of carbon times slot hours (g per kW)."""
        if self._carbon_cum is None:
            self._carbon_cum = _cum_rows(self.carbon, self.slot_h)
        return self._carbon_cum

    def _site_cums(self, s: int, x: float) -> FArray:
        """Rows ``s`` of ``price_cum`` and ``carbon_cum`` (the same numbers: prefix sums
        are summed left to right), only as far as ``_interp`` at ``x`` reads them."""
        k = int(x)
        cols = min(self.T_ext, k + 1 if x > k else k)
        head, sel = self._head, [s, self.net.n_sites + s]
        # The signals the weights were blended from, when they reach far enough.
        rows = head[sel, :cols] if 0 < cols <= head.shape[1] else self._grid.blend(sel, cols)
        out = np.zeros((2, cols + 1))
        np.add.accumulate(rows * self.slot_h, axis=1, out=out[:, 1:])
        return out

    def weights(self, metric: str) -> tuple[FArray, FArray]:
        """Per pair and slot, the value of one kW over the slot under ``metric``
        (``objective``: CNY incl. carbon price; ``cost``: CNY; ``carbon``: g CO2), and its
        prefix sums (one column longer)."""
        w = self._w.get(metric)
        if w is None:
            w, W = self._weights(metric, self.price, self.carbon)
            self._w[metric], self._W[metric] = w, W
        return w, self._W[metric]

    def weights_head(self, metric: str, cols: int) -> tuple[FArray, FArray]:
        """``weights(metric)`` over at least the first ``cols`` slots (and ``cols + 1``
        prefix sums): the same numbers, computed only as far as a job can reach when the
        full arrays are not needed (the simulator's one-job requests)."""
        if metric in self._w:
            return self.weights(metric)
        head = self._w_head.get(metric)
        if head is not None:
            if head[0].shape[1] >= cols:
                return head
            return self.weights(metric)  # a second, longer look: the full arrays
        both = self._grid.blend(slice(None), cols)
        if both.shape[1] > self._head.shape[1]:
            self._head = both
        k = self.net.n_sites
        self._w_head[metric] = head = self._weights(metric, both[:k], both[k:])
        return head

    def _weights(self, metric: str, price: FArray, carbon: FArray) -> tuple[FArray, FArray]:
        net = self.net
        slot_h = self.slot_h
        pue = _memo(net, ("pue", slot_h), lambda: net.pue[net.pair_site][:, None] * slot_h)
        # One pair per site in network order: the rows are the sites' (no gather).
        if not _pairs_are_sites(net):
            price, carbon = price[net.pair_site], carbon[net.pair_site]
        if metric == "objective":
            w = pue * (price + self.cp * 1e-6 * carbon)
        elif metric == "cost":
            w = pue * price
        elif metric == "carbon":
            w = pue * carbon
        else:
            raise ValueError(f"unknown metric {metric!r}")
        W = np.zeros((w.shape[0], w.shape[1] + 1))
        np.add.accumulate(w, axis=1, out=W[:, 1:])  # np.cumsum without its wrapper
        return w, W

    # ------------------------------------------------------------------ capacity

    def _capacity(self) -> None:
        net = self.net
        cap = _memo(
            net,
            ("cap-up", frozenset(self.req.down_sites)),
            lambda: np.where(self.down[net.pair_site], 0, net.cap).astype(np.int64),
        )
        # What the running allocations take, from the caller's ledger (or one built from
        # ``running`` for this request): the cost grows with the horizon and the pools, not
        # with the number of allocations (``engine.capacity``).
        ledger = self.req.capacity
        if ledger is None:
            ledger = CapacityLedger(self.req.running) if self.req.running else _EMPTY_LEDGER
        sids = _memo(
            net, ("pair-sites",), lambda: tuple(net.sites[int(s)].id for s in net.pair_site)
        )
        self.free = free_grid(ledger, sids, net.pair_acc, cap, self.now, self.slot, self.T_ext)

    def fits_window(self, rows: IntArray | None, a: int, b: int, ns: int, need: IntArray) -> BArray:
        """``capacity.fits_window`` on this request's free grid."""
        return fits_window(self.free, rows, a, b, ns, need)

    def fits_window_rows(
        self, rows: IntArray, a: int, b: int, ns: IntArray, need: IntArray
    ) -> BArray:
        """``capacity.fits_window_rows`` on this request's free grid."""
        return fits_window_rows(self.free, rows, a, b, ns, need)

    def need(self, v: JobView) -> IntArray:
        """Free accelerators each of ``v``'s pairs must have for it to start there: its
        gang, plus the pool's home reserve unless the pair is at the job's home site (where
        its first dataset lives; a job without data has no home)."""
        net, reserve = self.net, self.reserve
        if not _memo(net, ("reserve-any", self.req.home_reserve), lambda: bool(reserve.any())):
            return np.full(len(v.pairs), v.count, dtype=np.int64)
        home = v.datasets[0].home if v.datasets else -1
        # Per pair: the reserve a job homed at ``home`` must leave (0 at its home site).
        extra = _memo(
            net,
            ("reserve-away", self.req.home_reserve, home),
            lambda: np.where(net.pair_site != home, reserve, 0).astype(np.int64),
        )
        return np.asarray(v.count + (extra if _all_pairs(v, net) else extra[v.pairs]))

    def fits(self, p: int, k: int, ns: int, count: int) -> bool:
        """Whether ``count`` accelerators of pair ``p`` are free over slots ``[k, k + ns)``."""
        return bool(self.free[p, k : k + ns].min() >= count)

    def commit(self, p: int, k: int, ns: int, count: int) -> None:
        """Take ``count`` accelerators of pair ``p`` over slots ``[k, k + ns)``."""
        self.free[p, k : k + ns] -= count

    def snapshot(self) -> IntArray:
        """The free capacity now, to ``restore`` after a trial plan."""
        return self.free.copy()

    def restore(self, free: IntArray) -> None:
        self.free[...] = free

    # ------------------------------------------------------------------ jobs

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
                source = _memo(net, ("source", home), lambda: np.full(n, home, dtype=np.int64))
                cost[home], time_s[home] = 0.0, 0.0
                # Finite everywhere when the slowest copy is (sizes and times are >= 0).
                slowest = _memo(
                    net, ("slowest-copy", home), lambda: float(net.s_per_gb[home].max())
                )
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
        if job.deadline_s < job.earliest_start_s:
            return Rejection(
                "deadline",
                f"deadline is {(job.earliest_start_s - job.deadline_s) / 3600:.1f} h "
                "before the earliest start",
            )
        speed = self._speeds(job)
        # Which pairs the accelerator types and gang allow: the same for every job with
        # these speeds and this gang, so shared across requests.
        usable, any_usable, gang, any_gang = _memo(
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
        same = _pairs_are_sites(net)
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
        pairs = _memo(net, ("pairs", up.tobytes()), lambda: np.flatnonzero(up))
        every = len(pairs) == net.n_pairs
        earliest_off = max(0, job.earliest_start_s - self.now)
        sp0 = _memo(net, ("one-speed",), lambda: _one_speed(net.default_speed))
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
        # Power per pair for this gang and utilisation (a few of each come up).
        kw = _memo(
            net,
            ("kw", count, job.utilisation),
            lambda: count * (net.acc_power_w * job.utilisation + net.host_w) / 1000.0,
        )
        rent = _memo(net, ("rent", count), lambda: count * net.price_h)
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

    # ------------------------------------------------------------------ options

    def options(self, v: JobView, metric: str = "objective", capacity: bool = True) -> Options:
        """Every start of ``v`` in the horizon with its value under ``metric``
        (``objective``: cost + carbon price x carbon, ``cost``: CNY, ``carbon``: kg-ish
        weight; all per the same prefix sums)."""
        slot = self.slot
        dl = v.deadline_off
        if v.run_1 is not None:
            r_lo = r_hi = v.run_1
        else:
            r_lo, r_hi = int(v.run_s.min()), int(v.run_s.max())
        if r_lo == r_hi:
            # One run length: the bounds below in scalars (the same integers).
            k0 = max(0, -(-(int(v.ready.min()) + r_lo) // slot) - -(-r_lo // slot))
            k1 = min(self.T - 1, (dl - r_lo) // slot)
        else:
            ns_all = -(-v.run_s // slot)
            k0 = max(0, int(np.min(-(-(v.ready + v.run_s) // slot) - ns_all)))
            k1 = min(self.T - 1, int(np.max((dl - v.run_s) // slot)))
        if k1 < k0:
            empty = np.zeros((len(v.pairs), 0))
            return Options(k0, empty, empty.astype(bool), empty.astype(bool))
        K = k1 - k0 + 1
        a, b = k0, k1 + 1
        if r_lo != r_hi:
            w, W = self.weights(metric)
            return self._options_2d(v, metric, capacity, k0, K, w, W)
        r = r_lo
        n, rem = divmod(r, slot)
        # The weights of the slots a start in the window can reach (to slot b + n - 1).
        w, W = self.weights_head(metric, b + n)
        rows = v.pairs
        every = _all_pairs(v, self.net)
        if every:  # every pair, in order: slices instead of gathers
            w_rows, W_rows = w, W
        else:
            w_rows, W_rows = w[rows], W[rows]
        ns = n + (1 if rem else 0)
        f = rem / slot
        ready = v.ready[:, None]
        ts = np.arange(a * slot, b * slot, slot, dtype=np.int64)  # ks * slot
        # ``ts + r <= dl`` holds for every k <= k1 by the choice of k1.
        ok = ts >= ready
        c = W_rows[:, a + n : b + n] - W_rows[:, a:b]
        if rem:
            c += f * w_rows[:, a + n : b + n]
            # End-aligned: start at (k + ns) * slot - r, allowed when it is in time.
            end_s = ts + ns * slot
            ok_e = (end_s - r >= ready) & (end_s <= dl)
            ce = f * w_rows[:, a:b] + W_rows[:, a + 1 + n : b + 1 + n] - W_rows[:, a + 1 : b + 1]
            end_al = ok_e & (~ok | (ce < c - ALIGN_TOL * np.abs(c)))
            np.copyto(c, ce, where=end_al)
            ok |= ok_e
        else:
            end_al = np.zeros(ok.shape, dtype=bool)
        value = v.kw[:, None] * c
        if metric != "carbon":
            value += v.fixed[:, None]
        time_ok = ok
        if capacity:
            ok = ok & self.fits_window(None if every else rows, a, b, ns, self.need(v))
        value[~ok] = INF
        return Options(k0, value, end_al, time_ok)

    def _options_2d(
        self,
        v: JobView,
        metric: str,
        capacity: bool,
        k0: int,
        K: int,
        w: FArray,
        W: FArray,
    ) -> Options:
        """``options`` for a job whose run differs between pairs (several accelerator
        types): the same arithmetic with a run length per row."""
        slot, dl = self.slot, v.deadline_off
        r = v.run_s[:, None]
        n = r // slot
        rem = r - n * slot
        ns = n + (rem > 0)
        f = rem / slot
        rows = v.pairs[:, None]
        base = np.arange(k0, k0 + K, dtype=np.int64)[None, :]
        cn = base + n
        ts = base * slot
        ok = (ts >= v.ready[:, None]) & (ts + r <= dl)
        c = W[rows, cn] - W[rows, base] + f * w[rows, cn]
        te = (base + ns) * slot - r
        ok_e = (rem > 0) & (te >= v.ready[:, None]) & (te + r <= dl)
        ce = f * w[rows, base] + W[rows, cn + 1] - W[rows, base + 1]
        end_al = ok_e & (~ok | (ce < c - ALIGN_TOL * np.abs(c)))
        c = np.where(end_al, ce, c)
        ok = ok | ok_e
        value = v.kw[:, None] * c
        if metric != "carbon":
            value += v.fixed[:, None]
        time_ok = ok
        if capacity:
            ok = ok & self.fits_window_rows(v.pairs, k0, k0 + K, ns[:, 0], self.need(v))
        value[~ok] = INF
        return Options(k0, value, end_al, time_ok)

    def lower_bounds(self, v: JobView, metric: str = "objective") -> FArray:
        """Per usable pair, a value no start of ``v`` there can undercut: the run at the
        pair's cheapest slot of the whole window, plus the fixed costs."""
        w, _ = self.weights(metric)
        lo = self._wmin.get(metric)
        if lo is None:
            lo = self._wmin[metric] = w.min(axis=1)
        return np.asarray(v.kw * (v.run_s / self.slot) * lo[v.pairs] + v.fixed, dtype=np.float64)

    def start_off(self, v: JobView, i: int, k: int, end_aligned: bool) -> int:
        r = int(v.run_s[i])
        if end_aligned:
            return (k + -(-r // self.slot)) * self.slot - r
        return k * self.slot

    def footprint(self, v: JobView, i: int) -> int:
        return int(-(-int(v.run_s[i]) // self.slot))

    # ------------------------------------------------------------------ results

    def breakdown(self, v: JobView, i: int, start_off: int) -> Breakdown:
        """Cost and carbon of running ``v`` on usable pair ``i`` from ``now + start_off``."""
        p = int(v.pairs[i])
        s = int(self.net.pair_site[p])
        r = int(v.run_s[i])
        x0 = start_off / self.slot
        x1 = (start_off + r) / self.slot
        kwh_per_h = float(v.kw[i]) * float(self.net.pue[s])
        pc, cc = self._site_cums(s, x1)
        energy_cost = kwh_per_h * (_interp(pc, x1) - _interp(pc, x0))
        carbon_kg = kwh_per_h * (_interp(cc, x1) - _interp(cc, x0)) / 1000
        compute = float(v.fixed[i] - v.transfer_cny[i])
        transfer = float(v.transfer_cny[i])
        obj = energy_cost + compute + transfer + self.cp * carbon_kg / 1000.0
        return Breakdown(kwh_per_h * r / 3600.0, energy_cost, compute, transfer, carbon_kg, obj)

    def transfers(self, v: JobView, i: int) -> tuple[Transfer, ...]:
        s = int(self.net.pair_site[int(v.pairs[i])])
        out = []
        for info in v.datasets:
            src = int(info.source[s])
            if src == s:  # a copy is already at the site
                continue
            out.append(
                Transfer(
                    info.dataset.id,
                    self.net.sites[src].id,
                    self.net.sites[s].id,
                    info.dataset.size_gb,
                    self.now,
                    self.now + int(info.time_s[s]),
                    float(info.cost[s]),
                )
            )
        return tuple(out)

    def site_of(self, v: JobView, i: int) -> Site:
        return self.net.sites[int(self.net.pair_site[int(v.pairs[i])])]

    def acc_of(self, v: JobView, i: int) -> str:
        return self.net.pair_acc[int(v.pairs[i])]


_NO_COLUMNS = np.zeros((0, 0))


def _memo(net: NetworkArrays, key: tuple[Any, ...], make: Any) -> Any:
    """``make()`` once per network and key (keys hold only immutable values); arrays come
    back read-only since every request on the network shares them."""
    hit = net.memo.get(key)
    if hit is None:
        if len(net.memo) >= 256:
            net.memo.clear()
        hit = make()
        if isinstance(hit, np.ndarray):
            hit.setflags(write=False)
        net.memo[key] = hit
    return hit


def allowed_sites(net: NetworkArrays, home: int, scope: rules.Scope, min_level: int) -> BArray:
    """Sites a dataset homed at ``home`` may go to under ``scope`` and ``min_level``: the
    same for every such dataset, so computed once per network (read-only)."""
    return _memo(
        net, ("allowed", home, scope, min_level), lambda: _allowed(net, home, scope, min_level)
    )


def _allowed(net: NetworkArrays, home: int, scope: rules.Scope, min_level: int) -> BArray:
    n = net.n_sites
    if scope is rules.Scope.HOME_SITE:
        allowed = np.zeros(n, dtype=bool)
    elif scope is rules.Scope.HOME_JURISDICTION:
        allowed = net.juris == net.juris[home]
    else:
        allowed = np.ones(n, dtype=bool)
    allowed = allowed & (net.level >= min_level)
    allowed[home] = True
    return allowed


def _pairs_are_sites(net: NetworkArrays) -> bool:
    """Whether the network has one pair per site, in site order (pair rows are site rows)."""
    return bool(
        _memo(
            net,
            ("pairs-are-sites",),
            lambda: bool(np.array_equal(net.pair_site, np.arange(net.n_sites))),
        )
    )


def _slowest(speed: FArray) -> float:
    pos = speed[speed > 0]
    return float(pos.min()) if pos.size else 1.0


def _one_speed(speed: FArray) -> float:
    """The speed of every pair when they all have the same one (> 0), else 0."""
    return (
        float(speed[0]) if speed.size and speed[0] > 0 and bool(np.all(speed == speed[0])) else 0.0
    )


def _gang(speed: FArray, cap: IntArray, count: int) -> tuple[BArray, bool, BArray, bool]:
    usable = speed > 0
    gang = usable & (cap >= count)
    return usable, bool(usable.any()), gang, bool(gang.any())


def _all_pairs(v: JobView, net: NetworkArrays) -> bool:
    """Whether ``v`` may use every pair (its pairs are sorted and distinct, so the count
    tells)."""
    return len(v.pairs) == net.n_pairs


def _cum_rows(arr: FArray, slot_h: float) -> FArray:
    out = np.zeros((arr.shape[0], arr.shape[1] + 1))
    np.cumsum(arr * slot_h, axis=1, out=out[:, 1:])
    return out


def _interp(cum: FArray, x: float) -> float:
    k = int(x)
    frac = x - k
    if frac == 0.0:
        return float(cum[k])
    return float(cum[k] + frac * (cum[k + 1] - cum[k]))
