"""Structured reasons: one code from one enumeration, the numbers behind it, one message.

Every placement, deferral, rejected alternative and infeasible job of a ``PlanReply``
carries a ``Reason`` (``why``). The code says what decided it (``Code``), the facts hold
the numbers and names behind it (a cost difference in CNY, hours late, the data rule and
the dataset's class), and the message is rendered from the code and the facts alone
(``render``), so the CLI, the API and the dashboard say the same thing and a page can
chart the numbers. Text is never parsed back into a reason.

This module is plain Python (no numpy, nothing of the engine): the API, the CLI and the
dashboard import it to render stored reasons.

The JSON shape of one reason (``Reason.to_json``; ``GET /v1/jobs/{id}/explain`` answers a
list of these, ``GET /v1/jobs/{id}`` has them under ``reasons``)::

    {"code": "cost",              # a Code value
     "role": "rejected",          # placed | deferred | infeasible | rejected (a Role)
     "message": "costs 312.00 CNY more (cost +300.00 CNY, carbon +80.00 kg CO2)",
     "site_id": "ulanqab",        # then the facts, flat, units in their names:
     "objective_diff_cny": 312.0, "cost_diff_cny": 300.0, "carbon_diff_kg": 80.0, ...}

Facts are strings, numbers, booleans or lists of strings; their keys are sorted. The keys
each code uses are listed in ``FACTS``. A job's list is sorted (``sort_reasons``): its own
decision first (placed, deferred, infeasible), then the rejected alternatives, each group by
code (in ``Code`` order) and message, so the same decision always reads the same.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

Fact = str | int | float | bool | tuple[str, ...]


class Code(enum.StrEnum):
    """What decided a placement, a deferral, a rejected option or an infeasible job."""

    COST = "cost"  # the lowest objective (CNY, carbon priced in) won; an option cost more
    CARBON = "carbon"  # the lowest carbon won (carbon-now); an option emitted more
    HOME = "home"  # kept at its data's home site, started as soon as there was room
    DATA_RULE = "data_rule"  # a data rule (DSL / PIPL class and scope) forbids the site
    CAPACITY = "capacity"  # no free accelerators of an accepted type when it could run
    DEADLINE = "deadline"  # the run cannot finish by the job's deadline there
    LATENCY = "latency"  # too far (round-trip time) from the service's users
    TRANSFER_TIME = "transfer_time"  # copying the data takes time, or cannot happen at all
    QUOTA = "quota"  # the tenant's quota leaves no room
    SITE_DOWN = "site_down"  # the site does not answer (marked down)
    PREEMPTED = "preempted"  # taken off its accelerators for work of higher priority
    POWER_CAP = "power_cap"  # the site's power budget leaves no room
    GRID_EVENT = "grid_event"  # a grid event (demand response, curtailment) at the site
    HORIZON = "horizon"  # outside the planning horizon: planned in a later round
    ACCELERATOR_TYPE = "accelerator_type"  # no site has an accelerator type it accepts
    GANG = "gang"  # the gang is larger than any usable pool
    INPUT = "input"  # the job or its dataset cannot be planned as given
    NO_EXECUTOR = "no_executor"  # no site's executor can run it (e.g. runs no commands)
    FALLBACK = "fallback"  # no engine or network: placed on this machine


DESCRIPTIONS: Mapping[Code, str] = {
    Code.COST: "the lowest objective (CNY, carbon priced in) won; an option cost more",
    Code.CARBON: "the lowest carbon won (carbon-now); an option emitted more",
    Code.HOME: "kept at its data's home site, started as soon as there was room",
    Code.DATA_RULE: "a data rule (DSL / PIPL class and scope) forbids the site",
    Code.CAPACITY: "no free accelerators of an accepted type when it could run",
    Code.DEADLINE: "the run cannot finish by the job's deadline there",
    Code.LATENCY: "too far (round-trip time) from the service's users",
    Code.TRANSFER_TIME: "copying the data takes time, or cannot happen at all",
    Code.QUOTA: "the tenant's quota leaves no room",
    Code.SITE_DOWN: "the site does not answer (marked down)",
    Code.PREEMPTED: "taken off its accelerators for work of higher priority",
    Code.POWER_CAP: "the site's power budget leaves no room",
    Code.GRID_EVENT: "a grid event (demand response, curtailment) at the site",
    Code.HORIZON: "outside the planning horizon: planned in a later round",
    Code.ACCELERATOR_TYPE: "no site has an accelerator type it accepts",
    Code.GANG: "the gang is larger than any usable pool",
    Code.INPUT: "the job or its dataset cannot be planned as given",
    Code.NO_EXECUTOR: "no site's executor can run it (e.g. runs no commands)",
    Code.FALLBACK: "no engine or network: placed on this machine",
}
"""What each code means, in a few words (for a legend on a page or in ``--help``)."""


class Role(enum.StrEnum):
    """Which decision a reason explains, in the order a job's reasons are listed."""

    PLACED = "placed"  # why the job runs where and when it does (and the data it copies)
    DEFERRED = "deferred"  # why it waits for a later planning round
    INFEASIBLE = "infeasible"  # why no schedule can satisfy it
    REJECTED = "rejected"  # why an alternative (another site or start) lost


