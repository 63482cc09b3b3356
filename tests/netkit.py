"""Small test networks shared by the engine and simulator test kits: sites with constant or
hourly signals, flat links (10 ms, 10 Gbps, 0.5 CNY/GB between sites)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from computenet.model import (
    AcceleratorType,
    Jurisdiction,
    LatencyEstimate,
    Network,
    Pool,
    Role,
    Site,
)
from computenet.signals import ConstantSignal, SeriesSignal

T0 = 1_677_628_800  # 2023-03-01T00:00:00Z
H = 3600

A100 = AcceleratorType("A100", "NVIDIA", 312.0, 80.0, 400.0)
H100 = AcceleratorType("H100", "NVIDIA", 989.0, 80.0, 700.0)


@dataclass(frozen=True)
class Links:
    bandwidth: float = 10.0
    egress: float = 0.5

    def latency(self, a: str, b: str) -> LatencyEstimate:
        return LatencyEstimate(0.0 if a == b else 10.0, "modelled", "test")

    def bandwidth_gbps(self, a: str, b: str) -> float:
        return self.bandwidth

    def egress_cny_per_gb(self, a: str, b: str) -> float:
        return 0.0 if a == b else self.egress


def sig(v: float | Sequence[float], unit: str):
    """A constant, or an hourly series from ``T0``."""
    if isinstance(v, (int, float)):
        return ConstantSignal(float(v), unit)
    return SeriesSignal(T0, H, np.array(v, dtype=float), unit=unit)


def site(
    sid: str,
    pools: dict[str, int] | int = 4,
    *,
    price: float | Sequence[float] = 0.5,
    carbon: float | Sequence[float] = 500.0,
    jurisdiction: Jurisdiction = Jurisdiction.MAINLAND,
    level: int = 3,
    pue: float = 1.2,
    host_w: float = 0.0,
    price_h: float = 0.0,
) -> Site:
    """A site with ``pools`` (a count: that many A100s)."""
    if isinstance(pools, int):
        pools = {"A100": pools}
    return Site(
        id=sid,
        name=sid,
        hub=sid,
        province=sid,
        jurisdiction=jurisdiction,
        latitude=0.0,
        longitude=0.0,
        role=Role.WEST,
        pue=pue,
        security_level=level,
        pools=tuple(Pool(a, n, price_h, host_w) for a, n in pools.items()),
        price=sig(price, "CNY/kWh"),
        carbon=sig(carbon, "gCO2/kWh"),
    )


def network(
    *sites: Site,
    links: Links | None = None,
    accelerators: Sequence[AcceleratorType] = (A100, H100),
) -> Network:
    return Network(
        name="test",
        sites=tuple(sites),
        accelerators={a.id: a for a in accelerators},
        links=links or Links(),
    )


def network_file(path: Path, sites: dict[str, dict[str, object]]) -> str:
    """Write a small network file: ``sites`` maps a site id to ``executor`` (a TOML value,
    e.g. ``'"local"'`` or ``'{ kind = "slurm", conf = "..." }'``), ``a100`` (pool size) and
    ``price`` (CNY/kWh, constant). Returns the path, for ``--network`` or ``load_network``."""
    lines = ['name = "test"', ""]
    for i, (sid, spec) in enumerate(sites.items()):
        lines += [
            "[[sites]]",
            f'id = "{sid}"',
            f"latitude = {30.0 + i}",
            f"longitude = {110.0 + i}",
            'role = "west"',
            "pue = 1.2",
            'price = { kind = "constant", value = ' + str(spec.get("price", 0.5)) + " }",
            'carbon = { kind = "constant", value = 500.0 }',
            'pools = [{ accelerator = "A100", count = ' + str(spec.get("a100", 4)) + " }]",
            "executor = " + str(spec.get("executor", '"simulated"')),
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return str(path)
