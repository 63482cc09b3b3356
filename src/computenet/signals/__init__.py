"""Grid signals: electricity price, carbon intensity and forecasts of them, all behind
``computenet.model.Signal``."""

from computenet.signals.base import ConstantSignal, SeriesSignal

__all__ = ["ConstantSignal", "SeriesSignal"]
