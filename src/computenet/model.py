"""Domain types of a computing-power network. Pure: no I/O, no clock, no randomness.

Conventions used everywhere in computenet:

* Time is an integer number of seconds since the Unix epoch, in UTC (``*_s``).
  Local time (for time-of-use tariffs) is derived from a site's UTC offset.
* Units are in names: ``power_w``, ``energy_kwh``, ``carbon_g_per_kwh``,
  ``price_cny_per_kwh``, ``size_gb``, ``latency_ms``, ``bandwidth_gbps``.
* Money is CNY unless a name says otherwise; conversion happens at load time with the
  rate stated in the network file (``Network.usd_to_cny``).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

HOUR_S = 3600
DAY_S = 86400

DEFAULT_CARBON_PRICE_CNY_PER_T = 1000.0
"""The carbon price (CNY per tonne CO2) in the objective wherever none is given: ``plan``,
``simulate``, ``demo`` and ``serve`` alike. Assumption: about the US EPA's 2023 social cost
of carbon (US$190/t) at 7.1 CNY/USD, rounded. China's ETS price (about 60-100 CNY/t in 2023)
would make carbon nearly free."""

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- signals


@runtime_checkable
class Signal(Protocol):
    """A time series: a live feed, a replayed file, a tariff or a forecast of one.

    ``unit`` is e.g. ``"CNY/kWh"`` or ``"gCO2/kWh"``. Times are UTC epoch seconds.
    """

    unit: str

    def at(self, t_s: int) -> float:
        """Value in force at ``t_s``."""
        ...

    def window(self, start_s: int, end_s: int, step_s: int = HOUR_S) -> FloatArray:
        """Mean value over each step ``[start_s + k*step_s, start_s + (k+1)*step_s)``
        for every step that starts before ``end_s``."""
        ...

    def mean(self, start_s: int, end_s: int) -> float:
        """Time-weighted mean over ``[start_s, end_s)``."""
        ...


# --------------------------------------------------------------------------- hardware


class WorkKind(enum.StrEnum):
    """What a job does with its accelerators: the same utilisation draws different power
    (on an H100, 675 W training a transformer, 502 W memory-bound decoding)."""

    TRAINING = "training"
    INFERENCE = "inference"
    OTHER = "other"


@dataclass(frozen=True)
class PowerProfile:
    """Board power of one accelerator: ``idle_w`` allocated with nothing running, and
    ``busy_w[kind]`` busy all the time with that kind of work (``WorkKind`` values).
    ``scaled`` marks a profile scaled from another accelerator's measurement rather than
    measured on this one; ``source`` says which."""

    idle_w: float
    busy_w: Mapping[str, float]
    scaled: bool
    source: str


H100_MEASURED = PowerProfile(
    idle_w=76.1,
    busy_w={"training": 675.1, "inference": 501.9, "other": 697.6},
    scaled=False,
    source="measured: one H100 80GB HBM3 SXM (700 W limit), NVML board power, 2026-11-26 "
    "(shared/data/measured/h100_power_profile.json): idle 76.1 W; transformer training "
    "675.1 W; memory-bound decoding 501.9 W; dense bf16 matrix products 697.6 W",
)
H100_BOARD_W = 700.0
"""The measured H100's board power limit: other types scale from it."""

LOAD_CURVE: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.25, 0.4251),
    (0.5, 0.6690),
    (0.75, 0.9027),
    (1.0, 1.0),
)
"""Share of the way from idle to busy power (y) when busy a share x of the time, measured
on the H100 with bf16 matrix products at 25/50/75/100 % duty ((P - idle) / (busy - idle):
340.3, 491.9, 637.1, 697.6 W over a 76.1 W floor): clocks rise at partial load, so half the
work costs 70 % of the power, not half. Read linearly between the points."""


def load_share(utilisation: float) -> float:
    """``LOAD_CURVE`` at ``utilisation`` (clipped to [0, 1])."""
    u = min(1.0, max(0.0, utilisation))
    for (x0, y0), (x1, y1) in itertools.pairwise(LOAD_CURVE):
        if u <= x1:
            return y0 + (y1 - y0) * (u - x0) / (x1 - x0)
    return 1.0


