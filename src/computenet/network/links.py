"""A ``LinkModel`` over sites and user regions: measured RTTs where a matrix has the pair,
the distance model elsewhere, plus bandwidth and egress price.

Lookup order for ``latency(a, b)``:

1. a pair stated in the network file (``[[links.pairs]]``), with its own source;
2. the measured matrix, when both places name a key in it (``latency_key``);
3. the distance model (kind ``"modelled"``, never below the fibre bound).

The same place is 0 ms apart (no network hop), labelled modelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from computenet.errors import UnknownNameError
from computenet.model import LatencyEstimate
from computenet.network.distance import DistanceModel
from computenet.network.matrices import LatencyMatrix

DEFAULT_BANDWIDTH_GBPS = 10.0
DEFAULT_EGRESS_CNY_PER_GB = 0.5


@dataclass(frozen=True)
class Place:
    """A site or user region as the link model sees it: coordinates and a matrix key."""

    id: str
    latitude: float
    longitude: float
    latency_key: str = ""


@dataclass(frozen=True)
class PairLink:
    """What a network file states about one pair (either direction); ``None`` = not stated."""

    rtt_ms: float | None = None
    bandwidth_gbps: float | None = None
    egress_cny_per_gb: float | None = None
    kind: Literal["measured", "modelled"] = "measured"
    source: str = ""


@dataclass(frozen=True, eq=False)
class Links:
    """Latency, bandwidth and egress price between places (see the module docstring).

    ``egress_by_place`` gives a place's own egress price (CNY/GB, e.g. a site's
    ``egress_cny_per_gb``); where it is absent or zero, ``egress_cny_per_gb_default`` holds.
    """

    places: Mapping[str, Place]
    model: DistanceModel = field(default_factory=DistanceModel)
    measured: LatencyMatrix | None = None
    bandwidth_gbps_default: float = DEFAULT_BANDWIDTH_GBPS
    egress_cny_per_gb_default: float = DEFAULT_EGRESS_CNY_PER_GB
    egress_by_place: Mapping[str, float] = field(default_factory=dict)
    pairs: Mapping[frozenset[str], PairLink] = field(default_factory=dict)
    source: str = ""  # where the defaults (bandwidth, egress) come from
    _cache: dict[tuple[str, str], LatencyEstimate] = field(
        default_factory=dict, init=False, repr=False
    )

    def _place(self, pid: str) -> Place:
        p = self.places.get(pid)
        if p is None:
            raise UnknownNameError("site or region", pid, self.places)
        return p

    def modelled_ms(self, a: str, b: str) -> float:
        """The distance model's RTT between two places, whatever is measured."""
        pa, pb = self._place(a), self._place(b)
        return self.model.rtt_ms(pa.latitude, pa.longitude, pb.latitude, pb.longitude)

    def latency(self, a: str, b: str) -> LatencyEstimate:
        hit = self._cache.get((a, b))
        if hit is not None:
            return hit
        est = self._latency(a, b)
        self._cache[(a, b)] = est
        return est

    def _latency(self, a: str, b: str) -> LatencyEstimate:
        pa, pb = self._place(a), self._place(b)
        if a == b:
            return LatencyEstimate(0.0, "modelled", "same place: no network hop")
        pair = self.pairs.get(frozenset((a, b)))
        if pair is not None and pair.rtt_ms is not None:
            return LatencyEstimate(pair.rtt_ms, pair.kind, pair.source or "network file")
        if self.measured is not None and pa.latency_key and pb.latency_key:
            if pa.latency_key == pb.latency_key:
                return LatencyEstimate(0.0, "modelled", f"same latency key {pa.latency_key}")
            ms = self.measured.get(pa.latency_key, pb.latency_key)
            if ms is not None:
                return LatencyEstimate(ms, "measured", self.measured.source)
        return self.model.estimate(pa.latitude, pa.longitude, pb.latitude, pb.longitude)

    def bandwidth_gbps(self, a: str, b: str) -> float:
        self._place(a)
        self._place(b)
        if a == b:
            return math.inf
        pair = self.pairs.get(frozenset((a, b)))
        if pair is not None and pair.bandwidth_gbps is not None:
            return pair.bandwidth_gbps
        return self.bandwidth_gbps_default

    def egress_cny_per_gb(self, a: str, b: str) -> float:
        self._place(a)
        self._place(b)
        if a == b:
            return 0.0
        pair = self.pairs.get(frozenset((a, b)))
        if pair is not None and pair.egress_cny_per_gb is not None:
            return pair.egress_cny_per_gb
        own = self.egress_by_place.get(a, 0.0)
        return own if own > 0 else self.egress_cny_per_gb_default

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary of where latencies come from and the defaults."""
        return {
            "model": self.model.label,
            "measured": self.measured.source if self.measured else None,
            "measured_pairs": len(self.measured) if self.measured else 0,
            "stated_pairs": len(self.pairs),
            "bandwidth_gbps_default": self.bandwidth_gbps_default,
            "egress_cny_per_gb_default": self.egress_cny_per_gb_default,
            "source": self.source,
        }
