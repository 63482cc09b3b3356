"""Grid events in the live service: answer the grid from the database's view of the work,
carry the answer out through the live loop, and report what was delivered.

* ``answer``: the work placed at the event's sites whose run touches the window goes to
  ``engine.grid.respond`` with everything else that holds capacity. What the service cannot
  do is taken out of the answer's hands: a run whose executor cannot cancel cannot be paused,
  a run being prepared (data in transfer) is left alone (both count as class 0 here), and
  only executors that declare ``Capabilities.power_cap`` are asked to run slower. Jobs not
  yet started take their new place at once (``Repository.create_grid_event``); running
  work to pause is recorded with the time it stops.
* ``pause_due`` (a step of every loop tick): running work whose stop came is cancelled
  after a checkpoint (its saved work counted) and planned again; planning then holds the
  event's caps, so it runs after the event or elsewhere.
* ``power_limits``: the caps of the events not over, and the power the placed and running
  jobs at those sites draw, for every planning request while an event lasts.
* ``report``: per hour, the draw before the event (the answer's baseline), what was asked,
  committed, and delivered: the runs as the executors reported them (audited start and
  stop times) times each job's modelled power (``model.job_power_kw`` x PUE). No executor
  here reports measured power; the report says so.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Mapping
from typing import Any

from computenet.control.planning import Planner
from computenet.engine.grid import (
    GridEvent,
    GridRequest,
    GridResponse,
    Work,
    facility_kw,
    mean_kw,
    respond,
)
from computenet.engine.power import PowerCap, PowerDraw
from computenet.engine.types import Allocation, PlanRequest
from computenet.executors.base import Executor
from computenet.store.models import JobRow
from computenet.store.repository import Repository, now_s

ACTIVE = ("placed", "transferring", "running")
METERED = (
    "delivered: the runs as the executors reported them (audited start and stop times) x each "
    "job's modelled power (measured power profile of its accelerator type, x PUE); no executor "
    "here reports measured power"
)


def _job(planner: Planner, r: JobRow, now: int) -> Any:
    return planner._training_job(r, now)


def answer(
    repo: Repository,
    planner: Planner,
    executors: Mapping[str, Executor],
    actor: str,
    event: GridEvent,
) -> dict[str, Any]:
    """Answer ``event`` now, store it with its answer and carry out what can be done at
    once; the stored event (``grid_event_dict``)."""
    now = now_s()
    network, forecasts = planner._network_view()
    sites = set(event.site_ids)
    work: list[Work] = []
    others: list[Allocation] = []
    rows = [r for r in repo.jobs_in(list(ACTIVE)) if r.site_id and r.accelerator]
    for r in rows:
        if r.start_s is None or r.end_s is None or r.site_id is None or r.accelerator is None:
            continue
        if r.site_id in sites and r.start_s < event.end_s and r.end_s > event.start_s:
            job = _job(planner, r, now)
            ex = executors.get(r.site_id)
            if r.state == "transferring" or (
                r.state == "running" and (ex is None or not ex.capabilities.cancel)
            ):
                job = dataclasses.replace(job, flex_class=0)
            start, end = r.start_s, r.end_s
            if r.state == "placed" and start < now:  # due, not dispatched yet
                start, end = now, now + (end - start)
            work.append(Work(job, r.site_id, r.accelerator, r.accelerators, start, end))
        else:
            others.append(
                Allocation(r.id, r.site_id, r.accelerator, r.accelerators, r.start_s, r.end_s)
            )
    base = PlanRequest(
        now_s=now,
        network=network,
        jobs=(),
        policy="greedy",
        datasets=planner._datasets([r for r in rows if r.id in {w.job.id for w in work}]),
        running=tuple(others),
        carbon_price_cny_per_t=planner.settings.carbon_price_cny_per_t,
        forecasts=forecasts,
    )
    cappable = frozenset(s for s, ex in executors.items() if ex.capabilities.power_cap)
    res = respond(GridRequest(event, base, tuple(work), cappable))
    states = {r.id: r.state for r in rows}
    moves, pauses = [], []
    for a in res.affected:
        if a.placement is None:
            continue
        if states.get(a.job_id) == "running":
            pauses.append([a.job_id, a.paused_at_s or event.start_s, False])
        else:
            p = a.placement
            moves.append(
                {
                    "job_id": a.job_id,
                    "site_id": p.site_id,
                    "accelerator": p.accelerator,
                    "start_s": p.start_s,
                    "end_s": p.end_s,
                    "message": f"{a.action} for grid event {event.id} (flexibility class "
                    f"{a.flex_class}); finishes {a.delay_s / 3600:+.2f} h from its plan",
                }
            )
    doc = {
        "id": event.id,
        "sites": list(event.site_ids),
        "start_s": event.start_s,
        "end_s": event.end_s,
        "notice_s": event.notice_s,
        "target_kw": event.target_kw,
        "target_share": event.target_share,
    }
    caps = [[c.site_id, c.start_s, c.end_s, c.limit_kw, list(c.group)] for c in res.caps]
    return repo.create_grid_event(actor, doc, answer_json(res), caps, pauses, moves)


def new_event_id() -> str:
    return "ge_" + uuid.uuid4().hex[:16]


def answer_json(res: GridResponse) -> dict[str, Any]:
    """The commitment as stored and served (kW facility power; modelled)."""
    return {
        "kind": "modelled: the plan, with the measured power profile of each accelerator type",
        "hours": [
            {
                "site": h.site_id,
                "start_s": h.start_s,
                "end_s": h.end_s,
                "baseline_kw": h.baseline_kw,
                "asked_kw": h.asked_kw,
                "committed_kw": h.committed_kw,
                "shortfall_kw": h.shortfall_kw,
            }
            for h in res.hours
        ],
        "totals": [
            {
                "sites": h.site_id,
                "start_s": h.start_s,
                "end_s": h.end_s,
                "baseline_kw": h.baseline_kw,
                "asked_kw": h.asked_kw,
                "committed_kw": h.committed_kw,
                "shortfall_kw": h.shortfall_kw,
            }
            for h in res.totals
        ],
        "committed_ratio_min": res.delivered_ratio_min,
        "affected": [
            {
                "job_id": a.job_id,
                "flex_class": a.flex_class,
                "action": str(a.action),
                "from_site": a.from_site,
                "to_site": a.to_site,
                "old_start_s": a.old_start_s,
                "old_end_s": a.old_end_s,
                "new_start_s": a.new_start_s,
                "new_end_s": a.new_end_s,
                "deadline_s": a.deadline_s,
                "deadline_margin_s": a.deadline_margin_s,
                "shed_kw": a.shed_kw,
                "paused_at_s": a.paused_at_s,
                "utilisation": a.utilisation,
                "accelerator": a.accelerator,
            }
            for a in res.affected
        ],
        "deadline_risk": {
            "added_misses": res.added_misses,
            "added_misses_flex": res.added_misses_flex,
            "within_an_hour_of_deadline": res.at_risk,
        },
        "energy_moved_kwh": res.energy_moved_kwh,
        "carbon_moved_kg": res.carbon_moved_kg,
        "notes": list(res.notes),
    }


def power_limits(
    repo: Repository, planner: Planner, now: int, end: int
) -> tuple[tuple[PowerCap, ...], tuple[PowerDraw, ...]]:
    """The caps of events not over that touch ``[now, end)``, and the facility power the
    placed and running jobs at their sites draw (modelled), for a planning request."""
    caps = tuple(
        PowerCap(str(s), int(a), int(b), float(kw), f"grid event {ev['id']}", tuple(g))
        for ev in repo.grid_events_active(now)
        for s, a, b, kw, g in ev["caps"]
        if int(b) > now and int(a) < end
    )
    if not caps:
        return (), ()
    capped = {s for c in caps for s in c.sites}
    draws = []
    for r in repo.jobs_in(list(ACTIVE)):
        if r.site_id in capped and r.accelerator and r.start_s is not None and r.end_s is not None:
            kw = facility_kw(
                planner.network, _job(planner, r, now), r.site_id, r.accelerator, r.accelerators
            )
            draws.append(PowerDraw(r.site_id, r.start_s, r.end_s, kw, r.id))
    return caps, tuple(draws)


def pause_due(repo: Repository, executors: Mapping[str, Executor], settings: Any) -> int:
    """Stop the running work whose grid-event stop came (see the module docstring); the
    number stopped."""
    now = now_s()
    stopped = 0
    for ev in repo.grid_events_active(now - 1):
        for job_id, at, done in ev["pauses"]:
            if done or int(at) > now:
                continue
            rows = [r for r in repo.jobs_in(["running"]) if r.id == job_id]
            checkpoints, work_h = 0, 0.0
            if rows:
                r = rows[0]
                ex = executors.get(r.executor or "")
                if ex is not None and ex.capabilities.cancel and r.dispatch_id is not None:
                    try:
                        ex.cancel(r.dispatch_id, r.local_id)
                    except Exception:  # tried again next tick
                        continue
                checkpoints, work_h = _saved(r, now, settings)
            why = (
                f"paused for grid event {ev['id']} after a checkpoint; planned again under "
                "its power caps"
            )
            if repo.grid_pause(
                ev["id"], job_id, why, checkpoints_added=checkpoints, work_added_h=work_h
            ):
                stopped += 1
    return stopped


def _saved(r: JobRow, now: int, settings: Any) -> tuple[int, float]:
    """Checkpoints and reference hours saved by a running checkpointable job by ``now``."""
    if not r.checkpointable or r.run_started_s is None or r.start_s is None or r.end_s is None:
        return 0, 0.0
    interval = r.checkpoint_interval_s or settings.checkpoint_interval_s
    ran = max(0, now - r.run_started_s)
    n = math.floor(ran / interval)
    if n == 0 or r.end_s <= r.start_s:
        return 0, 0.0
    left_h = r.duration_h - float(r.work_done_h or 0.0)
    return n, left_h * min(1.0, n * interval / (r.end_s - r.start_s))


def report(repo: Repository, planner: Planner, event_id: str) -> dict[str, Any]:
    """The stored event with, per hour, what was delivered (see ``METERED``)."""
    ev = repo.get_grid_event(event_id)
    now = now_s()
    sites = set(ev["sites"])
    rows = [
        r
        for r in repo.jobs_in(
            [
                "placed",
                "transferring",
                "running",
                "checkpointed",
                "submitted",
                "succeeded",
                "failed",
                "cancelled",
            ]
        )
        if r.site_id in sites or r.id in {a["job_id"] for a in ev["answer"]["affected"]}
    ]
    paused = {a["job_id"]: a for a in ev["answer"]["affected"] if a.get("paused_at_s")}
    runs = repo.runs_of([r.id for r in rows])
    draws: list[PowerDraw] = []
    for r in rows:
        for a, b in runs[r.id]:
            site, acc = r.site_id, r.accelerator
            if r.id in paused and (b is not None and b <= int(paused[r.id]["paused_at_s"]) + 60):
                site, acc = paused[r.id]["from_site"], paused[r.id]["accelerator"]
            if site is None or site not in sites or not acc:
                continue
            kw = facility_kw(planner.network, _job(planner, r, now), site, acc, r.accelerators)
            draws.append(PowerDraw(site, a, b if b is not None else now, kw, r.id))
    hours = []
    for h in ev["answer"]["hours"]:
        a, b = int(h["start_s"]), int(h["end_s"])
        over = a >= now
        metered = (
            None if over else mean_kw([d for d in draws if d.site_id == h["site"]], a, min(b, now))
        )
        delivered = None if metered is None else h["baseline_kw"] - metered
        hours.append(
            dict(
                h,
                delivered_kw=delivered,
                delivered_ratio=(
                    None if delivered is None or h["asked_kw"] <= 0 else delivered / h["asked_kw"]
                ),
                metered_until_s=None if over else min(b, now),
            )
        )
    return dict(ev, delivered={"hours": hours, "kind": METERED})