@dataclass(frozen=True)
class AcceleratorType:
    """One kind of accelerator. ``tflops_bf16`` is dense BF16/FP16 throughput; ``power_w``
    its board power limit. ``power_profile`` is its measured power (idle and busy per kind
    of work); when not given, ``profile()`` uses the H100 measurement, as is for an H100 of
    700 W and scaled by ``power_w`` / 700 W (labelled as scaled) for any other type."""

    id: str
    vendor: str
    tflops_bf16: float
    memory_gb: float
    power_w: float
    source: str = ""
    power_profile: PowerProfile | None = None

    def profile(self) -> PowerProfile:
        if self.power_profile is not None:
            return self.power_profile
        if self.id == "H100" and self.power_w == H100_BOARD_W:
            return H100_MEASURED
        f = self.power_w / H100_BOARD_W
        m = H100_MEASURED
        return PowerProfile(
            idle_w=m.idle_w * f,
            busy_w={k: v * f for k, v in m.busy_w.items()},
            scaled=True,
            source=f"scaled from the H100 measurement by board power "
            f"({self.power_w:g} W / {H100_BOARD_W:g} W)",
        )


def accelerator_power_w(acc: AcceleratorType | None, kind: str, utilisation: float) -> float:
    """Board power (W) of one allocated accelerator doing ``kind`` of work, busy a share
    ``utilisation`` of the time; idle (``utilisation`` 0) it still draws its idle power.
    An unknown accelerator type draws nothing (it cannot run anything)."""
    if acc is None:
        return 0.0
    p = acc.profile()
    busy = p.busy_w.get(str(kind), p.busy_w[WorkKind.OTHER])
    return p.idle_w + (busy - p.idle_w) * load_share(utilisation)


def job_power_kw(
    acc: AcceleratorType | None, kind: str, utilisation: float, count: int, host_w: float
) -> float:
    """Power (kW, before PUE) of a gang of ``count`` accelerators of ``acc`` with
    ``host_w`` of host power each: the one place a job's power is computed (the engine,
    the compiled greedy and the simulator's energy accounts all call it). Every accelerator
    of the gang counts from its reservation, busy or idle."""
    return count * (accelerator_power_w(acc, kind, utilisation) + host_w) / 1000.0


@dataclass(frozen=True)
class Pool:
    """``count`` accelerators of one type at a site.

    ``price_cny_per_h`` is the rental price of one accelerator-hour (0 for owned capacity);
    ``host_power_w`` the share of host power (CPU, memory, network) per accelerator.
    ``assumed`` marks a capacity chosen by us rather than published.
    """

    accelerator: str
    count: int
    price_cny_per_h: float = 0.0
    host_power_w: float = 0.0
    assumed: bool = False


# --------------------------------------------------------------------------- sites


class Jurisdiction(enum.StrEnum):
    MAINLAND = "mainland"
    HONG_KONG = "hong-kong"
    OVERSEAS = "overseas"


class Role(enum.StrEnum):
    """East: demand-side hub (real-time work). West: supply-side hub (offline work).
    Edge: a site in a demand city, close to users."""

    EAST = "east"
    WEST = "west"
    EDGE = "edge"


GREEN_KINDS = ("share", "contract", "profile")
"""How a site's direct green supply is declared: ``share`` — a fixed share of its
consumption; ``contract`` — a power purchase agreement of ``contract_mw`` around the clock;
``profile`` — an on-site or adjacent plant of ``capacity_mw`` whose output follows a
modelled profile (``GREEN_PROFILES``)."""

GREEN_PROFILES = ("solar-clear-sky",)
"""Output profiles of a ``profile`` supply: ``solar-clear-sky`` — pvlib's clear-sky
irradiance at the site (modelled, no clouds; see ``computenet.signals.modelled``)."""

GREEN_STATUSES = ("reported", "contracted", "target", "assumed")
"""What a declared green supply is: ``reported`` by the operator or the press,
``contracted``, a policy ``target`` (not achieved: applied only when chosen), or an
``assumed`` value chosen by the network's author."""


