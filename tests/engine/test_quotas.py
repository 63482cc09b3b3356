"""Quotas, fair share and preemption (``engine.quotas``): admission within nominal quota,
borrowing only of idle quota up to the limit, DRF order, preemption of lower-priority
checkpointable work that loses less than one checkpoint interval."""

from __future__ import annotations

from dataclasses import replace

import pytest
from enginekit import T0, H, job, network, request, site
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from computenet.engine import plan
from computenet.engine.quotas import Holder, Quotas, TenantQuota, Usage, admit, lost_s
from computenet.engine.types import Allocation
from computenet.errors import InputError


def tjob(jid: str, tenant: str, gpus: int = 1, *, priority: int = 0, **kw) -> object:
    return replace(job(jid, 1.0, gpus, priority=priority, **kw), tenant=tenant)


def test_nominal_quota_admits_up_to_it_and_defers_the_rest_with_a_quota_reason() -> None:
    net = network(site("s1", 8))
    jobs = [tjob(f"a{i}", "a") for i in range(3)]
    q = Quotas((TenantQuota("a", {"A100": 2}),))
    rep = plan(replace(request(net, jobs), quotas=q))
    assert len(rep.placements) == 2
    assert [d.job_id for d in rep.deferred] == ["a2"]
    assert rep.deferred[0].reason.startswith("quota:")
    assert "nominal 2" in rep.deferred[0].reason


def test_borrowing_takes_only_idle_quota_up_to_the_limit() -> None:
    net = network(site("s1", 16))
    quotas = (
        TenantQuota("a", {"A100": 2}, {"A100": 3}),
        TenantQuota("b", {"A100": 2}),
    )
    jobs = [tjob(f"a{i}", "a") for i in range(6)]
    rep = plan(replace(request(net, jobs), quotas=Quotas(quotas)))
    # b's 2 are idle: a borrows them (limit 3, but the cohort has only 2 idle).
    assert len(rep.placements) == 4
    assert any("borrows 2 A100" in p.reason for p in rep.placements)
    # b holds its own quota now: nothing idle to borrow.
    running = [Allocation("b0", "s1", "A100", 2, T0, T0 + 5 * H)]
    holders = (Holder("b0", "b"),)
    rep = plan(replace(request(net, jobs, running=running), quotas=Quotas(quotas, holders)))
    assert len(rep.placements) == 2


def test_unmanaged_tenants_are_admitted_as_before() -> None:
    net = network(site("s1", 4))
    jobs = [tjob(f"x{i}", "nobody") for i in range(3)]
    q = Quotas((TenantQuota("a", {"A100": 1}),))
    assert len(plan(replace(request(net, jobs), quotas=q)).placements) == 3


def test_bad_quotas_name_the_field() -> None:
    with pytest.raises(InputError, match="nominal"):
        Quotas((TenantQuota("a", {"A100": -1}),))
    with pytest.raises(InputError, match="weight"):
        Quotas((TenantQuota("a", {"A100": 1}, weight=0.0),))
    with pytest.raises(InputError, match="two quotas"):
        Quotas((TenantQuota("a"), TenantQuota("a")))


def test_fair_order_admits_the_tenant_with_the_lower_dominant_share_first() -> None:
    net = network(site("s1", 8))
    quotas = Quotas(
        (
            TenantQuota("a", {"A100": 4}, {"A100": 4}),
            TenantQuota("b", {"A100": 4}, {"A100": 4}),
        ),
        (Holder("old", "a"),),
    )
    running = [Allocation("old", "s1", "A100", 3, T0, T0 + 5 * H)]
    # a arrived first, but already holds 3: b's jobs go first under fair order.
    jobs = [tjob(f"a{i}", "a", start_h=0) for i in range(3)]
    jobs += [tjob(f"b{i}", "b", start_h=0.5) for i in range(3)]
    req = request(net, jobs, running=running)
    fair = admit(req, quotas, "fair", Usage.of_request(req, quotas))
    fifo = admit(req, quotas, "fifo", Usage.of_request(req, quotas))
    assert [j.id for j in fair.jobs][:3] == ["b0", "b1", "b2"]
    assert [j.id for j in fifo.jobs][:3] == ["a0", "a1", "a2"]


