"""Matching orders to offers through the engine: price, window, carbon cap, capacity and
data rules hold in every quote, and a batch never oversells an offer."""

from __future__ import annotations

import dataclasses

import pytest

from computenet.catalog import load_network
from computenet.errors import InputError
from computenet.market.orders import (
    NoMatch,
    Offer,
    Order,
    Quote,
    Sold,
    check_offer,
    match,
    match_many,
)
from computenet.market.units import measured_throughput
from computenet.model import Classification, Dataset

NET = load_network("china")
NOW = 1_700_000_000 // 3600 * 3600
H = 3600
OFFERS = [
    Offer("o-guian", "p1", "guian", "H20", 64, NOW, NOW + 48 * H, 30),
    Offer("o-horinger", "p2", "horinger", "A100", 64, NOW, NOW + 48 * H, 25),
    Offer("o-wuhu", "p3", "wuhu", "H20", 64, NOW + 2 * H, NOW + 24 * H, 20),
]
ORDER = Order(
    "ord",
    "t1",
    units=10.0,
    accelerators=8,
    start_s=NOW,
    end_s=NOW + 24 * H,
    max_price_fen_per_unit=40,
)


def quote(order: Order = ORDER, **kw) -> Quote:
    q = match(order, OFFERS, NET, now_s=NOW, **kw)
    assert isinstance(q, Quote), q
    return q


def test_a_quote_holds_the_order_window_price_and_units() -> None:
    q = quote()
    assert ORDER.start_s <= q.start_s < q.end_s <= ORDER.end_s
    offer = next(o for o in OFFERS if o.id == q.offer_id)
    assert offer.start_s <= q.start_s and q.end_s <= offer.end_s
    assert offer.price_fen_per_unit <= ORDER.max_price_fen_per_unit
    assert q.price_fen == round(ORDER.units * offer.price_fen_per_unit)
    # The run delivers the units at the pool's throughput: accelerators x hours x units/h.
    delivered = q.accelerators * (q.end_s - q.start_s) / H * q.throughput.units_per_hour
    assert delivered == pytest.approx(ORDER.units, rel=1e-3)
    assert q.reason and q.alternatives


def test_offers_above_the_maximum_price_are_never_used() -> None:
    cheap = dataclasses.replace(ORDER, max_price_fen_per_unit=22)
    assert quote(cheap).offer_id == "o-wuhu"
    none = match(dataclasses.replace(ORDER, max_price_fen_per_unit=5), OFFERS, NET, now_s=NOW)
    assert isinstance(none, NoMatch) and none.constraint == "price" and "20 fen" in none.reason


def test_the_carbon_cap_moves_or_refuses_the_order() -> None:
    free = quote(carbon_price_cny_per_t=0)
    capped = match(
        dataclasses.replace(ORDER, carbon_cap_kg=free.carbon_kg * 0.5), OFFERS, NET, now_s=NOW
    )
    if isinstance(capped, Quote):
        assert capped.carbon_kg <= free.carbon_kg * 0.5 and capped.site_id != free.site_id
    else:
        assert capped.constraint == "carbon" and free.site_id in capped.reason


def test_sold_capacity_is_not_sold_again() -> None:
    q = quote(dataclasses.replace(ORDER, accelerators=64, units=5.0))
    sold = [Sold(q.offer_id, 64, q.start_s, q.end_s)]
    again = match(
        dataclasses.replace(ORDER, accelerators=64, units=5.0), OFFERS, NET, now_s=NOW, sold=sold
    )
    assert isinstance(again, NoMatch) or again.offer_id != q.offer_id or again.start_s >= q.end_s


def test_data_rules_hold_for_core_data() -> None:
    core = Dataset("ds", 50.0, "guian", Classification.CORE)
    q = quote(dataclasses.replace(ORDER, datasets=("ds",)), datasets=[core])
    assert q.site_id == "guian"  # core data is processed where it lives
    only_elsewhere = [o for o in OFFERS if o.site_id != "guian"]
    r = match(
        dataclasses.replace(ORDER, datasets=("ds",)),
        only_elsewhere,
        NET,
        now_s=NOW,
        datasets=[core],
    )
    assert isinstance(r, NoMatch)


def test_a_measured_pool_takes_longer_for_the_same_units() -> None:
    spec = quote(dataclasses.replace(ORDER, accelerator_types=("A100",)))
    slow = measured_throughput(200.0, "cert1", "A100 measured")
    measured = quote(
        dataclasses.replace(ORDER, accelerator_types=("A100",)),
        throughputs={("horinger", "A100"): slow},
    )
    assert measured.throughput.basis == "measured"
    assert (measured.end_s - measured.start_s) == pytest.approx(
        (spec.end_s - spec.start_s) * 312 / 200, rel=0.01
    )


def test_a_batch_never_oversells_an_offer() -> None:
    orders = [
        dataclasses.replace(ORDER, id=f"b{i}", accelerators=16, units=4.0 + i % 3)
        for i in range(30)
    ]
    results = match_many(orders, OFFERS, NET, now_s=NOW)
    quotes = [r for r in results if isinstance(r, Quote)]
    assert quotes
    for offer in OFFERS:
        mine = [q for q in quotes if q.offer_id == offer.id]
        for t in {q.start_s for q in mine}:
            assert (
                sum(q.accelerators for q in mine if q.start_s <= t < q.end_s) <= offer.accelerators
            )
    for r, o in zip(results, orders, strict=True):
        assert r.order_id == o.id


def test_offer_checks_name_the_field() -> None:
    with pytest.raises(InputError, match="accelerator"):
        check_offer(dataclasses.replace(OFFERS[0], accelerator="MLU370"), NET)
    with pytest.raises(InputError, match="accelerators"):
        check_offer(dataclasses.replace(OFFERS[0], accelerators=10_000), NET)
    with pytest.raises(InputError, match="price_fen_per_unit"):
        check_offer(dataclasses.replace(OFFERS[0], price_fen_per_unit=0), NET)
    with pytest.raises(InputError, match="site_id"):
        check_offer(dataclasses.replace(OFFERS[0], site_id="mars"), NET)