@dataclass(frozen=True)
class GreenSupply:
    """Direct green electricity a site gets on top of its grid (see ``GREEN_KINDS``).

    ``carbon_g_per_kwh`` is the green power's own intensity (0: direct emissions of wind,
    solar and hydro); ``price_cny_per_kwh`` its price, or ``None`` for the grid's price.
    """

    kind: str
    status: str
    source: str = ""
    share: float = 0.0
    contract_mw: float = 0.0
    capacity_mw: float = 0.0
    profile: str = "solar-clear-sky"
    carbon_g_per_kwh: float = 0.0
    price_cny_per_kwh: float | None = None


@dataclass(frozen=True)
class Site:
    """A data-centre site of the network.

    ``security_level`` follows MLPS 2.0 (GB/T 22239-2019), levels 1-5.
    ``price`` is the electricity price signal in CNY/kWh, ``carbon`` the grid intensity
    signal in gCO2/kWh. ``utc_offset_h`` gives local time for tariffs and reports.
    ``sources`` maps a field name to where its value comes from (or "assumption: ...").

    ``green`` lists the site's declared direct green supply. ``grid_price`` and
    ``grid_carbon`` are its grid's own signals whenever ``green`` is declared (else
    ``None``: ``price`` and ``carbon`` are the grid's); ``price`` and ``carbon`` are what the
    engine plans with, the mix of grid and green supply when that supply is applied
    (``computenet.signals.green``).
    """

    id: str
    name: str
    hub: str
    province: str
    jurisdiction: Jurisdiction
    latitude: float
    longitude: float
    role: Role
    pue: float
    security_level: int
    pools: tuple[Pool, ...]
    price: Signal
    carbon: Signal
    utc_offset_h: float = 8.0
    egress_cny_per_gb: float = 0.0
    executor: str = "simulated"  # the kind of engine that runs this site's jobs
    # The executor's settings from the network file (``conf``, ``partition``, ``address``...).
    executor_options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    green: tuple[GreenSupply, ...] = field(default=(), compare=False, hash=False)
    grid_price: Signal | None = field(default=None, compare=False, hash=False)
    grid_carbon: Signal | None = field(default=None, compare=False, hash=False)

    def capacity(self, accelerator: str) -> int:
        """Number of accelerators of type ``accelerator`` at this site (0 if none)."""
        return sum(p.count for p in self.pools if p.accelerator == accelerator)

    @property
    def accelerators_total(self) -> int:
        return sum(p.count for p in self.pools)


@dataclass(frozen=True)
class UserRegion:
    """Where users of an inference service are; a source of demand and latency targets."""

    id: str
    name: str
    latitude: float
    longitude: float
    jurisdiction: Jurisdiction = Jurisdiction.MAINLAND


# --------------------------------------------------------------------------- network


@dataclass(frozen=True)
class LatencyEstimate:
    """A round-trip time and whether it was measured or modelled from distance."""

    rtt_ms: float
    kind: Literal["measured", "modelled"]
    source: str = ""


@runtime_checkable
class LinkModel(Protocol):
    """Latency, bandwidth and transfer price between places (sites or user regions)."""

    def latency(self, a: str, b: str) -> LatencyEstimate:
        """Round-trip time between two places, by id."""
        ...

    def bandwidth_gbps(self, a: str, b: str) -> float:
        """Usable bandwidth for bulk transfers from ``a`` to ``b``."""
        ...

    def egress_cny_per_gb(self, a: str, b: str) -> float:
        """Price of moving one GB from ``a`` to ``b``."""
        ...


