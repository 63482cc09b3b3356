"""Forecast modes: perfect, persistence (never looks past the issue time) and seeded noise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from computenet.errors import UnknownNameError
from computenet.model import DAY_S, Signal
from computenet.signals import ConstantSignal, SeriesSignal, forecast

T0 = 1_688_342_400  # 2023-07-03T00:00:00Z
RNG = np.random.default_rng(7)
TRUTH = SeriesSignal(T0 - 10 * DAY_S, 3600, RNG.uniform(100, 700, 24 * 30), unit="gCO2/kWh")


def test_perfect_is_the_truth_and_unknown_modes_are_refused() -> None:
    assert forecast(TRUTH, "perfect", T0) is TRUTH
    with pytest.raises(UnknownNameError, match="persistence") as err:
        forecast(TRUTH, "oracle", T0)
    assert err.value.valid == ["noisy", "perfect", "persistence"]


def test_persistence_repeats_the_day_before_issue() -> None:
    issued = T0 + 5 * 3600
    f = forecast(TRUTH, "persistence", issued)
    assert isinstance(f, Signal)
    for h in range(-30, 60):
        t = issued + h * 3600
        expect = TRUTH.at(t) if t < issued else TRUTH.at(issued - DAY_S + (h % 24) * 3600)
        assert f.at(t) == expect
    w = f.window(issued - 3 * 3600, issued + 48 * 3600)
    assert list(w) == [f.at(issued + k * 3600) for k in range(-3, 48)]
    assert f.mean(issued - 3 * 3600, issued + 48 * 3600) == pytest.approx(w.mean())
    # a step straddling the issue time mixes truth and forecast by time
    mixed = f.window(issued - 1800, issued + 1800)[0]
    assert mixed == pytest.approx((TRUTH.at(issued - 1800) + f.at(issued)) / 2)
    # a constant is its own persistence forecast
    c = ConstantSignal(3.0)
    assert forecast(c, "persistence", T0) is c


@settings(max_examples=40, deadline=None)
@given(issued_h=st.integers(24, 24 * 20), lead_h=st.integers(0, 24 * 5), bump=st.floats(1, 1e3))
def test_persistence_never_looks_past_the_issue_time(
    issued_h: int, lead_h: int, bump: float
) -> None:
    issued = TRUTH.start_s + issued_h * 3600
    later = TRUTH.values.copy()
    later[issued_h:] += bump  # change everything from the issue time on
    other = SeriesSignal(TRUTH.start_s, 3600, later)
    a = forecast(TRUTH, "persistence", issued)
    b = forecast(other, "persistence", issued)
    t = issued + lead_h * 3600
    assert a.at(t) == b.at(t)
    assert list(a.window(issued, issued + 72 * 3600)) == list(b.window(issued, issued + 72 * 3600))


def test_noisy_is_seeded_and_has_the_asked_relative_error() -> None:
    issued = T0
    a = forecast(TRUTH, "noisy", issued, rel_error=0.2, seed=11)
    b = forecast(TRUTH, "noisy", issued, rel_error=0.2, seed=11)
    c = forecast(TRUTH, "noisy", issued, rel_error=0.2, seed=12)
    span = (issued, issued + 400 * 3600)  # beyond one noise chunk (a week)
    wa, wb, wc = a.window(*span), b.window(*span), c.window(*span)
    assert np.array_equal(wa, wb) and not np.array_equal(wa, wc)
    # the past is known
    assert a.at(issued - 1) == TRUTH.at(issued - 1)
    assert list(a.window(issued - 5 * 3600, issued)) == list(
        TRUTH.window(issued - 5 * 3600, issued)
    )
    rel = wa / TRUTH.window(*span) - 1
    assert abs(rel.mean()) < 0.03 and 0.17 < rel.std() < 0.23
    assert a.at(issued + 3601) == pytest.approx(wa[1])
    # rel_error 0 is the truth
    z = forecast(TRUTH, "noisy", issued, rel_error=0.0, seed=3)
    assert list(z.window(*span)) == list(TRUTH.window(*span))


@settings(max_examples=40, deadline=None)
@given(
    off=st.integers(-120, 120).map(lambda m: m * 60),
    length=st.integers(1, 3 * 86400),
    step=st.sampled_from([900, 1800, 3600, 7200, 10800]),
)
def test_noisy_window_and_mean_match_its_values(off: int, length: int, step: int) -> None:
    issued = T0 + 3 * 3600
    f = forecast(TRUTH, "noisy", issued, rel_error=0.3, seed=5)
    start = issued + off
    w = f.window(start, start + length, step)
    k = w.size - 1
    a = start + k * step
    # minute samples are exact: truth and noise change only on whole hours
    samples = [f.at(a + s) for s in range(0, step, 60)]
    assert w[k] == pytest.approx(np.mean(samples), rel=1e-9)
    assert f.mean(start, start + step * w.size) == pytest.approx(w.mean(), rel=1e-9)
