"""The distance model: physical (never faster than light in fibre) and labelled modelled."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from computenet.errors import InputError
from computenet.network import DistanceModel, Links, Place, fibre_bound_ms, haversine_km

lat = st.floats(-90, 90, allow_nan=False)
lon = st.floats(-180, 180, allow_nan=False)


@given(
    a=st.tuples(lat, lon),
    b=st.tuples(lat, lon),
    route=st.floats(1.0, 5.0, allow_nan=False),
    overhead=st.floats(0.0, 50.0, allow_nan=False),
)
def test_no_modelled_latency_is_below_the_fibre_bound(a, b, route, overhead) -> None:
    model = DistanceModel(route, overhead)
    rtt = model.rtt_ms(*a, *b)
    assert rtt >= fibre_bound_ms(haversine_km(*a, *b))
    links = Links({"a": Place("a", *a), "b": Place("b", *b)}, model=model)
    est = links.latency("a", "b")
    assert est.kind == "modelled" and "modelled" in est.source
    assert est.rtt_ms >= 2 * haversine_km(*a, *b) / 200


def test_known_distances_and_the_formula() -> None:
    # Beijing - Guiyang, about 1,730 km great circle
    d = haversine_km(39.90, 116.40, 26.65, 106.63)
    assert 1700 < d < 1760
    assert fibre_bound_ms(d) == pytest.approx(d / 100)
    m = DistanceModel()
    assert m.rtt_ms(39.90, 116.40, 26.65, 106.63) == pytest.approx(2 * d * 1.5 / 200 + 2.0)
    assert m.rtt_ms(0, 0, 0, 0) == 2.0
    # antipodes: half the Earth's circumference
    assert haversine_km(0, 0, 0, 180) == pytest.approx(20015, rel=1e-3)
    assert "x 1.5 at 200 km/ms in fibre + 2 ms" in m.label


def test_an_unphysical_model_is_refused() -> None:
    with pytest.raises(InputError, match="route factor"):
        DistanceModel(route_factor=0.9)
    with pytest.raises(InputError, match="overhead"):
        DistanceModel(overhead_ms=-1)