def test_priority_comes_before_fair_share() -> None:
    net = network(site("s1", 8))
    quotas = Quotas((TenantQuota("a", {"A100": 8}), TenantQuota("b", {"A100": 8})))
    jobs = [tjob("b0", "b"), tjob("a-high", "a", priority=1000), tjob("a0", "a")]
    req = request(net, jobs)
    fair = admit(req, quotas, "fair", Usage.of_request(req, quotas))
    assert fair.jobs[0].id == "a-high"


# ---------------------------------------------------------------------- invariants


@st.composite
def quota_cases(draw):
    n_tenants = draw(st.integers(1, 3))
    tenants = [f"t{i}" for i in range(n_tenants)]
    quotas = tuple(
        TenantQuota(
            t,
            {"A100": draw(st.integers(0, 6)), "H100": draw(st.integers(0, 3))},
            {"A100": draw(st.integers(0, 4)), "H100": draw(st.integers(0, 2))},
        )
        for t in tenants
    )
    running, holders = [], []
    for i in range(draw(st.integers(0, 4))):
        t = draw(st.sampled_from(tenants))
        acc = draw(st.sampled_from(["A100", "H100"]))
        running.append(Allocation(f"r{i}", "s1", acc, draw(st.integers(1, 2)), T0, T0 + 3 * H))
        holders.append(Holder(f"r{i}", t))
    jobs = []
    for i in range(draw(st.integers(1, 10))):
        t = draw(st.sampled_from([*tenants, "free"]))
        speeds = draw(st.sampled_from([{}, {"A100": 1.0}, {"H100": 3.0}]))
        jobs.append(
            replace(
                job(f"j{i}", draw(st.sampled_from([0.5, 1.0, 3.0])), draw(st.integers(1, 3))),
                tenant=t,
                accelerator_speed=speeds,
                priority=draw(st.sampled_from([0, 100, 1000])),
            )
        )
    policy = draw(
        st.sampled_from(["greedy", "fifo-home", "quota-fifo", "fair-share", "fair-share-home"])
    )
    return quotas, running, holders, jobs, policy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quota_cases())
def test_quotas_are_never_exceeded_except_by_borrowing_idle_quota(case) -> None:
    quotas, running, holders, jobs, policy = case
    net = network(site("s1", {"A100": 12, "H100": 4}), site("s2", {"A100": 4}))
    q = Quotas(quotas, tuple(holders))
    req = replace(request(net, jobs, running=running, policy=policy), quotas=q)
    rep = plan(req)
    tenant_of = {j.id: j.tenant for j in jobs} | {h.job_id: h.tenant for h in holders}
    times = {a.start_s for a in running} | {p.start_s for p in rep.placements} | {T0}
    for at in sorted(times):  # quota held only rises where a run starts

        def held(runs, tenant: str, kind: str, at: int = at) -> int:
            return sum(
                r.count
                for r in runs
                if tenant_of[r.job_id] == tenant
                and r.accelerator == kind
                and r.start_s <= at < r.end_s
            )

        for kind in ("A100", "H100"):
            cohort = sum(tq.nominal.get(kind, 0) for tq in quotas)
            before = {tq.tenant: held(running, tq.tenant, kind) for tq in quotas}
            idle = max(0, cohort - sum(before.values()))
            borrowed = 0
            for tq in quotas:
                after = before[tq.tenant] + held(rep.placements, tq.tenant, kind)
                # Never past nominal + borrowing limit (unless it already was).
                assert after <= max(tq.limit(kind), before[tq.tenant])
                borrowed += max(0, after - max(tq.nominal.get(kind, 0), before[tq.tenant]))
            # What tenants hold beyond their nominal quota came out of the idle quota.
            assert borrowed <= idle
    answered = [p.job_id for p in rep.placements] + [d.job_id for d in rep.deferred]
    answered += [i.job_id for i in rep.infeasible]
    assert sorted(answered) == sorted(j.id for j in jobs)
    for d in rep.deferred:
        if d.reason.startswith("quota:"):
            assert tenant_of[d.job_id] != "free"


