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
utilisation         no        share of accelerator power drawn, (0, 1] (default 0.8)
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

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import typer

from computenet.cli.app import app
from computenet.errors import InputError

REQUIRED = ("id", "accelerators", "work_h", "earliest_start", "deadline")
OPTIONAL = (
    "accelerator_types",
    "priority",
    "utilisation",
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


def _num(text: str, src: str, where: str, *, kind: type = float, lo: float | None = None) -> Any:
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
    return v


def read_jobs(path: Path, network: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Jobs and datasets from the CSV described in the module docstring."""
    from computenet.model import Classification, Dataset, TrainingJob
    from computenet.sim.faults import parse_time

    src = str(path)
    if not path.is_file():
        raise InputError("jobs file not found", source=src, fix="pass an existing --jobs CSV")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise InputError(
                f"missing column(s) {', '.join(missing)}",
                source=src,
                where="line 1",
                fix=f"the header needs {', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})",
            )
        unknown = [c for c in cols if c not in REQUIRED and c not in OPTIONAL]
        if unknown:
            raise InputError(
                f"unknown column(s) {', '.join(unknown)}",
                source=src,
                where="line 1",
                fix=f"columns are {', '.join(REQUIRED + OPTIONAL)}",
            )
        jobs: list[TrainingJob] = []
        datasets: dict[str, Dataset] = {}
        seen: set[str] = set()
        for line, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}

            def at(field: str, _line: int = line) -> str:
                return f"line {_line}, {field}"

            for c in REQUIRED:
                if not row.get(c):
                    raise InputError("empty required field", source=src, where=at(c))
            jid = row["id"]
            if jid in seen:
                raise InputError(f"job id {jid!r} appears twice", source=src, where=at("id"))
            seen.add(jid)
            count = _num(row["accelerators"], src, at("accelerators"), kind=int, lo=1)
            work = _num(row["work_h"], src, at("work_h"), lo=0)
            start = parse_time(row["earliest_start"], source=src, where=at("earliest_start"))
            end = parse_time(row["deadline"], source=src, where=at("deadline"))
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
            prio = (
                _num(row["priority"], src, at("priority"), kind=int) if row.get("priority") else 0
            )
            util = 0.8
            if row.get("utilisation"):
                util = _num(row["utilisation"], src, at("utilisation"))
                if not 0 < util <= 1:
                    raise InputError(
                        f"{util} is not in (0, 1]", source=src, where=at("utilisation")
                    )
            ds_ids: tuple[str, ...] = ()
            if row.get("dataset"):
                did = row["dataset"]
                for need in ("data_gb", "home_site"):
                    if not row.get(need):
                        raise InputError(
                            f"dataset {did!r} needs {need}", source=src, where=at(need)
                        )
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
                ds = Dataset(
                    id=did,
                    size_gb=_num(row["data_gb"], src, at("data_gb"), lo=0),
                    home_site=row["home_site"],
                    classification=cls,
                    individuals=_num(row["individuals"], src, at("individuals"), kind=int, lo=0)
                    if row.get("individuals")
                    else 0,
                    sensitive=_bool(row.get("sensitive", ""), src, at("sensitive")),
                    export_cleared=_bool(row.get("export_cleared", ""), src, at("export_cleared")),
                )
                if did in datasets and datasets[did] != ds:
                    raise InputError(
                        f"dataset {did!r} is described differently on an earlier line",
                        source=src,
                        where=at("dataset"),
                    )
                datasets[did] = ds
                ds_ids = (did,)
            jobs.append(
                TrainingJob(
                    id=jid,
                    accelerators=count,
                    work_h=work,
                    earliest_start_s=start,
                    deadline_s=end,
                    accelerator_speed=speeds,
                    datasets=ds_ids,
                    priority=prio,
                    utilisation=util,
                )
            )
    if not jobs:
        raise InputError("no jobs", source=src, fix="add one job per line after the header")
    return tuple(jobs), tuple(datasets.values())


@app.command("plan")
def plan_command(
    network: str = typer.Option(..., "--network", help="Built-in network name or a .toml file."),
    jobs: Path = typer.Option(..., "--jobs", help="Jobs CSV (see `computenet.cli.plan`)."),
    policy: str = typer.Option("greedy", "--policy", help="Placement policy."),
    carbon_price: float = typer.Option(
        1000.0, "--carbon-price", help="CNY per tonne CO2 in the objective."
    ),
    now: str = typer.Option(
        None, "--now", help="Planning time (ISO or epoch; default: first earliest start)."
    ),
    horizon_h: int = typer.Option(
        None, "--horizon-hours", help="Hours planned ahead (default: up to the last deadline)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the reply as JSON."),
) -> None:
    """Place the jobs of a CSV file with one policy; print each decision and why."""
    from computenet.engine import POLICIES
    from computenet.engine import plan as engine_plan
    from computenet.engine.types import PlanRequest
    from computenet.errors import UnknownNameError
    from computenet.sim.faults import format_time, parse_time
    from computenet.sim.simulator import _sibling

    if policy not in POLICIES:
        raise UnknownNameError("policy", policy, POLICIES, source="--policy")
    if not math.isfinite(carbon_price) or carbon_price < 0:
        raise InputError("must be a number >= 0", source="--carbon-price")
    net = _sibling("computenet.catalog", "load_network", "networks")(network)
    js, ds = read_jobs(jobs, net)
    now_s = parse_time(now, source="--now") if now else min(j.earliest_start_s for j in js)
    if horizon_h is None:
        horizon_h = max(1, math.ceil((max(j.deadline_s for j in js) - now_s) / 3600))
    if horizon_h < 1:
        raise InputError("must be at least 1", source="--horizon-hours")
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
        out = dataclasses.asdict(reply)
        for p, raw in zip(reply.placements, out["placements"], strict=True):
            raw["breakdown"]["cost_cny"] = p.breakdown.cost_cny
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"{policy}: {len(reply.placements)} of {len(js)} jobs placed on {net.name}")
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
            p.job_id,
            p.site_id,
            f"{p.count} x {p.accelerator}",
            format_time(p.start_s),
            f"{(p.end_s - p.start_s) / 3600:.2f}",
            f"{p.breakdown.objective_cny:,.2f}",
            f"{p.breakdown.cost_cny:,.2f}",
            f"{p.breakdown.carbon_kg:,.2f}",
        )
    con.print(t)
    for p in reply.placements:
        con.print(f"[bold]{p.job_id}[/]: {p.reason}", highlight=False)
        for tr in p.transfers:
            con.print(
                f"   copies {tr.dataset_id} ({tr.size_gb:g} GB) {tr.from_site} -> {tr.to_site}, "
                f"{tr.cost_cny:,.2f} CNY, done {format_time(tr.end_s)}",
                highlight=False,
            )
        for a in p.alternatives:
            when = "" if a.start_s is None else f" at {format_time(a.start_s)}"
            con.print(f"   rejected {a.site_id}{when}: {a.reason}", highlight=False)
    for d in reply.deferred:
        con.print(f"[yellow]{d.job_id} deferred[/]: {d.reason}", highlight=False)
    for i in reply.infeasible:
        con.print(f"[red]{i.job_id} infeasible ({i.constraint})[/]: {i.reason}", highlight=False)
    con.print(
        f"total: objective {reply.objective_cny:,.2f} CNY = cost {reply.cost_cny:,.2f} CNY + "
        f"{reply.carbon_kg:,.2f} kg CO2 at {carbon_price:g} CNY/t",
        highlight=False,
    )
