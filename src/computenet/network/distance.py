"""Round-trip time modelled from distance, for place pairs without a measurement.

Light in fibre covers about 200 km per millisecond (5 us/km, ``DESIGN.md``), so a round
trip over a route of ``d`` km takes at least ``2 d / 200`` ms. Fibre routes are longer than
the great circle: the model multiplies the great-circle distance by ``route_factor``
(default 1.5, the MIIT 2023 target for links between hub clusters: at most 1.5 x the
theoretical latency, ``CHINA_FACTS.md`` §1) and adds a fixed ``overhead_ms`` for switching
and the last mile. Its result is labelled ``"modelled"`` and is never below the fibre bound
of the great-circle distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from computenet.errors import InputError
from computenet.model import LatencyEstimate

EARTH_RADIUS_KM = 6371.0
FIBRE_KM_PER_MS = 200.0
DEFAULT_ROUTE_FACTOR = 1.5
DEFAULT_OVERHEAD_MS = 2.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    p1, l1, p2, l2 = map(math.radians, (lat1, lon1, lat2, lon2))
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def fibre_bound_ms(distance_km: float) -> float:
    """The least round-trip time over ``distance_km`` of fibre: ``2 d / 200`` ms."""
    return 2.0 * distance_km / FIBRE_KM_PER_MS


@dataclass(frozen=True)
class DistanceModel:
    """RTT (ms) = 2 x great-circle km x ``route_factor`` / 200 km/ms + ``overhead_ms``."""

    route_factor: float = DEFAULT_ROUTE_FACTOR
    overhead_ms: float = DEFAULT_OVERHEAD_MS

    def __post_init__(self) -> None:
        if not (math.isfinite(self.route_factor) and self.route_factor >= 1.0):
            raise InputError(
                f"route factor {self.route_factor!r} is below 1",
                where="route_factor",
                fix="a fibre route is at least as long as the great circle: use >= 1, e.g. 1.5",
            )
        if not (math.isfinite(self.overhead_ms) and self.overhead_ms >= 0.0):
            raise InputError(
                f"overhead {self.overhead_ms!r} ms is negative",
                where="overhead_ms",
                fix="use a fixed overhead >= 0 ms, e.g. 2",
            )

    @property
    def label(self) -> str:
        return (
            f"modelled: great-circle distance x {self.route_factor:g} at "
            f"{FIBRE_KM_PER_MS:g} km/ms in fibre + {self.overhead_ms:g} ms"
        )

    def rtt_ms(self, lat1: float, lon1: float, lat2: float, lon2: float) -> float:
        """Modelled round-trip time in ms; never below the fibre bound of the distance."""
        d = haversine_km(lat1, lon1, lat2, lon2)
        modelled = fibre_bound_ms(d * self.route_factor) + self.overhead_ms
        return max(modelled, fibre_bound_ms(d))

    def estimate(self, lat1: float, lon1: float, lat2: float, lon2: float) -> LatencyEstimate:
        """The modelled RTT as a ``LatencyEstimate`` of kind ``"modelled"``."""
        return LatencyEstimate(self.rtt_ms(lat1, lon1, lat2, lon2), "modelled", self.label)
