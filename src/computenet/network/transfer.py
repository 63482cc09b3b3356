"""Moving a dataset between places: how long it takes and what it costs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from computenet.errors import InputError
from computenet.model import LinkModel

BITS_PER_BYTE = 8


def transfer_time_s(size_gb: float, bandwidth_gbps: float, rtt_ms: float = 0.0) -> float:
    """Seconds to move ``size_gb`` gigabytes (10^9 bytes) at ``bandwidth_gbps`` gigabits/s,
    plus one round trip to set the transfer up. Zero bytes, or the same place
    (infinite bandwidth), cost only the round trip."""
    if not (math.isfinite(size_gb) and size_gb >= 0):
        raise InputError(f"size {size_gb!r} GB is not a non-negative number", where="size_gb")
    if not bandwidth_gbps > 0:
        raise InputError(
            f"bandwidth {bandwidth_gbps!r} Gb/s is not positive",
            where="bandwidth_gbps",
            fix="give a bandwidth above 0 Gb/s",
        )
    if size_gb == 0:
        return 0.0
    return size_gb * BITS_PER_BYTE / bandwidth_gbps + rtt_ms / 1000.0


def transfer_cost_cny(size_gb: float, egress_cny_per_gb: float) -> float:
    """Egress charge in CNY for ``size_gb`` gigabytes at ``egress_cny_per_gb``."""
    return size_gb * egress_cny_per_gb


@dataclass(frozen=True)
class Transfer:
    """A planned copy of ``size_gb`` from ``src`` to ``dst``."""

    src: str
    dst: str
    size_gb: float
    duration_s: float
    cost_cny: float
    bandwidth_gbps: float
    rtt_ms: float
    latency_kind: str


def plan_transfer(links: LinkModel, src: str, dst: str, size_gb: float) -> Transfer:
    """Duration and egress cost of moving ``size_gb`` from ``src`` to ``dst`` over ``links``."""
    if src == dst:
        return Transfer(src, dst, size_gb, 0.0, 0.0, math.inf, 0.0, "modelled")
    lat = links.latency(src, dst)
    bw = links.bandwidth_gbps(src, dst)
    return Transfer(
        src,
        dst,
        size_gb,
        transfer_time_s(size_gb, bw, lat.rtt_ms),
        transfer_cost_cny(size_gb, links.egress_cny_per_gb(src, dst)),
        bw,
        lat.rtt_ms,
        lat.kind,
    )
