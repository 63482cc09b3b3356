"""``computenet plan``: place the jobs of a CSV file on a network with one policy and print
the plan with its reasons.

Jobs CSV (a header line, then one job per line; times are ISO 8601 in UTC or epoch
seconds; empty optional cells take the default):

==================  ========  ==============================================================
column              required  meaning
==================  ========  ==============================================================
id                  yes       job id, unique
accelerators        yes       gang size: accelerators, all at one site
work_h              yes       hours of run on the network's reference accelerator
earliest_start      yes       may not start before this time
deadline            yes       must finish by this time
accelerator_types   no        accepted types separated by ``;`` (default: any); speed by TFLOPS
priority            no        higher goes first (default 0)
utilisation         no        share of the run the accelerators are busy, (0, 1] (default 0.8)
work_kind           no        training, inference or other: sets the power drawn (default
                              training; ``model.WorkKind``, ``model.job_power_kw``)
dataset             no        id of the dataset the job reads (rows may share one)
data_gb             no        its size in GB (needed with ``dataset``)
classification      no        public, general, important, core, personal (default general)
home_site           no        site where the data lives (needed with ``dataset``)
individuals         no        people in personal information (default 0)
sensitive           no        true/false: sensitive personal information (default false)
export_cleared      no        true/false: cross-border transfer approved (default false)
==================  ========  ==============================================================

Each bad cell is reported as an ``InputError`` naming the file, the line and the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from computenet.cli.app import app
from computenet.cli.checks import CARBON_PRICE_HELP, carbon_price_or_default, literal
from computenet.errors import InputError
from computenet.textfile import CsvFile

REQUIRED = ("id", "accelerators", "work_h", "earliest_start", "deadline")
OPTIONAL = (
    "accelerator_types",
    "priority",
    "utilisation",
    "work_kind",
    "dataset",
    "data_gb",
    "classification",
    "home_site",
    "individuals",
    "sensitive",
    "export_cleared",
)
TRUE = {"true", "yes", "1", "y"}
FALSE = {"false", "no", "0", "n", ""}


def _bool(text: str, src: str, where: str) -> bool:
    t = text.strip().lower()
    if t in TRUE:
        return True
    if t in FALSE:
        return False
    raise InputError(f"{text!r} is not true or false", source=src, where=where)


def _num(
    text: str,
    src: str,
    where: str,
    *,
    kind: type = float,
    lo: float | None = None,
    hi: float | None = None,
) -> Any:
    try:
        v = kind(text.strip())
    except ValueError:
        raise InputError(
            f"{text!r} is not {'an integer' if kind is int else 'a number'}",
            source=src,
            where=where,
        ) from None
    if kind is float and not math.isfinite(v):
        raise InputError(f"{text!r} is not a finite number", source=src, where=where)
    if lo is not None and v < lo:
        raise InputError(f"{v} is below {lo:g}", source=src, where=where)
    if hi is not None and v > hi:
        raise InputError(f"{v} is above {hi:g}", source=src, where=where)
    return v


# Upper bounds of the numeric cells: past them a value is a typo, and it would overflow the
# engine's arrays (a gang of 10**30 accelerators) rather than be refused with its line.
MAX_ACCELERATORS = 1_000_000
MAX_WORK_H = 10 * 8760.0
MAX_PRIORITY = 1000
MAX_DATA_GB = 1e9
MAX_INDIVIDUALS = 10**10
MAX_HORIZON_H = 366 * 24


def _open_jobs(path: Path) -> CsvFile:
    """The jobs CSV with its header checked: UTF-8 (Excel's byte-order mark is dropped),
    the required columns present, no unknown one."""
    src = str(path)
    if not path.is_file():
        raise InputError("jobs file not found", source=src, fix="pass an existing --jobs CSV")
    table = CsvFile(path)
    table.require(
        REQUIRED, fix=f"the header needs {', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})"
    )
    unknown = [c for c in table.header if c not in REQUIRED and c not in OPTIONAL]
    if unknown:
        raise InputError(
            f"unknown column(s) {', '.join(unknown)}",
            source=src,
            where="line 1",
            fix=f"columns are {', '.join(REQUIRED + OPTIONAL)}",
        )
    return table


def _read_dataset(row: dict[str, str], src: str, line: int, network: Any) -> Any:
    """The dataset a row names (``dataset``, ``data_gb``, ``home_site`` and the rules)."""
    from computenet.model import Classification, Dataset

    def at(field: str) -> str:
        return f"line {line}, {field}"

    did = row["dataset"]
    for need in ("data_gb", "home_site"):
        if not row.get(need):
            raise InputError(f"dataset {did!r} needs {need}", source=src, where=at(need))
    if row["home_site"] not in network.site_ids:
        raise InputError(
            f"unknown site {row['home_site']!r}",
            source=src,
            where=at("home_site"),
            fix=f"use one of: {', '.join(network.site_ids)}",
        )
    try:
        cls = Classification(row.get("classification") or "general")
    except ValueError:
        raise InputError(
            f"unknown data class {row['classification']!r}",
            source=src,
            where=at("classification"),
            fix="use public, general, important, core, personal",
        ) from None
    individuals = 0
    if row.get("individuals"):
        individuals = _num(
            row["individuals"], src, at("individuals"), kind=int, lo=0, hi=MAX_INDIVIDUALS
        )
    return Dataset(
        id=did,
        size_gb=_num(row["data_gb"], src, at("data_gb"), lo=0, hi=MAX_DATA_GB),
        home_site=row["home_site"],
        classification=cls,
        individuals=individuals,
        sensitive=_bool(row.get("sensitive", ""), src, at("sensitive")),
        export_cleared=_bool(row.get("export_cleared", ""), src, at("export_cleared")),
    )


def _read_job(
    row: dict[str, str], src: str, line: int, network: Any, ds_ids: tuple[str, ...]
) -> Any:
    """The training job of one row (its dataset, if any, already read)."""
    from computenet.model import TrainingJob
    from computenet.sim.faults import parse_time

    def at(field: str) -> str:
        return f"line {line}, {field}"

    speeds: dict[str, float] = {}
    for t in filter(None, (x.strip() for x in row.get("accelerator_types", "").split(";"))):
        if t not in network.accelerators:
            raise InputError(
                f"unknown accelerator type {t!r}",
                source=src,
                where=at("accelerator_types"),
                fix=f"use types of the network: {', '.join(sorted(network.accelerators))}",
            )
        speeds[t] = network.speed(t)
    prio = 0
    if row.get("priority"):
        prio = _num(
            row["priority"], src, at("priority"), kind=int, lo=-MAX_PRIORITY, hi=MAX_PRIORITY
        )
    util = 0.8
    if row.get("utilisation"):
        util = _num(row["utilisation"], src, at("utilisation"))
        if not 0 < util <= 1:
            raise InputError(f"{util} is not in (0, 1]", source=src, where=at("utilisation"))
    return TrainingJob(
        work_kind=read_work_kind(row.get("work_kind", ""), src, at("work_kind")),
        id=row["id"],
        accelerators=_num(
            row["accelerators"], src, at("accelerators"), kind=int, lo=1, hi=MAX_ACCELERATORS
        ),
        work_h=_num(row["work_h"], src, at("work_h"), lo=0, hi=MAX_WORK_H),
        earliest_start_s=parse_time(row["earliest_start"], source=src, where=at("earliest_start")),
        deadline_s=parse_time(row["deadline"], source=src, where=at("deadline")),
        accelerator_speed=speeds,
        datasets=ds_ids,
        priority=prio,
        utilisation=util,
    )


def read_work_kind(text: str, src: str, where: str) -> str:
    """A ``work_kind`` cell: one of ``model.WorkKind`` (any case; empty: training)."""
    from computenet.model import WorkKind

    t = text.strip().lower()
    if not t:
        return str(WorkKind.TRAINING)
    if t not in {str(k) for k in WorkKind}:
        allowed = ", ".join(str(k) for k in WorkKind)
        raise InputError(
            f"unknown kind of work {text.strip()!r}",
            source=src,
            where=where,
            fix=f"use one of: {allowed} (or leave it empty for training)",
        )
    return t


def read_jobs(path: Path, network: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Jobs and datasets from the CSV described in the module docstring."""
    src = str(path)
    table = _open_jobs(path)
    jobs: list[Any] = []
    datasets: dict[str, Any] = {}
    seen: set[str] = set()
    for line, raw in table.dicts():
        row = {k: v.strip() for k, v in raw.items()}
        for c in REQUIRED:
            if not row.get(c):
                raise InputError("empty required field", source=src, where=f"line {line}, {c}")
        if row["id"] in seen:
            raise InputError(
                f"job id {row['id']!r} appears twice", source=src, where=f"line {line}, id"
            )
        seen.add(row["id"])
        ds_ids: tuple[str, ...] = ()
        if row.get("dataset"):
            ds = _read_dataset(row, src, line, network)
            if ds.id in datasets and datasets[ds.id] != ds:
                raise InputError(
                    f"dataset {ds.id!r} is described differently on an earlier line",
                    source=src,
                    where=f"line {line}, dataset",
                )
            datasets[ds.id] = ds
            ds_ids = (ds.id,)
        jobs.append(_read_job(row, src, line, network, ds_ids))
    if not jobs:
        raise InputError("no jobs", source=src, fix="add one job per line after the header")
    return tuple(jobs), tuple(datasets.values())


@app.command("plan")
def plan_command(
    network: str = typer.Option(..., "--network", help="Built-in network name or a .toml file."),
    jobs: Path = typer.Option(..., "--jobs", help="Jobs CSV (see `computenet.cli.plan`)."),
    policy: str = typer.Option("greedy", "--policy", help="Placement policy."),
    carbon_price: float = typer.Option(None, "--carbon-price", help=CARBON_PRICE_HELP),
    now: str = typer.Option(
        None, "--now", help="Planning time (ISO or epoch; default: first earliest start)."
    ),
    horizon_h: int = typer.Option(
        None,
        "--horizon-hours",
        help="Hours planned ahead (default: up to the last deadline, at most a year).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the reply as JSON."),
) -> None:
    """Place the jobs of a CSV file with one policy; print each decision and why."""
    from computenet.engine import POLICIES
    from computenet.engine import plan as engine_plan
    from computenet.engine.types import PlanRequest
    from computenet.errors import UnknownNameError
    from computenet.sim.faults import parse_time
    from computenet.sim.simulator import _sibling

    if policy not in POLICIES:
        raise UnknownNameError("policy", policy, POLICIES, source="--policy")
    carbon_price = carbon_price_or_default(carbon_price)
    net = _sibling("computenet.catalog", "load_network", "networks")(network)
    js, ds = read_jobs(jobs, net)
    now_s = parse_time(now, source="--now") if now else min(j.earliest_start_s for j in js)
    if horizon_h is None:
        # Up to the last deadline, but no further than a year: one job due in 2099 would
        # otherwise make the engine plan 660,000 hours (15 s and 9 GB on this machine).
        to_last_h = math.ceil((max(j.deadline_s for j in js) - now_s) / 3600)
        horizon_h = min(MAX_HORIZON_H, max(1, to_last_h))
    if not 1 <= horizon_h <= MAX_HORIZON_H:
        raise InputError(
            f"{horizon_h} is out of range",
            source="--horizon-hours",
            fix=f"plan 1 to {MAX_HORIZON_H} hours ahead (a year)",
        )
    req = PlanRequest(
        now_s=now_s,
        network=net,
        jobs=js,
        policy=policy,
        datasets=ds,
        carbon_price_cny_per_t=carbon_price,
        horizon_slots=horizon_h,
    )
    reply = engine_plan(req)
    if as_json:
        typer.echo(json.dumps(reply_json(reply), indent=2))
        return
    print_reply(reply, js, net, policy, carbon_price)


def reply_json(reply: Any) -> dict[str, Any]:
    """The reply as JSON: its dataclasses, with each ``why`` as reason JSON
    (``engine.reasons``) and each decision's sorted ``reasons`` list beside it."""
    from computenet.engine import reasons

    out = dataclasses.asdict(reply)
    for key in ("placements", "deferred", "infeasible"):
        for item, raw in zip(getattr(reply, key), out[key], strict=True):
            own = item.why
            if own is None or isinstance(own, reasons.Reason):
                raw["why"] = own.to_json() if own is not None else None
            else:
                raw["why"] = reasons.to_json_list(own)
            for a, ra in zip(
                getattr(item, "alternatives", ()), raw.get("alternatives", ()), strict=True
            ):
                ra["why"] = a.why.to_json() if a.why is not None else None
            raw["reasons"] = [r.to_json() for r in reasons.of_decision(item)]
    for p, raw in zip(reply.placements, out["placements"], strict=True):
        raw["breakdown"]["cost_cny"] = p.breakdown.cost_cny
    return out


def print_reply(reply: Any, jobs: Sequence[Any], net: Any, policy: str, price: float) -> None:
    """The reply as people read it: the placements table, each decision's reason, what was
    deferred or infeasible, the lower bound when there is one, and the totals with the carbon
    price they used. Ids and reasons are printed as written, never as markup."""
    from rich.console import Console

    from computenet.sim.faults import format_time

    con = Console(highlight=False)
    if policy == "bound":  # the bound places no job: its answer is one number
        con.print(
            f"bound: the objective of the {len(jobs)} jobs on {net.name} is at least "
            f"{reply.lower_bound_cny:,.2f} CNY at {price:g} CNY/t (a lower bound: no plan "
            "can cost less; it places no job)",
            markup=False,
        )
        for note in reply.notes:
            con.print(f"note: {note}", markup=False)
        return
    con.print(_placements_table(reply, jobs, net, policy))
    for p in reply.placements:
        for n, r in enumerate(p.why or ()):
            head = (p.job_id, "bold") if n == 0 else ("   ", "")
            con.print(_line(head, f"{': ' if n == 0 else ''}[{r.code}] {r.message}"))
        for a in sorted(p.alternatives, key=_alt_key):
            when = "" if a.start_s is None else f" at {format_time(a.start_s)}"
            text = a.reason if a.why is None else f"[{a.why.code}] {a.why.message}"
            con.print(f"   rejected {a.site_id}{when}: {text}", markup=False)
    for d in reply.deferred:
        con.print(_line((f"{d.job_id} deferred", "yellow"), _why(d)))
    for i in reply.infeasible:
        con.print(_line((f"{i.job_id} infeasible", "red"), _why(i)))
    if reply.lower_bound_cny is not None:
        con.print(f"lower bound on the objective: {reply.lower_bound_cny:,.2f} CNY", markup=False)
    for note in reply.notes:
        con.print(f"note: {note}", markup=False)
    con.print(
        f"total: objective {reply.objective_cny:,.2f} CNY = cost {reply.cost_cny:,.2f} CNY + "
        f"{reply.carbon_kg:,.2f} kg CO2 at {price:g} CNY/t",
        markup=False,
    )


def _alt_key(a: Any) -> tuple[Any, ...]:
    """Rejected options in the reasons' order (``engine.reasons.sort_key``)."""
    from computenet.engine import reasons

    return (0, reasons.sort_key(a.why)) if a.why is not None else (1, (a.reason, a.site_id))


def _why(item: Any) -> str:
    """``: [code] message`` of a deferral or infeasible job (its legacy text if it has no
    structured reason)."""
    r = item.why
    return f": {item.reason}" if r is None else f" [{r.code}]: {r.message}"


def _line(head: tuple[str, str], rest: str) -> Any:
    """A styled head (e.g. a job id in bold) and the rest, all as written."""
    from rich.text import Text

    return Text.assemble(head, rest)


def _placements_table(reply: Any, jobs: Sequence[Any], net: Any, policy: str) -> Any:
    from rich.markup import escape
    from rich.table import Table

    from computenet.sim.faults import format_time

    title = f"{policy}: {len(reply.placements)} of {len(jobs)} jobs placed on {net.name}"
    t = Table(title=escape(title))
    for col, just in (
        ("job", "left"),
        ("site", "left"),
        ("accel.", "left"),
        ("start UTC", "left"),
        ("hours", "right"),
        ("objective CNY", "right"),
        ("cost CNY", "right"),
        ("kg CO2", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for p in reply.placements:
        t.add_row(
            literal(p.job_id),
            literal(p.site_id),
            literal(f"{p.count} x {p.accelerator}"),
            format_time(p.start_s),
            f"{(p.end_s - p.start_s) / 3600:.2f}",
            f"{p.breakdown.objective_cny:,.2f}",
            f"{p.breakdown.cost_cny:,.2f}",
            f"{p.breakdown.carbon_kg:,.2f}",
        )
    return t