_CODE_RANK = {c: n for n, c in enumerate(Code)}
_ROLE_RANK = {r: n for n, r in enumerate(Role)}
_CODE_RANK_S = {str(c): n for c, n in _CODE_RANK.items()}
_ROLE_RANK_S = {str(r): n for r, n in _ROLE_RANK.items()}

FACTS: Mapping[Code, tuple[str, ...]] = {
    Code.COST: (
        "policy",
        "site_id",
        "accelerator",
        "start_s",
        "start_in_h",
        "wait_h",
        "objective_cny",
        "cost_cny",
        "energy_cost_cny",
        "compute_cost_cny",
        "transfer_cost_cny",
        "carbon_kg",
        "carbon_price_cny_per_t",
        "home_site",
        "objective_diff_cny",
        "cost_diff_cny",
        "carbon_diff_kg",
        "same_site",
        "at_least",
        "measure",
    ),
    Code.CARBON: ("policy", "site_id", "start_in_h", "carbon_kg", "carbon_diff_kg", "same_site"),
    Code.HOME: ("policy", "site_id", "home_site", "start_in_h", "objective_cny", "carbon_kg"),
    Code.DATA_RULE: (
        "site_id",
        "dataset_id",
        "classification",
        "scope",
        "home_site",
        "home_jurisdiction",
        "site_jurisdiction",
        "individuals",
        "min_security_level",
        "security_level",
        "rule_source",
    ),
    Code.CAPACITY: ("count", "accelerator", "sites", "site_id", "horizon_h"),
    Code.DEADLINE: ("site_id", "late_h", "run_h"),
    Code.LATENCY: ("site_id", "region_id", "rtt_ms", "limit_ms"),
    Code.TRANSFER_TIME: (
        "dataset_id",
        "from_site",
        "site_id",
        "size_gb",
        "transfer_h",
        "transfer_cost_cny",
        "reachable",
    ),
    Code.QUOTA: ("tenant", "resource", "used", "limit", "requested"),
    Code.PREEMPTED: ("site_id", "by_job", "by_priority"),
    Code.POWER_CAP: ("site_id", "cap_kw", "needed_kw"),
    Code.GRID_EVENT: ("site_id", "event", "from_s", "to_s"),
    Code.HORIZON: ("earliest_in_h", "horizon_h"),
    Code.SITE_DOWN: ("site_id", "sites"),
}
"""The facts each code's message reads (others may be present; every code may carry a
``detail``, the engine's sentence, where its numbers are not broken out)."""


class Reason(NamedTuple):
    """A code, the decision it explains and its facts (sorted ``(key, value)`` pairs).
    Immutable; a named tuple rather than a dataclass because a plan makes a few per
    placement (it is built in half the time)."""

    code: Code
    role: Role
    facts: tuple[tuple[str, Fact], ...] = ()

    @property
    def message(self) -> str:
        """The one sentence rendered from the code and the facts (``render``)."""
        return render(self.code, self.role, dict(self.facts))

    def get(self, key: str, default: Any = None) -> Any:
        """The fact ``key`` (``default`` when absent)."""
        for k, v in self.facts:
            if k == key:
                return v
        return default

    def to_json(self) -> dict[str, Any]:
        """``{"code", "role", "message", **facts}`` (see the module docstring)."""
        out: dict[str, Any] = {"code": str(self.code), "role": str(self.role)}
        out["message"] = self.message
        for k, v in self.facts:
            out[k] = list(v) if isinstance(v, tuple) else v
        return out