# ---------------------------------------------------------------------- preemption


def _preemption_case(checkpointable: bool = True, low_priority: int = 0):
    net = network(site("s1", 4))
    started = T0 - int(2.5 * H)
    running = [Allocation("low", "s1", "A100", 4, started, started + 10 * H)]
    holders = (Holder("low", "b", low_priority, checkpointable, 3600, started),)
    urgent = tjob("urgent", "a", 4, priority=1000, deadline_h=1.5)
    quotas = Quotas(
        (TenantQuota("a", {"A100": 4}), TenantQuota("b", {"A100": 4}, {"A100": 4})), holders
    )
    return replace(request(net, [urgent], running=running), quotas=quotas)


@pytest.mark.parametrize("policy", ["fair-share", "fair-share-home"])
def test_an_urgent_high_priority_job_preempts_checkpointable_low_priority_work(
    policy: str,
) -> None:
    rep = plan(replace(_preemption_case(), policy=policy))
    assert [p.job_id for p in rep.placements] == ["urgent"]
    assert rep.placements[0].start_s == T0
    (pre,) = rep.preemptions
    assert (pre.job_id, pre.by_job_id, pre.count) == ("low", "urgent", 4)
    assert pre.lost_s == 1800  # 2.5 h in, checkpoints every hour: 0.5 h lost
    assert pre.reason.startswith("preempted:")


@pytest.mark.parametrize(
    ("policy", "checkpointable", "low_priority"),
    [("quota-fifo", True, 0), ("fair-share", False, 0), ("fair-share", True, 1000)],
)
def test_no_preemption_without_the_policy_a_checkpoint_or_a_lower_priority(
    policy: str, checkpointable: bool, low_priority: int
) -> None:
    req = replace(_preemption_case(checkpointable, low_priority), policy=policy)
    rep = plan(req)
    assert rep.preemptions == ()
    assert rep.placements == ()


@given(st.integers(0, 20 * H), st.integers(60, 4 * H), st.integers(-2 * H, 2 * H), st.booleans())
def test_a_victim_loses_less_than_one_checkpoint_interval(
    ran_s: int, interval_s: int, drift_s: int, started: bool
) -> None:
    now = T0
    start = now - ran_s if started else now + abs(drift_s) + 1
    alloc = Allocation("v", "s1", "A100", 1, start, start + 30 * H)
    lost = lost_s(Holder("v", "t", 0, True, interval_s, start), alloc, now)
    assert 0 <= lost < interval_s
    if not started:
        assert lost == 0


def test_a_tenant_within_its_nominal_quota_reclaims_it_from_a_borrower() -> None:
    net = network(site("s1", 8))
    started = T0 - int(1.25 * H)
    running = [Allocation(f"b{i}", "s1", "A100", 2, started, started + 20 * H) for i in range(4)]
    holders = tuple(Holder(f"b{i}", "b", 0, True, 3600, started) for i in range(4))
    quotas = Quotas(
        (TenantQuota("a", {"A100": 4}), TenantQuota("b", {"A100": 4}, {"A100": 4})), holders
    )
    # Not urgent at all: a's job waits for nobody's deadline, only for its own quota.
    req = replace(
        request(net, [tjob("a0", "a", 4, deadline_h=200)], running=running), quotas=quotas
    )
    rep = plan(replace(req, policy="fair-share"))
    assert [p.job_id for p in rep.placements] == ["a0"]
    assert len(rep.preemptions) == 2  # b borrows 4: two of its 2-GPU runs, no more
    assert all("reclaims its nominal quota" in p.reason for p in rep.preemptions)
    assert all(p.lost_s == 900 for p in rep.preemptions)  # 1.25 h in, hourly checkpoints
    # The quota baseline never preempts: a0 waits for b's runs to end.
    assert plan(replace(req, policy="quota-fifo")).preemptions == ()
