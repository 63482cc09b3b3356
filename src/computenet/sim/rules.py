"""An independent check of the data rules on what the simulator actually executed.

The engine enforces the rules when it plans; this module re-derives every verdict from the
placement, the dataset and the network alone, so a bug in the engine shows up as a
violation in the metrics instead of being trusted. The rules are those of
``CHINA_FACTS.md`` §4 (Data Security Law Art. 21, PIPL Art. 40, the 2024 Provisions on
Cross-Border Data Flows):

* core data is processed only at its home (designated) site and is never copied;
* important data stays in its home jurisdiction;
* personal information stays in its home jurisdiction unless the export was cleared, or it
  covers fewer than 100,000 people and none of it is sensitive (the exemption);
* a site holding important or core data needs MLPS level 3 or more (GB/T 22239-2019).
"""

from __future__ import annotations

import math

from computenet.engine.types import PlanReply, PlanRequest
from computenet.model import Classification, Dataset, Network

PI_EXEMPT_BELOW = 100_000
MIN_LEVEL = {Classification.IMPORTANT: 3, Classification.CORE: 3}


def rule_breach(
    network: Network, dataset: Dataset, site_id: str, *, copy: bool = False
) -> str | None:
    """Why processing (or, with ``copy``, storing a copy of) ``dataset`` at ``site_id``
    breaks a rule, or ``None`` when it is allowed."""
    if site_id == dataset.home_site:
        return None
    cls = dataset.classification
    if cls is Classification.CORE:
        verb = "copied" if copy else "processed"
        return f"core data {dataset.id} {verb} away from its home site {dataset.home_site}"
    site = network.site(site_id)
    home = network.site(dataset.home_site)
    crosses = site.jurisdiction != home.jurisdiction
    if cls is Classification.IMPORTANT and crosses:
        return (
            f"important data {dataset.id} left {home.jurisdiction} "
            f"for {site_id} ({site.jurisdiction})"
        )
    pi_gated = dataset.sensitive or dataset.individuals >= PI_EXEMPT_BELOW
    if cls is Classification.PERSONAL and crosses and not dataset.export_cleared and pi_gated:
        return (
            f"personal information {dataset.id} ({dataset.individuals} people) exported "
            f"to {site_id} without clearance"
        )
    need = MIN_LEVEL.get(cls)
    if need is not None and site.security_level < need:
        return f"{cls} data {dataset.id} at {site_id}, MLPS level {site.security_level} < {need}"
    return None


def reply_breaches(req: PlanRequest, rep: PlanReply) -> list[str]:
    """Every hard constraint ``rep`` breaks, re-derived from the request alone (the
    engine's benchmark counts them; its tests assert there are none): down sites, gangs,
    accelerator types and run times, earliest starts and deadlines, data copied before the
    start, the data rules, and capacity (with the running allocations) at every pool the
    reply places work on."""
    net = req.network
    jobs = {j.id: j for j in req.jobs}
    ds = {d.id: d for d in req.datasets}
    out: list[str] = []
    usage: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for a in req.running_allocations():
        usage.setdefault((a.site_id, a.accelerator), []).extend(
            [(a.start_s, a.count), (a.end_s, -a.count)]
        )
    for p in rep.placements:
        j = jobs[p.job_id]
        where = f"{p.job_id} at {p.site_id}"
        if p.site_id in req.down_sites:
            out.append(f"{where}: the site is down")
        if p.count != j.accelerators:
            out.append(f"{where}: gang of {p.count}, the job needs {j.accelerators}")
        speed = (
            j.accelerator_speed.get(p.accelerator, 0.0)
            if j.accelerator_speed
            else net.speed(p.accelerator)
        )
        if speed <= 0:
            out.append(f"{where}: accelerator type {p.accelerator} not accepted")
        elif p.end_s - p.start_s != max(1, math.ceil(j.work_h * 3600 / speed)):
            out.append(f"{where}: runs {p.end_s - p.start_s} s, not the job's run time")
        if p.start_s < max(req.now_s, j.earliest_start_s):
            out.append(f"{where}: starts before it may")
        if p.end_s > j.deadline_s:
            out.append(f"{where}: ends after its deadline")
        for t in p.transfers:
            if t.end_s > p.start_s:
                out.append(f"{where}: dataset {t.dataset_id} arrives after the start")
            why = rule_breach(net, ds[t.dataset_id], t.to_site, copy=True)
            if why is not None:
                out.append(f"{where}: {why}")
        for d in j.datasets:
            why = rule_breach(net, ds[d], p.site_id)
            if why is not None:
                out.append(f"{where}: {why}")
        usage.setdefault((p.site_id, p.accelerator), []).extend(
            [(p.start_s, p.count), (p.end_s, -p.count)]
        )
    placed = {(p.site_id, p.accelerator) for p in rep.placements}
    for (sid, acc), ev in usage.items():
        if (sid, acc) not in placed:
            continue  # running work alone is not the reply's doing
        cap = net.site(sid).capacity(acc)
        level = 0
        for _, delta in sorted(ev):
            level += delta
            if level > cap:
                out.append(f"capacity of {sid}/{acc} exceeded: {level} > {cap}")
    return out