def reason(code: Code | str, role: Role | str, **facts: Fact | list[str] | None) -> Reason:
    """A ``Reason`` with its facts sorted by key; ``None`` facts and non-finite numbers
    are left out (JSON has no infinity); lists become tuples."""
    kept: list[tuple[str, Fact]] = []
    for k in sorted(facts):  # runs a few times per placement: kept plain and fast
        v = facts[k]
        c = v.__class__
        if c is float:
            if v - v != 0:  # type: ignore[operator]  # inf or nan
                continue
        elif v is None:
            continue
        elif c is list:
            v = tuple(str(x) for x in v)  # type: ignore[union-attr]
        kept.append((k, v))  # type: ignore[arg-type]
    return Reason(
        code if code.__class__ is Code else Code(code),
        role if role.__class__ is Role else Role(role),
        tuple(kept),
    )


_RESERVED = ("code", "role", "message")


def from_json(d: Mapping[str, Any]) -> Reason | None:
    """The reason a ``to_json`` dict holds; ``None`` when its code or role is unknown (a
    newer writer): callers then show the stored message as it is."""
    try:
        code, role = Code(d["code"]), Role(d["role"])
    except (KeyError, ValueError):
        return None
    facts = {k: v for k, v in d.items() if k not in _RESERVED}
    return reason(code, role, **facts)


