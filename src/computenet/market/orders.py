"""Offers, orders and matching: the plan is the match.

A provider **offers** accelerators of one pool (site, accelerator type) over a window at a
price per compute unit (``market.units``): ``on_demand``, or a ``reserved`` block sold
whole. A tenant's **order** asks for a number of compute units on a gang of accelerators
within a time window, at a maximum price per unit, under a carbon cap, with its datasets.

Matching hands the order to the engine as a training job on a network made of the offers
that qualify (price, window, type, size): each pool appears with the cheapest such offer,
its capacity closed outside the offer's window and reduced by what is already sold. So
data rules, deadlines, transfer times and capacity hold exactly as for any job, and the
reply's placement *is* the match; its breakdown and alternatives explain it. A placement
over the carbon cap removes that site and asks again (at most ``MAX_CARBON_RETRIES``).
The result is a **quote**; nothing is committed until the tenant accepts it.

Run time is planned at the slowest throughput of the qualifying pools of a type (measured
where a certificate exists, else the spec), so a quote's window holds at every pool; the
units delivered are what is charged.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from computenet.engine.planner import plan
from computenet.engine.types import Allocation, Placement, PlanRequest
from computenet.errors import InputError
from computenet.market.units import Throughput, spec_throughput
from computenet.model import HOUR_S, Dataset, Network, Pool, TrainingJob

MAX_CARBON_RETRIES = 5
FAR_FUTURE_S = 2**40
OfferKind = Literal["on_demand", "reserved"]


@dataclass(frozen=True)
class Offer:
    id: str
    provider_id: str
    site_id: str
    accelerator: str
    accelerators: int
    start_s: int
    end_s: int
    price_fen_per_unit: int
    kind: OfferKind = "on_demand"


@dataclass(frozen=True)
class Order:
    id: str
    tenant_id: str
    units: float
    accelerators: int
    start_s: int
    end_s: int
    max_price_fen_per_unit: int
    carbon_cap_kg: float | None = None
    datasets: tuple[str, ...] = ()
    accelerator_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sold:
    """Capacity of an offer already sold (a committed order's reservation)."""

    offer_id: str
    accelerators: int
    start_s: int
    end_s: int


@dataclass(frozen=True)
class Quote:
    order_id: str
    offer_id: str
    provider_id: str
    site_id: str
    accelerator: str
    accelerators: int
    start_s: int
    end_s: int
    units: float
    throughput: Throughput
    price_fen: int
    transfer_fen: int
    carbon_kg: float
    energy_kwh: float
    reason: str
    alternatives: tuple[str, ...] = ()

    @property
    def total_fen(self) -> int:
        return self.price_fen + self.transfer_fen


@dataclass(frozen=True)
class NoMatch:
    order_id: str
    constraint: str  # price | window | capacity | carbon | data-rule | deadline ...
    reason: str


def check_offer(o: Offer, network: Network) -> Offer:
    """Range checks of an offer against the network; errors name the field."""
    try:
        site = network.site(o.site_id)
    except KeyError:
        raise InputError(
            f"no site {o.site_id!r}", where="site_id", fix="use a site id of GET /v1/sites"
        ) from None
    if site.capacity(o.accelerator) <= 0:
        raise InputError(
            f"site {o.site_id!r} has no {o.accelerator} pool",
            where="accelerator",
            fix=f"use one of: {', '.join(sorted({p.accelerator for p in site.pools}))}",
        )
    if not 0 < o.accelerators <= site.capacity(o.accelerator):
        raise InputError(
            f"{o.accelerators} accelerators",
            where="accelerators",
            fix=f"offer 1 to {site.capacity(o.accelerator)} (the pool's size)",
        )
    if o.end_s <= o.start_s:
        raise InputError("the window ends before it starts", where="end_s", fix="end_s > start_s")
    if o.price_fen_per_unit <= 0:
        raise InputError(
            f"{o.price_fen_per_unit} fen", where="price_fen_per_unit", fix="a price above 0"
        )
    return o


def check_order(o: Order) -> Order:
    if not math.isfinite(o.units) or o.units <= 0:
        raise InputError(f"{o.units} units", where="units", fix="order more than 0 compute units")
    if o.accelerators <= 0:
        raise InputError(f"{o.accelerators}", where="accelerators", fix="a gang of 1 or more")
    if o.end_s <= o.start_s:
        raise InputError("the window ends before it starts", where="end_s", fix="end_s > start_s")
    if o.max_price_fen_per_unit <= 0:
        raise InputError(
            f"{o.max_price_fen_per_unit}", where="max_price_fen_per_unit", fix="above 0"
        )
    if o.carbon_cap_kg is not None and (not math.isfinite(o.carbon_cap_kg) or o.carbon_cap_kg < 0):
        raise InputError(
            f"{o.carbon_cap_kg}", where="carbon_cap_kg", fix="a finite number of kg, 0 or more"
        )
    return o


def qualifying(order: Order, offers: Sequence[Offer], now_s: int) -> dict[tuple[str, str], Offer]:
    """The cheapest qualifying offer of each pool: price, window, type and size fit."""
    best: dict[tuple[str, str], Offer] = {}
    for o in offers:
        if o.price_fen_per_unit > order.max_price_fen_per_unit:
            continue
        if o.end_s <= max(order.start_s, now_s) or o.start_s >= order.end_s:
            continue
        if order.accelerator_types and o.accelerator not in order.accelerator_types:
            continue
        if o.accelerators < order.accelerators:
            continue
        key = (o.site_id, o.accelerator)
        if key not in best or (o.price_fen_per_unit, o.id) < (
            best[key].price_fen_per_unit,
            best[key].id,
        ):
            best[key] = o
    return best


def match(
    order: Order,
    offers: Sequence[Offer],
    network: Network,
    *,
    now_s: int,
    datasets: Sequence[Dataset] = (),
    sold: Sequence[Sold] = (),
    throughputs: Mapping[tuple[str, str], Throughput] | None = None,
    carbon_price_cny_per_t: float = 0.0,
    policy: str = "greedy",
) -> Quote | NoMatch:
    """Quote ``order`` against ``offers`` with the engine (see the module docstring)."""
    check_order(order)
    pools = qualifying(order, offers, now_s)
    if not pools:
        return NoMatch(order.id, "price", _why_no_offer(order, offers, now_s))
    throughput = {k: (throughputs or {}).get(k) or _spec(network, k[1]) for k in pools}
    market_net = _market_network(network, pools, throughput)
    job = _job(order, market_net, pools, throughput, now_s)
    held = _closed_and_sold(pools, sold, now_s)
    down: set[str] = {s.id for s in market_net.sites if not any(k[0] == s.id for k in pools)}
    over_cap: list[str] = []
    for _ in range(MAX_CARBON_RETRIES + 1):
        reply = plan(
            PlanRequest(
                now_s=now_s,
                network=market_net,
                jobs=(job,),
                policy=policy,
                datasets=tuple(datasets),
                running=held,
                carbon_price_cny_per_t=carbon_price_cny_per_t,
                down_sites=frozenset(down),
                horizon_slots=max(1, math.ceil((order.end_s - now_s) / HOUR_S)),
            )
        )
        if not reply.placements:
            if over_cap:
                why = f"every site that fits is over the carbon cap ({', '.join(over_cap)})"
                return NoMatch(order.id, "carbon", why)
            if reply.infeasible:
                inf = reply.infeasible[0]
                return NoMatch(order.id, inf.constraint, inf.reason)
            why = reply.deferred[0].reason if reply.deferred else "no placement"
            return NoMatch(order.id, "capacity", why)
        p = reply.placements[0]
        if order.carbon_cap_kg is not None and p.breakdown.carbon_kg > order.carbon_cap_kg:
            over_cap.append(f"{p.site_id} {p.breakdown.carbon_kg:.1f} kg")
            down.add(p.site_id)
            continue
        return _quote(order, p, pools, throughput, over_cap)
    return NoMatch(order.id, "carbon", "over the carbon cap at every site tried")


def match_many(
    orders: Sequence[Order],
    offers: Sequence[Offer],
    network: Network,
    *,
    now_s: int,
    datasets: Sequence[Dataset] = (),
    sold: Sequence[Sold] = (),
    throughputs: Mapping[tuple[str, str], Throughput] | None = None,
    carbon_price_cny_per_t: float = 0.0,
    policy: str = "greedy",
) -> list[Quote | NoMatch]:
    """Quote many orders at once, as if one after the other in the given order: orders
    that qualify for the same offers go to the engine in one request (they compete for the
    same capacity there); an order the joint plan leaves out or puts over its carbon cap is
    then matched alone against what is left."""
    for o in orders:
        check_order(o)
    sold_now = list(sold)
    out: dict[str, Quote | NoMatch] = {}
    groups: dict[tuple[tuple[str, str], ...], list[Order]] = {}
    for o in orders:
        pools = qualifying(o, offers, now_s)
        groups.setdefault(tuple(sorted((k[0], v.id) for k, v in pools.items())), []).append(o)
    retry: list[Order] = []
    for key, members in groups.items():
        if not key or len(members) == 1:
            retry += members
            continue
        pools = qualifying(members[0], offers, now_s)
        throughput = {k: (throughputs or {}).get(k) or _spec(network, k[1]) for k in pools}
        market_net = _market_network(network, pools, throughput)
        down = {s.id for s in market_net.sites if not any(k[0] == s.id for k in pools)}
        end = max(o.end_s for o in members)
        reply = plan(
            PlanRequest(
                now_s=now_s,
                network=market_net,
                jobs=tuple(_job(o, market_net, pools, throughput, now_s) for o in members),
                policy=policy,
                datasets=tuple(datasets),
                running=_closed_and_sold(pools, sold_now, now_s),
                carbon_price_cny_per_t=carbon_price_cny_per_t,
                down_sites=frozenset(down),
                horizon_slots=max(1, math.ceil((end - now_s) / HOUR_S)),
            )
        )
        by_id = {o.id: o for o in members}
        for p in reply.placements:
            order = by_id[p.job_id]
            if order.carbon_cap_kg is not None and p.breakdown.carbon_kg > order.carbon_cap_kg:
                continue
            quote = _quote(order, p, pools, throughput, [])
            out[order.id] = quote
            sold_now.append(Sold(quote.offer_id, quote.accelerators, p.start_s, p.end_s))
        retry += [o for o in members if o.id not in out]
    for o in retry:
        result = match(
            o,
            offers,
            network,
            now_s=now_s,
            datasets=datasets,
            sold=sold_now,
            throughputs=throughputs,
            carbon_price_cny_per_t=carbon_price_cny_per_t,
            policy=policy,
        )
        out[o.id] = result
        if isinstance(result, Quote):
            sold_now.append(
                Sold(result.offer_id, result.accelerators, result.start_s, result.end_s)
            )
    return [out[o.id] for o in orders]


def _quote(
    order: Order,
    p: Placement,
    pools: Mapping[tuple[str, str], Offer],
    throughput: Mapping[tuple[str, str], Throughput],
    over_cap: Sequence[str],
) -> Quote:
    offer = pools[(p.site_id, p.accelerator)]
    t = throughput[(p.site_id, p.accelerator)]
    run_s = math.ceil(order.units / (order.accelerators * t.units_per_hour) * HOUR_S)
    return Quote(
        order_id=order.id,
        offer_id=offer.id,
        provider_id=offer.provider_id,
        site_id=p.site_id,
        accelerator=p.accelerator,
        accelerators=order.accelerators,
        start_s=p.start_s,
        end_s=min(p.end_s, p.start_s + run_s),
        units=order.units,
        throughput=t,
        price_fen=round(order.units * offer.price_fen_per_unit),
        transfer_fen=round(p.breakdown.transfer_cost_cny * 100),
        carbon_kg=p.breakdown.carbon_kg,
        energy_kwh=p.breakdown.energy_kwh,
        reason=p.reason,
        alternatives=tuple(
            [*(f"{c}: over the carbon cap" for c in over_cap)]
            + [
                f"{a.site_id}: {a.reason}"
                for a in p.alternatives
                # sites with no offer to match, and those over the cap, are said above
                if any(k[0] == a.site_id for k in pools)
                and not any(c.startswith(f"{a.site_id} ") for c in over_cap)
            ]
        ),
    )


def _spec(network: Network, accelerator: str) -> Throughput:
    return spec_throughput(network.accelerators[accelerator])


_MARKET_NETWORKS: OrderedDict[tuple[object, ...], tuple[Network, Network]] = OrderedDict()
_MARKET_NETWORKS_KEPT = 64
_MARKET_NETWORKS_LOCK = threading.Lock()


def _market_network(
    network: Network,
    pools: Mapping[tuple[str, str], Offer],
    throughput: Mapping[tuple[str, str], Throughput],
) -> Network:
    """The network as the offers make it: one pool per qualifying offer, priced per
    accelerator-hour from the offer's price per unit and the pool's throughput. The same
    offers give the same network object, so the engine's per-network arrays are reused."""
    key = (
        id(network),
        *sorted(
            (k, o.accelerators, o.price_fen_per_unit, throughput[k].tflops_bf16)
            for k, o in pools.items()
        ),
    )
    with _MARKET_NETWORKS_LOCK:
        hit = _MARKET_NETWORKS.get(key)
        if hit is not None and hit[0] is network:
            _MARKET_NETWORKS.move_to_end(key)
            return hit[1]
    built = _build_market_network(network, pools, throughput)
    with _MARKET_NETWORKS_LOCK:
        _MARKET_NETWORKS[key] = (network, built)
        if len(_MARKET_NETWORKS) > _MARKET_NETWORKS_KEPT:
            _MARKET_NETWORKS.popitem(last=False)
    return built


def _build_market_network(
    network: Network,
    pools: Mapping[tuple[str, str], Offer],
    throughput: Mapping[tuple[str, str], Throughput],
) -> Network:
    sites = []
    for site in network.sites:
        mine = [
            Pool(
                accelerator=acc,
                count=offer.accelerators,
                price_cny_per_h=offer.price_fen_per_unit
                * throughput[(sid, acc)].units_per_hour
                / 100,
            )
            for (sid, acc), offer in sorted(pools.items())
            if sid == site.id
        ]
        # A site with no qualifying offer keeps its pools and is planned as down.
        sites.append(replace(site, pools=tuple(mine)) if mine else site)
    return replace(network, sites=tuple(sites))


def _job(
    order: Order,
    network: Network,
    pools: Mapping[tuple[str, str], Offer],
    throughput: Mapping[tuple[str, str], Throughput],
    now_s: int,
) -> TrainingJob:
    """The order as a training job: work on the reference accelerator, each type's speed
    the slowest qualifying pool's throughput against the reference's spec."""
    ref = spec_throughput(network.accelerators[network.reference_accelerator])
    slowest: dict[str, float] = {}
    for (_, acc), t in throughput.items():
        slowest[acc] = min(slowest.get(acc, math.inf), t.tflops_bf16 / ref.tflops_bf16)
    return TrainingJob(
        id=order.id,
        accelerators=order.accelerators,
        work_h=order.units / (order.accelerators * ref.units_per_hour),
        earliest_start_s=max(order.start_s, now_s),
        deadline_s=order.end_s,
        tenant=order.tenant_id,
        accelerator_speed=slowest,
        datasets=order.datasets,
        utilisation=1.0,
    )


def _closed_and_sold(
    pools: Mapping[tuple[str, str], Offer], sold: Sequence[Sold], now_s: int
) -> tuple[Allocation, ...]:
    """Capacity a pool does not have: outside its offer's window, and what is sold."""
    held: list[Allocation] = []
    for (site, acc), o in pools.items():
        if o.start_s > now_s:
            held.append(
                Allocation(f"closed:{o.id}:before", site, acc, o.accelerators, now_s, o.start_s)
            )
        held.append(
            Allocation(f"closed:{o.id}:after", site, acc, o.accelerators, o.end_s, FAR_FUTURE_S)
        )
        for k, s in enumerate(x for x in sold if x.offer_id == o.id):
            held.append(
                Allocation(f"sold:{o.id}:{k}", site, acc, s.accelerators, s.start_s, s.end_s)
            )
    return tuple(held)


def _why_no_offer(order: Order, offers: Sequence[Offer], now_s: int) -> str:
    if not offers:
        return "no provider offers compute now"
    cheapest = min(o.price_fen_per_unit for o in offers)
    if cheapest > order.max_price_fen_per_unit:
        return (
            f"the cheapest offer is {cheapest} fen per unit, above the order's maximum of "
            f"{order.max_price_fen_per_unit}"
        )
    return (
        "no offer within the price covers the order's window with a pool of "
        f"{order.accelerators} accelerators"
        + (f" of type {', '.join(order.accelerator_types)}" if order.accelerator_types else "")
    )
