"""Comparisons that say what a policy's savings rest on: the true ``fifo`` baseline, the
oracle against estimates (``sim.estimates``), and which grid signal drove the shifts.

``signal_driver`` splits a policy's saving against the baseline into what it saved on the
electricity bill (price) and what the carbon it avoided is worth at the run's carbon price:
the larger of the two drove the shifts. On a grid whose price swings outweigh its carbon at
the chosen carbon price, a "carbon-aware" policy follows price; the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from computenet.sim.simulator import SimResult

BASELINE = "fifo"


@dataclass(frozen=True)
class Driver:
    """What a policy saved against the baseline, split by signal. ``signal``: ``price``,
    ``carbon`` or ``none`` (neither saved anything)."""

    policy: str
    energy_cny_saved: float
    carbon_kg_saved: float
    carbon_value_cny_saved: float
    carbon_price_cny_per_t: float
    signal: str

    def sentence(self) -> str:
        if self.signal == "none":
            return f"{self.policy}: no saving on price or carbon against {BASELINE}"
        return (
            f"{self.policy}: shifts driven by {self.signal} — electricity "
            f"{self.energy_cny_saved:+,.2f} CNY saved, carbon {self.carbon_kg_saved:+,.2f} kg "
            f"saved, worth {self.carbon_value_cny_saved:+,.2f} CNY at "
            f"{self.carbon_price_cny_per_t:,.0f} CNY/t"
        )


def _energy_cny(r: SimResult) -> float:
    return sum(s.energy_cost_cny for s in r.segments)


def _carbon_kg(r: SimResult) -> float:
    return sum(s.carbon_kg for s in r.segments)


def signal_driver(result: SimResult, baseline: SimResult) -> Driver:
    """Which signal drove ``result``'s shifts against ``baseline`` (module docstring)."""
    price = result.config.carbon_price_cny_per_t
    e = _energy_cny(baseline) - _energy_cny(result)
    kg = _carbon_kg(baseline) - _carbon_kg(result)
    value = kg * price / 1000.0
    signal = "none" if e <= 0 and value <= 0 else "price" if e >= value else "carbon"
    return Driver(result.policy, e, kg, value, price, signal)


def saved(value: float, base: float) -> float:
    """The share of ``base`` saved (positive: less than the baseline)."""
    return 0.0 if base == 0 else (base - value) / base


def starts_on_arrival(result: SimResult, tol_s: int = 0) -> tuple[int, int]:
    """(jobs that started within ``tol_s`` of arrival, jobs that started): for ``fifo``
    every job that found room at arrival must be among the first."""
    started = [o for o in result.outcomes if o.first_start_s is not None]
    on_time = sum(1 for o in started if (o.wait_s or 0) <= tol_s)
    return on_time, len(started)