def rendered(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Stored reason dicts as the API answers them: re-rendered from their codes and facts
    (so every reader shows the same message), unknown codes kept as stored, sorted."""
    out: list[tuple[tuple[int, int, str, str], dict[str, Any]]] = []
    for d in items:
        r = from_json(d)
        j = r.to_json() if r is not None else dict(d)
        out.append((_json_key(j), j))
    return [j for _, j in sorted(out, key=lambda kv: kv[0])]


def _json_key(j: Mapping[str, Any]) -> tuple[int, int, str, str]:
    role = _ROLE_RANK_S.get(str(j.get("role")), len(Role))
    code = _CODE_RANK_S.get(str(j.get("code")), len(Code))
    return (role, code, str(j.get("message", "")), str(j.get("site_id", "")))


def sort_key(r: Reason) -> tuple[int, int, str, str]:
    """Decision first (by ``Role``), then by ``Code`` order, message and site."""
    return (_ROLE_RANK[r.role], _CODE_RANK[r.code], r.message, str(r.get("site_id", "")))


def sort_reasons(rs: Iterable[Reason]) -> list[Reason]:
    """``rs`` in the deterministic order of ``sort_key``."""
    return sorted(rs, key=sort_key)


def to_json_list(rs: Iterable[Reason]) -> list[dict[str, Any]]:
    """``rs`` sorted, as JSON dicts."""
    return [r.to_json() for r in sort_reasons(rs)]


# --------------------------------------------------------------------------- rendering


def when(start_in_h: float) -> str:
    """A start (hours after the planning time) in words: "now", "in 3 min", "in 1.2 h"."""
    if start_in_h <= 0:
        return "now"
    if start_in_h < 1:
        return f"in {max(1, round(start_in_h * 60))} min"
    return f"in {start_in_h:.1f} h"


def _signed(x: float, unit: str) -> str:
    x = round(x, 2) + 0.0  # no "-0.00"
    return f"{'+' if x >= 0 else '-'}{abs(x):,.2f} {unit}"


PLACED_BY_POLICY = {
    "greedy": "the lowest objective of all its options",
    "milp": "the joint plan's choice",
    "cheapest-now": "the cheapest site for a start as soon as possible",
    "carbon-now": "the lowest-carbon site for a start as soon as possible",
    "wait-awhile": "the lowest objective at its home site",
    "fifo-home": "its data's home site, as soon as there is room",
}
"""How each policy chose, in words (a policy not listed: "the lowest objective")."""


def _placed(f: Mapping[str, Any]) -> str:
    policy = str(f.get("policy", ""))
    how = PLACED_BY_POLICY.get(policy, "the lowest objective")
    text = (
        f"{policy}: {f['site_id']} {when(float(f.get('start_in_h', 0.0)))}, {how}; "
        f"objective {f['objective_cny']:,.2f} CNY (cost {f['cost_cny']:,.2f} CNY, "
        f"{f['carbon_kg']:,.2f} kg CO2)"
    )
    if f.get("home_site") and f["home_site"] != f["site_id"]:
        text += f"; its home site {f['home_site']} cannot run it"
    if float(f.get("wait_h", 0.0)) > 0:
        text += f"; starts {f['wait_h']:.1f} h after it could"
    return text


def _cost(role: Role, f: Mapping[str, Any]) -> str:
    if role is Role.PLACED:
        return _placed(f)
    by_cost = f.get("measure") == "cost"  # cheapest-now compares cost, carbon unpriced
    d = float(f.get("cost_diff_cny" if by_cost else "objective_diff_cny", 0.0))
    prefix = f"starting {when(float(f.get('start_in_h', 0.0)))}: " if f.get("same_site") else ""
    if f.get("at_least"):
        return f"{prefix}costs at least {d:,.2f} CNY more"
    if d < -1e-9:
        return (
            f"{prefix}{-d:,.2f} CNY cheaper for this job alone, but the joint plan gives that "
            "capacity to other jobs"
        )
    if d <= 1e-9:
        return (
            f"{prefix}ties on CNY; starts {when(float(f.get('start_in_h', 0.0)))}, later or "
            "further down the order"
        )
    text = f"{prefix}costs {d:,.2f} CNY more"
    if by_cost and "carbon_diff_kg" in f:
        text += f" (carbon {_signed(f['carbon_diff_kg'], 'kg CO2')})"
    elif "cost_diff_cny" in f and "carbon_diff_kg" in f:
        text += (
            f" (cost {_signed(f['cost_diff_cny'], 'CNY')}, "
            f"carbon {_signed(f['carbon_diff_kg'], 'kg CO2')})"
        )
    return text


def _carbon(role: Role, f: Mapping[str, Any]) -> str:
    if role is Role.PLACED:
        return _placed(f)
    prefix = f"starting {when(float(f.get('start_in_h', 0.0)))}: " if f.get("same_site") else ""
    d = float(f.get("carbon_diff_kg", 0.0))
    if d <= 1e-12:
        return (
            f"{prefix}emits as much; starts {when(float(f.get('start_in_h', 0.0)))}, "
            "later in the order"
        )
    return f"{prefix}emits {d:,.2f} kg CO2 more"


def _home(role: Role, f: Mapping[str, Any]) -> str:
    return _placed(f)


def _breach(f: Mapping[str, Any]) -> str:
    cls, ds, src = f["classification"], f["dataset_id"], f.get("rule_source", "")
    scope = f.get("scope")
    if scope == "home site":
        text = f"{cls} data {ds} may not leave its home site {f['home_site']}"
    elif scope == "home jurisdiction" and f.get("site_jurisdiction") != f.get("home_jurisdiction"):
        text = (
            f"{cls} data {ds} may not leave {f['home_jurisdiction']} for {f['site_id']} "
            f"({f['site_jurisdiction']})"
        )
        if cls == "personal":
            text += f", {int(f.get('individuals', 0)):,} people, export not cleared"
    else:
        text = (
            f"{cls} data {ds} needs MLPS level {f['min_security_level']}, {f['site_id']} "
            f"has {f['security_level']}"
        )
    return f"violates data rule: {text} ({src})" if src else f"violates data rule: {text}"


def _data_rule(role: Role, f: Mapping[str, Any]) -> str:
    if role is Role.REJECTED:
        return _breach(f)
    return f"no site it may use: {_breach(f)}"


def _capacity(role: Role, f: Mapping[str, Any]) -> str:
    what = f"{f['count']} x {f['accelerator']}"
    where = _sites(f)
    if role is Role.REJECTED:
        return f"no room for {what} before the deadline or horizon"
    if role is Role.DEFERRED:
        return (
            f"no room for {what} at {where} in the next {f['horizon_h']:.0f} h; the deadline "
            "allows waiting"
        )
    return f"no room for {what} at {where} early enough to meet the deadline"


def _sites(f: Mapping[str, Any]) -> str:
    sites = list(f.get("sites", ()))
    return ", ".join(sites[:5]) + (f" and {len(sites) - 5} more" if len(sites) > 5 else "")


def _deadline(role: Role, f: Mapping[str, Any]) -> str:
    if role is Role.REJECTED:
        return f"misses deadline by {f['late_h']:.1f} h"
    if "late_h" in f:
        return (
            f"misses its deadline by {f['late_h']:.1f} h even at the best site "
            f"({f['run_h']:.1f} h of run after data and start constraints)"
        )
    return "no slot-aligned start finishes by the deadline (the window is shorter than a slot)"


def _latency(role: Role, f: Mapping[str, Any]) -> str:
    if role is Role.PLACED:  # an inference region served within its target
        return (
            f"{f['site_id']} is {f['rtt_ms']:.0f} ms from {f['region_id']}, within the "
            f"{f['limit_ms']:.0f} ms target"
        )
    return (
        f"{f['site_id']} is {f['rtt_ms']:.0f} ms from {f['region_id']}, over the "
        f"{f['limit_ms']:.0f} ms target"
    )


def _transfer(role: Role, f: Mapping[str, Any]) -> str:
    if f.get("reachable") is False:
        return f"dataset {f['dataset_id']} cannot reach {f['site_id']} (no bandwidth)"
    return (
        f"copies {f['dataset_id']} ({f['size_gb']:g} GB) {f['from_site']} -> {f['site_id']} "
        f"in {f['transfer_h']:.1f} h for {f['transfer_cost_cny']:,.2f} CNY"
    )


def _quota(role: Role, f: Mapping[str, Any]) -> str:
    return (
        f"tenant {f['tenant']} would use {f['used'] + f.get('requested', 0):g} of its quota "
        f"of {f['limit']:g} {f['resource']}"
    )


def _preempted(role: Role, f: Mapping[str, Any]) -> str:
    return f"preempted at {f['site_id']} by job {f['by_job']} (priority {f['by_priority']})"


def _power_cap(role: Role, f: Mapping[str, Any]) -> str:
    return (
        f"{f['site_id']} is at its power cap of {f['cap_kw']:,.0f} kW "
        f"({f['needed_kw']:,.1f} kW more needed)"
    )


def _grid_event(role: Role, f: Mapping[str, Any]) -> str:
    return f"grid event at {f['site_id']}: {f['event']}"


def _horizon(role: Role, f: Mapping[str, Any]) -> str:
    if role is Role.DEFERRED:
        return "its earliest start is after the planning horizon"
    return "its data cannot arrive within the planning horizon"


def _site_down(role: Role, f: Mapping[str, Any]) -> str:
    if role is Role.REJECTED:
        return f"site {f['site_id']} is down"
    if role is Role.DEFERRED:
        return f"waiting: the sites it may use are down ({_sites(f)})"
    return f"every site that could run it is down: {_sites(f)}"


_RENDER: Mapping[Code, Callable[[Role, Mapping[str, Any]], str]] = {
    Code.COST: _cost,
    Code.CARBON: _carbon,
    Code.HOME: _home,
    Code.DATA_RULE: _data_rule,
    Code.CAPACITY: _capacity,
    Code.DEADLINE: _deadline,
    Code.LATENCY: _latency,
    Code.TRANSFER_TIME: _transfer,
    Code.QUOTA: _quota,
    Code.PREEMPTED: _preempted,
    Code.POWER_CAP: _power_cap,
    Code.GRID_EVENT: _grid_event,
    Code.HORIZON: _horizon,
    Code.SITE_DOWN: _site_down,
}


def render(code: Code, role: Role, facts: Mapping[str, Any]) -> str:
    """The message of a reason. A ``detail`` fact (the engine's own sentence, where the
    numbers are not broken out) is the message as it is; a fact a renderer needs but the
    reason lacks gives a plain listing of the facts rather than an error."""
    if "detail" in facts:
        return str(facts["detail"])
    fn = _RENDER.get(code)
    if fn is not None:
        try:
            return fn(role, facts)
        except (KeyError, TypeError, ValueError):
            pass
    listed = ", ".join(f"{k}={_plain(facts[k])}" for k in sorted(facts))
    return f"{code}: {listed}" if listed else str(code)


def _plain(v: Any) -> str:
    if isinstance(v, tuple | list):
        return "/".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def messages(rs: Sequence[Reason]) -> list[str]:
    """The messages of ``rs``, in ``sort_reasons`` order."""
    return [r.message for r in sort_reasons(rs)]


def of_decision(item: Any) -> list[Reason]:
    """A decision's reasons, sorted: its own (``why``: one reason, or a placement's
    tuple) and its rejected alternatives'. Takes a ``Placement``, ``Deferral`` or
    ``Infeasible`` of ``engine.types`` (read by attribute, so this module needs none)."""
    own = getattr(item, "why", None)
    if own is None:
        out = []
    elif isinstance(own, Reason):
        out = [own]
    else:
        out = list(own)
    out += [a.why for a in getattr(item, "alternatives", ()) if a.why is not None]
    return sort_reasons(out)
