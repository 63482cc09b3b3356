"""The engine's contract: ``plan(PlanRequest) -> PlanReply``.

Everything the engine needs comes in the request (time, capacity, signals as forecasts,
datasets, running allocations, carbon price); everything it decides leaves in the reply,
with the reasons, so every decision can be explained and replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from computenet.engine.reasons import Reason
from computenet.model import HOUR_S, Dataset, Network, Signal, TrainingJob

DEFAULT_LOOKAHEAD_S = 14 * 86400
"""How far ahead a request may start work (``PlanRequest.lookahead_s``): two weeks, as the
grid signals a forecast can say anything about reach days ahead, not years."""
DEFAULT_MILP_NODE_LIMIT = 1000
"""HiGHS branch-and-bound nodes per ``milp`` chunk (``PlanRequest.milp_node_limit``)."""
DEFAULT_LP_ITERATION_LIMIT = 200_000
"""Simplex iterations per LP solve (``milp``'s relaxation, each ``bound`` round)."""
DEFAULT_BOUND_ROUNDS = 40
"""Column-generation rounds of ``bound`` (a valid bound is returned whenever it stops)."""

if TYPE_CHECKING:
    from computenet.engine.capacity import CapacityLedger
    from computenet.engine.power import PowerCap, PowerDraw
    from computenet.engine.quotas import Quotas


@dataclass(frozen=True)
class SiteForecast:
    """The signals the engine plans with at one site (a forecast, or the truth)."""

    price: Signal  # CNY/kWh
    carbon: Signal  # gCO2/kWh


@dataclass(frozen=True)
class Allocation:
    """Accelerators already committed to a job (running, or placed to start later)."""

    job_id: str
    site_id: str
    accelerator: str
    count: int
    start_s: int
    end_s: int


@dataclass(frozen=True)
class PlanRequest:
    """One planning problem.

    ``now_s`` is the planning time; slots are ``[now_s + k*slot_s, ...)`` for
    ``k < horizon_slots``. ``forecasts`` overrides the signals per site id (default: each
    site's own signals, i.e. perfect foresight). ``down_sites`` have no capacity at all.
    ``replicas`` maps a dataset id to the sites already holding a copy (its home site
    always does). ``carbon_price_cny_per_t`` turns tonnes of CO2 into CNY in the objective.
    ``home_reserve`` is the share of every pool that work homed elsewhere may not take (as
    Kueue's lending limit): online policies that move work then leave room at each site for
    the work its data rules or transfer costs pin there. 0 (the default) lends everything.
    ``bound`` ignores it, so it stays a lower bound; ``milp`` applies it when it picks
    candidate starts, but its joint capacity rows hold only the gangs.

    Capacity already taken comes either as ``running`` (the allocations, read afresh at every
    request) or as ``capacity``, a ``CapacityLedger`` the caller keeps up to date as it
    commits and frees allocations (``engine.capacity``): then a request costs the same
    however many allocations are outstanding. Given a ledger, ``running`` must be empty.
    The engine never writes to the ledger; the caller must not change it while ``plan``
    runs. ``running_allocations()`` lists them either way.

    Budgets are counts, never seconds, so a slow machine gives the same reply as a fast
    one: ``lookahead_s`` caps how far ahead a start may be planned, whatever
    ``horizon_slots`` or the jobs' deadlines say (memory and time then do not grow with a
    deadline in 2099; a job that cannot start within it is deferred);
    ``milp_node_limit`` (HiGHS branch-and-bound nodes per chunk of ``milp``),
    ``lp_iteration_limit`` (simplex iterations per LP solve) and ``bound_rounds``
    (column-generation rounds of ``bound``) bound the solvers' work; replies note when a
    budget stopped a solver.

    ``quotas`` (``engine.quotas.Quotas``): the tenants' quotas and who holds the running
    allocations; given, every policy admits jobs within them, and policies that preempt may
    stop lower-priority checkpointable work (``PlanReply.preemptions``). ``None``: no quotas.
    """

    now_s: int
    network: Network
    jobs: tuple[TrainingJob, ...]
    policy: str = "greedy"
    datasets: tuple[Dataset, ...] = ()
    running: tuple[Allocation, ...] = ()
    carbon_price_cny_per_t: float = 0.0
    slot_s: int = HOUR_S
    horizon_slots: int = 48
    down_sites: frozenset[str] = frozenset()
    forecasts: Mapping[str, SiteForecast] = field(default_factory=dict)
    replicas: Mapping[str, frozenset[str]] = field(default_factory=dict)
    home_reserve: float = 0.0
    capacity: CapacityLedger | None = None
    lookahead_s: int = DEFAULT_LOOKAHEAD_S
    milp_node_limit: int = DEFAULT_MILP_NODE_LIMIT
    lp_iteration_limit: int = DEFAULT_LP_ITERATION_LIMIT
    bound_rounds: int = DEFAULT_BOUND_ROUNDS
    quotas: Quotas | None = None
    # Power as a constraint (``engine.power``): facility kW a site may draw per window, and
    # the draws already committed at capped sites. Empty: no cap anywhere.
    power_caps: tuple[PowerCap, ...] = ()
    power_drawn: tuple[PowerDraw, ...] = ()
    # Pause and resume (``suspend-resume``, ``ecovisor``): wall-clock seconds a pause costs
    # to write a checkpoint and a resume to read it back, at full power (modelled).
    checkpoint_s: int = 300
    restore_s: int = 300

    def running_allocations(self) -> tuple[Allocation, ...]:
        """The allocations already committed: ``running``, or the ledger's."""
        return self.capacity.allocations() if self.capacity is not None else self.running


@dataclass(frozen=True)
class Breakdown:
    """Cost and carbon of one placement. ``objective_cny`` = ``cost_cny`` +
    carbon price x ``carbon_kg`` / 1000."""

    energy_kwh: float
    energy_cost_cny: float
    compute_cost_cny: float
    transfer_cost_cny: float
    carbon_kg: float
    objective_cny: float

    @property
    def cost_cny(self) -> float:
        return self.energy_cost_cny + self.compute_cost_cny + self.transfer_cost_cny


@dataclass(frozen=True)
class Transfer:
    """A dataset copy the placement needs before the job can start."""

    dataset_id: str
    from_site: str
    to_site: str
    size_gb: float
    start_s: int
    end_s: int
    cost_cny: float


@dataclass(frozen=True)
class Alternative:
    """A rejected option and why it lost (e.g. "costs 312 CNY more", "violates rule ...").
    ``why`` is the structured reason (``engine.reasons``) that the CLI, the API and the
    dashboard render; ``plan`` fills it in for every alternative."""

    site_id: str
    start_s: int | None
    objective_cny: float | None
    reason: str
    why: Reason | None = None


@dataclass(frozen=True)
class Placement:
    """A decision: run ``job_id`` with ``count`` x ``accelerator`` at ``site_id`` over
    ``[start_s, end_s)``, after the ``transfers``."""

    job_id: str
    site_id: str
    accelerator: str
    count: int
    start_s: int
    end_s: int
    breakdown: Breakdown
    transfers: tuple[Transfer, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    reason: str = ""
    why: tuple[Reason, ...] = ()
    """Why it runs there and then, and what data it copies (``engine.reasons``, role
    ``placed``); the alternatives carry their own. ``plan`` fills it in."""
    segments: tuple[tuple[int, int], ...] = ()
    """Pause and resume: the wall-clock stretches ``[start, end)`` the job runs in, in
    order, the first starting at ``start_s`` and the last ending at ``end_s``; it writes a
    checkpoint at the end of each but the last and reads it back at the start of each but
    the first (``PlanRequest.checkpoint_s``, ``restore_s``). Empty: one stretch."""


@dataclass(frozen=True)
class Deferral:
    """A job left for a later planning round (feasible, but not placed in this horizon).
    ``why``: the structured reason (``engine.reasons``); ``plan`` fills it in."""

    job_id: str
    reason: str
    why: Reason | None = None


@dataclass(frozen=True)
class Infeasible:
    """A job no schedule can satisfy; ``constraint`` names the one that made it so
    (``capacity``, ``deadline``, ``data-rule``, ``accelerator-type``, ``dataset``, ...).
    ``why``: the structured reason (``engine.reasons``); ``plan`` fills it in."""

    job_id: str
    constraint: str
    reason: str
    why: Reason | None = None


@dataclass(frozen=True)
class Preemption:
    """Stop ``job_id`` (its ``count`` x ``accelerator`` at ``site_id``) so that
    ``by_job_id`` can run; it loses ``lost_s`` seconds of run since its last checkpoint
    (less than one checkpoint interval; 0 if it had not started). The caller stops it before
    committing the reply's placements, and asks about it again later."""

    job_id: str
    by_job_id: str
    site_id: str
    accelerator: str
    count: int
    lost_s: int
    reason: str


@dataclass(frozen=True)
class PlanReply:
    """What the engine decided, with totals over the placements. ``notes`` says anything
    the reader of the figures should know (e.g. how a bound was obtained)."""

    policy: str
    placements: tuple[Placement, ...]
    deferred: tuple[Deferral, ...] = ()
    infeasible: tuple[Infeasible, ...] = ()
    objective_cny: float = 0.0
    cost_cny: float = 0.0
    carbon_kg: float = 0.0
    lower_bound_cny: float | None = None
    notes: tuple[str, ...] = ()
    preemptions: tuple[Preemption, ...] = ()