@dataclass(frozen=True)
class Network:
    """A computing-power network: sites, accelerator types, user regions and links."""

    name: str
    sites: tuple[Site, ...]
    accelerators: Mapping[str, AcceleratorType]
    links: LinkModel
    regions: tuple[UserRegion, ...] = ()
    usd_to_cny: float = 7.1
    reference_accelerator: str = "A100"
    source: str = ""

    def site(self, site_id: str) -> Site:
        """The site with this id; raises ``KeyError`` naming the valid ids."""
        for s in self.sites:
            if s.id == site_id:
                return s
        raise KeyError(f"unknown site {site_id!r}; valid: {', '.join(s.id for s in self.sites)}")

    @property
    def site_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.sites)

    @property
    def hubs(self) -> tuple[str, ...]:
        """Distinct hub names in catalog order."""
        return tuple(dict.fromkeys(s.hub for s in self.sites if s.hub))

    def speed(self, accelerator: str) -> float:
        """Throughput of ``accelerator`` relative to the reference accelerator (by TFLOPS)."""
        ref = self.accelerators[self.reference_accelerator].tflops_bf16
        return self.accelerators[accelerator].tflops_bf16 / ref


# --------------------------------------------------------------------------- data


class Classification(enum.StrEnum):
    """Data classes of the Data Security Law (Art. 21) and PIPL; see CHINA_FACTS.md §4."""

    PUBLIC = "public"
    GENERAL = "general"
    IMPORTANT = "important"
    CORE = "core"
    PERSONAL = "personal"


@dataclass(frozen=True)
class Dataset:
    """A dataset a job reads. ``home_site`` is where it lives (and, for core data, must stay).

    For personal information, ``individuals`` counts the people in it and
    ``export_cleared`` records an approved cross-border transfer (CAC assessment,
    standard contract or certification).
    """

    id: str
    size_gb: float
    home_site: str
    classification: Classification = Classification.GENERAL
    individuals: int = 0
    sensitive: bool = False
    export_cleared: bool = False
    tenant: str = ""


# --------------------------------------------------------------------------- work


PRIORITY_CLASSES: Mapping[str, int] = MappingProxyType({"low": 0, "normal": 100, "high": 1000})
"""Named priority classes (name -> ``TrainingJob.priority``) that hold unless an operator
sets others: Kueue's WorkloadPriorityClass, as a number that orders and may preempt."""

FLEX_SLOWDOWN: tuple[float, ...] = (0.0, 0.10, 0.25, 0.50)
"""Per flexibility class (``TrainingJob.flex_class``), the share by which a grid event may
slow the job: its completion may move later by at most this share of its run."""


@dataclass(frozen=True)
class TrainingJob:
    """A batch job: a gang of ``accelerators`` accelerators, all at one site.

    ``work_h`` is the wall-clock run time on the network's reference accelerator.
    ``accelerator_speed`` maps the acceptable accelerator types to their speed relative to
    the reference (empty: any type, speed from TFLOPS). The job must finish by
    ``deadline_s`` and may not start before ``earliest_start_s``. ``utilisation`` is the
    share of the run its accelerators are busy, and ``work_kind`` (a ``WorkKind``) what
    they do; power follows from the accelerator's ``PowerProfile`` (``job_power_kw``).
    ``flex_class`` (0-3) is how much the job may be slowed when the grid asks for less
    power (``FLEX_SLOWDOWN``: none, 10 %, 25 %, 50 %; as in Emerald AI's 2025 grid
    demonstration): class 0 is never slowed.
    """

    id: str
    accelerators: int
    work_h: float
    earliest_start_s: int
    deadline_s: int
    tenant: str = "default"
    accelerator_speed: Mapping[str, float] = field(default_factory=dict)
    checkpointable: bool = False
    checkpoint_interval_s: int = 3600
    datasets: tuple[str, ...] = ()
    priority: int = 0
    utilisation: float = 0.8
    submitted_s: int | None = None
    work_kind: str = WorkKind.TRAINING
    flex_class: int = 0


@dataclass(frozen=True)
class InferenceService:
    """A model service: replicas placed per hour to serve demand within a latency target.

    ``demand_rps`` maps a user-region id to its request rate; each replica serves
    ``replica_rps`` and needs ``accelerators_per_replica`` accelerators.
    """

    id: str
    accelerators_per_replica: int
    replica_rps: float
    latency_target_ms: float
    demand_rps: Mapping[str, float] = field(default_factory=dict)
    accelerator_types: tuple[str, ...] = ()
    tenant: str = "default"
    datasets: tuple[str, ...] = ()
