"""The static arrays of a network, shared by every request on it.

*Pairs*: one per (site, accelerator type), in network order, with their capacity, power,
host power and rental price; per site its PUE, jurisdiction and security level; between
sites the egress price and transfer time per GB. Computed once per ``Network`` object and
kept with a bounded memo of derived read-only arrays (``memo``).

``CompiledBase`` names what every part of a compiled request (``engine.problem``) reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from computenet.engine import rules
from computenet.engine.types import PlanRequest
from computenet.errors import InputError
from computenet.model import Network, Site

IntArray = npt.NDArray[np.int64]
FArray = npt.NDArray[np.float64]
BArray = npt.NDArray[np.bool_]

INF = math.inf


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


def memo(net: NetworkArrays, key: tuple[Any, ...], make: Any) -> Any:
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
    return memo(
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


def pairs_are_sites(net: NetworkArrays) -> bool:
    """Whether the network has one pair per site, in site order (pair rows are site rows)."""
    return bool(
        memo(
            net,
            ("pairs-are-sites",),
            lambda: bool(np.array_equal(net.pair_site, np.arange(net.n_sites))),
        )
    )


def slowest_speed(speed: FArray) -> float:
    pos = speed[speed > 0]
    return float(pos.min()) if pos.size else 1.0


def one_speed(speed: FArray) -> float:
    """The speed of every pair when they all have the same one (> 0), else 0."""
    return (
        float(speed[0]) if speed.size and speed[0] > 0 and bool(np.all(speed == speed[0])) else 0.0
    )


class CompiledBase:
    """What every part of a compiled request reads (set by ``Problem.__init__``): the
    request, its network's arrays, the planning time, the internal slot (s and h), how many
    request slots make one (``refine``), the slots starts may use (``T``) and the slots
    signals and capacity cover (``T_ext``: ``T`` plus the longest run), the carbon price
    (CNY/t), and per pair the home reserve and per site whether it is down."""

    req: PlanRequest
    net: NetworkArrays
    now: int
    refine: int
    slot: int
    slot_h: float
    T: int
    T_ext: int
    cp: float
    reserve: IntArray
    down: BArray
