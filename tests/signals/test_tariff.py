"""Time-of-use tariffs: local time, seasonal bands, and the 24-hour coverage rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from computenet.errors import InputError
from computenet.model import Signal
from computenet.signals import TouBand, TouTariff, flat_tariff

GD = (
    TouBand("valley", ((0, 8),), 0.38),
    TouBand("flat", ((8, 10), (12, 14), (19, 24)), 1.0),
    TouBand("peak", ((10, 12), (14, 19)), 1.7),
    TouBand("critical", ((11, 12), (15, 17)), 2.125, (7, 8, 9)),
)


def utc(*args: int, offset_h: float = 0) -> int:
    tz = dt.timezone(dt.timedelta(hours=offset_h))
    return int(dt.datetime(*args, tzinfo=tz).timestamp())


def test_hours_are_local_and_seasonal_bands_replace_general_ones() -> None:
    t = TouTariff(0.6, GD, utc_offset_h=8)
    assert isinstance(t, Signal)
    # 02:00 UTC is 10:00 in China: peak
    assert t.at(utc(2023, 3, 1, 2)) == pytest.approx(0.6 * 1.7)
    assert t.band_at(utc(2023, 3, 1, 2)) == "peak"
    assert t.at(utc(2023, 3, 1, 3)) == pytest.approx(0.6 * 1.7)  # 11:00, no critical in March
    assert t.at(utc(2023, 8, 1, 3)) == pytest.approx(0.6 * 2.125)  # 11:00 in August
    assert t.band_at(utc(2023, 8, 1, 3)) == "critical"
    # the month is the local one: 30 Sep 20:00 UTC is 1 Oct 04:00 in China
    assert t.band_at(utc(2023, 9, 30, 20)) == "valley"
    assert t.at(utc(2023, 9, 30, 20)) == pytest.approx(0.6 * 0.38)


def test_wrapping_ranges_and_half_hour_offsets() -> None:
    bands = (TouBand("valley", ((23, 7),), 0.5), TouBand("day", ((7, 23),), 1.0))
    t = TouTariff(1.0, bands, utc_offset_h=5.5)
    assert t.at(utc(2023, 5, 1, 23, 30, offset_h=5.5)) == 0.5
    assert t.at(utc(2023, 5, 1, 6, 59, offset_h=5.5)) == 0.5
    assert t.at(utc(2023, 5, 1, 7, 0, offset_h=5.5)) == 1.0
    # a window starting on a UTC hour straddles local half hours
    start = utc(2023, 5, 1, 1, 0)  # 06:30 local
    assert list(t.window(start, start + 2 * 3600)) == [0.75, 1.0]


def test_window_mean_and_at_agree() -> None:
    t = TouTariff(0.6, GD, utc_offset_h=8)
    start = utc(2023, 7, 31)
    hourly = t.window(start, start + 72 * 3600)
    assert list(hourly) == [t.at(start + k * 3600) for k in range(72)]
    assert t.mean(start, start + 72 * 3600) == pytest.approx(hourly.mean())
    assert list(t.window(start, start + 72 * 3600, 4 * 3600)) == pytest.approx(
        list(hourly.reshape(18, 4).mean(axis=1))
    )


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(27_875_520, 28_401_120).map(lambda m: m * 60),  # 2023, whole minutes
    length=st.integers(1, 5 * 86400),
    step=st.sampled_from([900, 1800, 3600, 5400, 7200, 86400]),
)
def test_window_is_the_mean_of_the_price_over_each_step(start: int, length: int, step: int) -> None:
    t = TouTariff(0.6, GD, utc_offset_h=8)
    w = t.window(start, start + length, step)
    assert w.size == -(-length // step)
    for k in (0, w.size - 1):
        a = start + k * step
        # minute samples are exact: the price only changes on the hour
        samples = np.array([t.at(a + m * 60 + 30) for m in range(step // 60)])
        assert w[k] == pytest.approx(samples.mean(), rel=1e-9)
        assert t.mean(a, a + step) == pytest.approx(w[k], rel=1e-9)


def test_flat_tariff_is_constant() -> None:
    t = flat_tariff(0.5)
    assert set(t.window(0, 86400 * 3)) == {0.5}
    assert t.describe()["bands"][0]["hours"] == [[0, 24]]


@pytest.mark.parametrize(
    ("bands", "where", "text"),
    [
        (
            (TouBand("valley", ((0, 8),), 0.4), TouBand("flat", ((8, 23),), 1.0)),
            "bands",
            "hours 23:00-24:00 are in no band",
        ),
        (
            (TouBand("valley", ((0, 9),), 0.4), TouBand("flat", ((8, 24),), 1.0)),
            "bands[1].hours",
            "08:00-09:00 is in both band 'valley' and band 'flat'",
        ),
        (
            (
                TouBand("flat", ((0, 24),), 1.0),
                TouBand("critical", ((11, 13),), 2.0, (7, 8)),
                TouBand("summer", ((12, 14),), 1.5, (8,)),
            ),
            "bands[2]",
            "month 8 is in both band 'critical' and band 'summer'",
        ),
        ((TouBand("flat", ((0, 25),), 1.0),), "bands[0].hours[0]", "not [start, end]"),
        ((TouBand("flat", ((5, 5),), 1.0),), "bands[0].hours[0]", "start != end"),
        ((TouBand("flat", ((0, 24),), -1.0),), "bands[0].multiplier", "non-negative"),
        ((TouBand("flat", ((0, 24),), 1.0, (13,)),), "bands[0].months", "1-12"),
        ((), "bands", "at least one band"),
    ],
)
def test_bad_tariffs_name_the_place_and_the_fix(bands, where: str, text: str) -> None:
    with pytest.raises(InputError, match="Fix:") as err:
        TouTariff(0.6, bands)
    assert err.value.where == where
    assert text in err.value.message


def test_cached_hour_blocks_and_far_dates_agree_with_at() -> None:
    t = TouTariff(0.6, GD, utc_offset_h=8)
    # local hour 8192 x 24 starts a new cached block: a window across it, and one in 2250
    edge = 8192 * 24 * 3600 - 8 * 3600
    for start in (edge - 30 * 3600, utc(2250, 7, 30)):
        w = t.window(start, start + 72 * 3600)
        assert list(w) == [t.at(start + k * 3600) for k in range(72)]
        assert t.mean(start + 1800, start + 50 * 3600) == pytest.approx(
            np.mean([t.at(start + 1800 + m * 60) for m in range(49 * 60 + 30)])
        )
