"""Structured reasons: each code comes out of the engine for a case built to produce it,
with the numbers behind it; messages are rendered from the facts, deterministic and sorted;
the JSON round-trips; the compiled greedy's alternatives get the same codes as the text the
engine wrote for them."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pytest
from enginekit import T0, H, check_reply, dataset, job, network, request, site

from computenet.engine import plan, reasons
from computenet.engine.policies import greedy_compiled
from computenet.engine.reasons import Code, Reason, Role
from computenet.engine.types import Allocation, PlanReply, PlanRequest
from computenet.model import Classification, Jurisdiction
from netkit import Links


def _plan(req: PlanRequest) -> PlanReply:
    rep = plan(req)
    check_reply(req, rep)
    return rep


def _codes(item: object) -> list[tuple[str, str]]:
    return [(str(r.role), str(r.code)) for r in reasons.of_decision(item)]


def _every_decision_has_a_reason(rep: PlanReply) -> None:
    for p in rep.placements:
        assert p.why and p.why[0].role is Role.PLACED
        assert all(a.why is not None and a.why.role is Role.REJECTED for a in p.alternatives)
    for d in rep.deferred:
        assert d.why is not None and d.why.role is Role.DEFERRED
    for i in rep.infeasible:
        assert i.why is not None and i.why.role is Role.INFEASIBLE


def test_cost_and_transfer_time_give_the_differences_behind_a_move() -> None:
    net = network(site("A", carbon=800.0), site("B", carbon=100.0))
    rep = _plan(request(net, [job("j", 2)], [dataset("ds-j", "A")], carbon_price=10_000))
    _every_decision_has_a_reason(rep)
    p = rep.placements[0]
    placed, copy = p.why
    assert (placed.code, placed.get("site_id"), placed.get("policy")) == (Code.COST, "B", "greedy")
    assert placed.get("objective_cny") == pytest.approx(p.breakdown.objective_cny)
    assert placed.get("carbon_price_cny_per_t") == 10_000
    assert copy.code is Code.TRANSFER_TIME and copy.get("from_site") == "A"
    assert copy.get("size_gb") == 10.0 and copy.get("transfer_cost_cny") == 5.0
    assert "copies ds-j (10 GB) A -> B" in copy.message
    for r in (*p.why, *(a.why for a in p.alternatives if a.why)):  # facts in key order
        assert [k for k, _ in r.facts] == sorted(k for k, _ in r.facts)
    alt = p.alternatives[0].why
    assert alt is not None and alt.code is Code.COST and alt.get("site_id") == "A"
    # Staying home saves the 5 CNY copy but emits 0.67 kg more, worth 6.7 CNY at 10,000/t.
    assert alt.get("cost_diff_cny") < 0 < alt.get("carbon_diff_kg")
    assert alt.get("objective_diff_cny") == pytest.approx(
        p.alternatives[0].objective_cny - p.breakdown.objective_cny
    )
    assert alt.message.startswith(f"costs {alt.get('objective_diff_cny'):,.2f} CNY more (cost -")


def test_waiting_for_cheap_hours_is_counted_and_an_earlier_start_is_named() -> None:
    prices = [1.0] * 5 + [0.1] * 3 + [1.0] * 200
    net = network(site("A", price=prices), site("B", price=0.01))
    rep = _plan(request(net, [job("j", 3)], [dataset("ds-j", "A")], policy="wait-awhile"))
    placed = rep.placements[0].why[0]
    assert placed.get("wait_h") == 5.0 and placed.get("home_site") == "A"
    assert "starts 5.0 h after it could" in placed.message
    earlier = rep.placements[0].alternatives[0].why
    assert earlier is not None and earlier.get("same_site") is True
    assert earlier.message.startswith("starting now: costs")


def test_data_rule_names_the_rule_and_the_dataset_class() -> None:
    net = network(site("A", carbon=900.0), site("B", carbon=10.0))
    rep = _plan(request(net, [job("j", 2)], [dataset("ds-j", "A", Classification.CORE)]))
    rule = next(a.why for a in rep.placements[0].alternatives if a.site_id == "B")
    assert rule is not None and rule.code is Code.DATA_RULE
    assert rule.get("classification") == "core" and rule.get("scope") == "home site"
    assert rule.get("dataset_id") == "ds-j" and "Data Security Law" in rule.get("rule_source")
    assert rule.message == rep.placements[0].alternatives[-1].reason


def test_a_data_rule_refusal_carries_the_personal_data_facts() -> None:
    hk = network(site("A", 1), site("K", 8, jurisdiction=Jurisdiction.HONG_KONG))
    d = dataset("ds-j", "A", Classification.PERSONAL, individuals=500_000)
    rep = _plan(request(hk, [job("j", 1, gpus=4)], [d]))
    why = rep.infeasible[0].why
    assert why is not None and why.code is Code.DATA_RULE and why.role is Role.INFEASIBLE
    assert why.get("individuals") == 500_000 and why.get("site_jurisdiction") == "hong-kong"
    assert why.message.startswith("no site it may use: violates data rule: personal data ds-j")


def test_capacity_defers_or_refuses_with_the_gang_and_the_sites() -> None:
    net = network(site("A", 1))
    running = [Allocation("old", "A", "A100", 1, T0, T0 + 100 * H)]
    far = _plan(request(net, [job("j", 1, deadline_h=200)], running=running))
    why = far.deferred[0].why
    assert why is not None and (why.code, why.role) == (Code.CAPACITY, Role.DEFERRED)
    assert (why.get("count"), why.get("accelerator"), why.get("sites")) == (1, "A100", ("A",))
    assert why.get("horizon_h") == 48 and why.message == far.deferred[0].reason
    near = _plan(request(net, [job("j", 1, deadline_h=20)], running=running))
    assert near.infeasible[0].why == reasons.reason(
        Code.CAPACITY, Role.INFEASIBLE, count=1, accelerator="A100", sites=["A"], horizon_h=48.0
    )


def test_a_full_site_is_a_rejected_capacity_option() -> None:
    net = network(site("A", 1, price=0.1), site("B", 1, price=0.9))
    running = [Allocation("old", "A", "A100", 1, T0, T0 + 100 * H)]
    rep = _plan(request(net, [job("j", 1, deadline_h=10)], running=running, carbon_price=0))
    alt = {a.site_id: a.why for a in rep.placements[0].alternatives}
    assert alt["A"] is not None and alt["A"].code is Code.CAPACITY
    assert alt["A"].message == "no room for 1 x A100 before the deadline or horizon"


def test_deadline_late_hours_for_a_refused_site_and_an_infeasible_job() -> None:
    # B has only slow A100s: the job's 4 H100-hours take 8 h there, past its 6 h deadline.
    net = network(site("A", {"H100": 2}, carbon=900.0), site("B", {"A100": 2}, carbon=10.0))
    j = job("j", 4, speeds={"H100": 1.0, "A100": 0.5}, deadline_h=6)
    rep = _plan(request(net, [j]))
    late = next(a.why for a in rep.placements[0].alternatives if a.site_id == "B")
    assert (
        late is not None
        and late.code is Code.DEADLINE
        and late.get("late_h") == pytest.approx(2.0, abs=0.01)
    )
    assert late.message == "misses deadline by 2.0 h"
    rep = _plan(request(net, [job("k", 30, deadline_h=5)]))
    why = rep.infeasible[0].why
    assert why is not None and why.code is Code.DEADLINE and why.get("late_h") > 0
    assert why.message == rep.infeasible[0].reason


def test_site_down_rejected_and_infeasible() -> None:
    net = network(site("A", price=0.2), site("B", price=0.1), site("C", price=0.9))
    rep = _plan(request(net, [job("j", 1)], down=frozenset({"B"}), carbon_price=0))
    down = [a.why for a in rep.placements[0].alternatives if a.site_id == "B"]
    assert down and down[0] is not None and down[0].code is Code.SITE_DOWN
    assert down[0].message == "site B is down"
    rep = _plan(request(net, [job("j", 1)], down=frozenset({"A", "B", "C"})))
    assert rep.infeasible[0].why is not None and rep.infeasible[0].why.code is Code.SITE_DOWN


@dataclass(frozen=True)
class _NoRoute(Links):
    """No bandwidth from A to B."""

    def bandwidth_gbps(self, a: str, b: str) -> float:
        return 0.0 if (a, b) == ("A", "B") else self.bandwidth


def test_data_that_cannot_reach_a_site_is_a_transfer_time_reason() -> None:
    net = network(site("A", carbon=900.0), site("B", carbon=10.0), links=_NoRoute())
    rep = _plan(request(net, [job("j", 1)], [dataset("ds-j", "A")]))
    why = next(a.why for a in rep.placements[0].alternatives if a.site_id == "B")
    assert why is not None and why.code is Code.TRANSFER_TIME and why.get("reachable") is False
    assert why.message == "dataset ds-j cannot reach B (no bandwidth)"


def test_carbon_now_and_fifo_home_say_how_they_chose() -> None:
    net = network(site("A", price=0.9, carbon=100.0), site("B", price=0.2, carbon=900.0))
    ds = [dataset("ds-j", "B", size_gb=0.0)]
    clean = _plan(request(net, [job("j", 1)], ds, policy="carbon-now"))
    assert clean.placements[0].why[0].code is Code.CARBON
    alt = clean.placements[0].alternatives[0].why
    assert alt is not None and alt.code is Code.CARBON and alt.get("carbon_diff_kg") > 0
    assert alt.message == clean.placements[0].alternatives[0].reason
    home = _plan(request(net, [job("j", 1)], ds, policy="fifo-home"))
    assert home.placements[0].why[0].code is Code.HOME
    assert "its data's home site" in home.placements[0].why[0].message
    cheap = _plan(request(net, [job("j", 1)], ds, policy="cheapest-now"))
    alt = cheap.placements[0].alternatives[0].why
    assert alt is not None and alt.get("measure") == "cost"
    assert alt.message.startswith(cheap.placements[0].alternatives[0].reason)


def test_horizon_and_the_refusals_of_bad_jobs() -> None:
    net = network(site("A", 4), site("B", 2))
    rep = _plan(request(net, [job("late", 1, start_h=60, deadline_h=90)], horizon=24))
    assert rep.deferred[0].why is not None and rep.deferred[0].why.code is Code.HORIZON
    cases = {
        "gang": job("g", 1, gpus=9),
        "accelerator_type": job("t", 1, speeds={"TPU": 1.0}),
        "input": job("d", 1, datasets=("missing",)),
    }
    ds = [dataset("ds-g", "A"), dataset("ds-t", "A")]
    rep = _plan(request(net, list(cases.values()), ds))
    got = {i.job_id: i.why for i in rep.infeasible}
    for code, j in cases.items():
        why = got[j.id]
        assert (
            why is not None
            and why.code == code
            and why.message == next(i.reason for i in rep.infeasible if i.job_id == j.id)
        )


@pytest.mark.parametrize(
    ("r", "words"),
    [
        (
            reasons.reason(
                Code.LATENCY,
                Role.REJECTED,
                site_id="kashi",
                region_id="shanghai",
                rtt_ms=92.0,
                limit_ms=50.0,
            ),
            "kashi is 92 ms from shanghai, over the 50 ms target",
        ),
        (
            reasons.reason(
                Code.QUOTA,
                Role.DEFERRED,
                tenant="acme",
                resource="A100",
                used=60,
                requested=8,
                limit=64,
            ),
            "tenant acme would use 68 of its quota of 64 A100",
        ),
        (
            reasons.reason(Code.PREEMPTED, Role.DEFERRED, site_id="A", by_job="j9", by_priority=5),
            "preempted at A by job j9 (priority 5)",
        ),
        (
            reasons.reason(Code.POWER_CAP, Role.REJECTED, site_id="A", cap_kw=500, needed_kw=12.5),
            "A is at its power cap of 500 kW (12.5 kW more needed)",
        ),
        (
            reasons.reason(Code.GRID_EVENT, Role.REJECTED, site_id="A", event="demand response"),
            "grid event at A: demand response",
        ),
    ],
)
def test_codes_for_the_other_parts_render_from_their_facts(r: Reason, words: str) -> None:
    """Codes that quotas, grid events and inference placement give (not this engine yet)."""
    assert r.message == words
    assert reasons.from_json(json.loads(json.dumps(r.to_json()))) == r


def test_a_renderer_missing_a_fact_lists_the_facts_instead_of_failing() -> None:
    r = reasons.reason(Code.LATENCY, Role.REJECTED, site_id="A")
    assert r.message == "latency: site_id=A"


def test_json_round_trips_and_unknown_codes_are_kept_as_stored() -> None:
    net = network(site("A", carbon=800.0), site("B", carbon=100.0))
    rep = _plan(request(net, [job("j", 2)], [dataset("ds-j", "A", Classification.CORE)]))
    rs = reasons.of_decision(rep.placements[0])
    stored = json.loads(json.dumps([r.to_json() for r in rs]))
    assert [reasons.from_json(d) for d in stored] == rs
    newer = {"code": "solar_flare", "role": "rejected", "message": "as stored", "x": 1}
    assert reasons.from_json(newer) is None
    assert reasons.rendered([*stored, newer])[-1] == newer
    assert reasons.rendered(reversed(stored)) == stored


def test_reasons_are_sorted_and_the_same_request_gives_the_same_words() -> None:
    net = network(*(site(s, 2, carbon=c) for s, c in (("A", 900.0), ("B", 50.0), ("C", 400.0))))
    ds = [dataset("ds-j", "A", Classification.IMPORTANT), dataset("ds-k", "B")]
    jobs = [job("j", 2), job("k", 3, gpus=2)]
    one = _plan(request(net, jobs, ds, down=frozenset({"C"})))
    two = _plan(request(net, jobs, ds, down=frozenset({"C"})))
    for a, b in zip(one.placements, two.placements, strict=True):
        listed = [r.to_json() for r in reasons.of_decision(a)]
        assert listed == [r.to_json() for r in reasons.of_decision(b)]
        shuffled = reversed(reasons.of_decision(a))
        assert [r.to_json() for r in reasons.sort_reasons(shuffled)] == listed
        keys = [reasons.sort_key(r) for r in reasons.of_decision(a)]
        assert keys == sorted(keys) and listed[0]["role"] == "placed"
        for d in listed:
            assert list(d)[:3] == ["code", "role", "message"]
            facts = list(d)[3:]
            assert facts == sorted(facts)


def test_compiled_greedy_alternatives_get_the_codes_of_their_words(monkeypatch) -> None:
    """The compiled greedy writes its alternatives' text itself; ``why`` classifies them
    from the problem. The code must say what the text says."""
    monkeypatch.setattr(greedy_compiled, "MIN_JOBS", 1)
    rng = np.random.default_rng(7)
    sites = [
        site(
            f"S{i}",
            int(rng.integers(1, 4)),
            price=list(rng.uniform(0.1, 1.0, 60)),
            carbon=list(rng.uniform(50, 900, 60)),
            jurisdiction=[Jurisdiction.MAINLAND, Jurisdiction.HONG_KONG][i % 2],
        )
        for i in range(5)
    ]
    jobs, ds = [], []
    classes = list(Classification)
    for k in range(40):
        start, work = float(rng.uniform(0, 8)), float(rng.uniform(0.1, 4))
        jobs.append(
            job(
                f"j{k}",
                work,
                int(rng.integers(1, 3)),
                start_h=start,
                deadline_h=start + work + float(rng.uniform(0, 6)),
            )
        )
        ds.append(dataset(f"ds-j{k}", f"S{k % 5}", classes[k % 5], size_gb=2.0))
    req = replace(request(network(*sites), jobs, ds, horizon=16), policy="greedy")
    rep = _plan(req)
    _every_decision_has_a_reason(rep)
    words = {
        "violates data rule": Code.DATA_RULE,
        "misses deadline": Code.DEADLINE,
        "costs": Code.COST,
        "ties": Code.COST,
        "starting": Code.COST,
        "cannot reach": Code.TRANSFER_TIME,
        "no room": Code.CAPACITY,
        "site is down": Code.SITE_DOWN,
    }
    seen = set()
    for p in rep.placements:
        for a in p.alternatives:
            code = next(c for w, c in words.items() if a.reason.startswith(w))
            assert a.why is not None and a.why.code is code, (a.reason, a.why)
            seen.add(code)
            if code is not Code.COST:
                assert a.why.message == a.reason
    assert {Code.DATA_RULE, Code.COST} <= seen


def test_every_code_has_a_description_and_detail_only_codes_say_so() -> None:
    assert set(reasons.DESCRIPTIONS) == set(Code)
    detail_only = {Code.ACCELERATOR_TYPE, Code.GANG, Code.INPUT, Code.NO_EXECUTOR, Code.FALLBACK}
    for code in Code:
        r = reasons.reason(code, Role.INFEASIBLE, detail="the engine's sentence")
        assert r.message == "the engine's sentence"
        assert (code in reasons.FACTS) != (code in detail_only), code
