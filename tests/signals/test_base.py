import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from computenet.model import Signal
from computenet.signals import ConstantSignal, SeriesSignal


def test_both_kinds_satisfy_the_signal_protocol() -> None:
    assert isinstance(ConstantSignal(1.0), Signal)
    assert isinstance(SeriesSignal(0, 3600, np.ones(3)), Signal)


def test_series_at_window_and_mean_on_an_hourly_grid() -> None:
    s = SeriesSignal(start_s=0, step_s=3600, values=np.array([1.0, 2.0, 3.0]))
    assert s.at(0) == 1.0 and s.at(3599) == 1.0 and s.at(3600) == 2.0
    assert list(s.window(0, 3 * 3600)) == [1.0, 2.0, 3.0]
    assert s.mean(0, 3 * 3600) == 2.0
    # a window that is not aligned with the grid averages over each step
    assert list(s.window(1800, 1800 + 2 * 3600)) == [1.5, 2.5]
    # two-hour steps average pairs
    assert list(s.window(0, 4 * 3600, 7200)) == [1.5, 2.0]  # 3 then wraps to 1


def test_series_wraps_with_its_own_period() -> None:
    s = SeriesSignal(start_s=100, step_s=10, values=np.array([5.0, 7.0]))
    assert s.at(120) == 5.0 and s.at(90) == 7.0
    assert s.mean(100, 140) == 6.0


@given(
    values=st.lists(st.floats(0, 1000), min_size=1, max_size=30),
    start=st.integers(-10_000, 10_000),
    length=st.integers(1, 50_000),
)
def test_mean_of_window_equals_mean(values: list[float], start: int, length: int) -> None:
    s = SeriesSignal(start_s=0, step_s=900, values=np.array(values))
    direct = s.mean(start, start + length)
    assert min(values) - 1e-6 <= direct <= max(values) + 1e-6
    w = s.window(start, start + 900 * 4, 900)
    assert np.isclose(w.mean(), s.mean(start, start + 3600))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(10**8), 10**8),
    st.integers(1, 10**7),
    st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=50),
)
def test_series_mean_matches_the_vectorised_integral(start, length, values) -> None:
    s = SeriesSignal(1000, 900, np.array(values))
    ends = s._integral(np.array([start, start + length], dtype=np.int64))
    assert s.mean(start, start + length) == float((ends[1] - ends[0]) / length)
