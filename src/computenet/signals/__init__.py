"""Grid signals: electricity price, carbon intensity and forecasts of them, all behind
``computenet.model.Signal``.

* ``base`` — constant and regular-step series;
* ``tariff`` — time-of-use tariffs in a site's local time;
* ``files`` — loaders for the public carbon and price formats (``FORMATS``);
* ``forecast`` — perfect, persistence and seeded noisy forecasts.
"""

from computenet.signals.base import ConstantSignal, SeriesSignal
from computenet.signals.files import (
    FORMATS,
    load_cn_spot_15min,
    load_csv_series,
    load_emaps_carbon,
    load_price_usd_per_mwh,
    load_series,
    price_file_utc_offset_h,
)
from computenet.signals.forecast import (
    FORECAST_MODES,
    NoisyForecast,
    PersistenceForecast,
    forecast,
)
from computenet.signals.tariff import TouBand, TouTariff, flat_tariff

__all__ = [
    "FORECAST_MODES",
    "FORMATS",
    "ConstantSignal",
    "NoisyForecast",
    "PersistenceForecast",
    "SeriesSignal",
    "TouBand",
    "TouTariff",
    "flat_tariff",
    "forecast",
    "load_cn_spot_15min",
    "load_csv_series",
    "load_emaps_carbon",
    "load_price_usd_per_mwh",
    "load_series",
    "price_file_utc_offset_h",
]
