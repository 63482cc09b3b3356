"""Grid events over the API, on SQLite and PostgreSQL: the role boundaries of
``grid-operator``, an event answered from the live loop's placements with a commitment that
holds the cap, the loop's later plans holding it too, the audit, and the event report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.service.conftest import ADMIN

from computenet.api.app import create_app
from computenet.control import gridops
from computenet.control.loop import ControlLoop
from computenet.engine.grid import peak_kw
from computenet.settings import Settings
from computenet.store.repository import now_s

H = 3600


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    s = Settings(db_url=db_url, home=tmp_path, admin_token=ADMIN, run_loop=False)
    with TestClient(create_app(s)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token(client: TestClient, name: str, role: str) -> str:
    r = client.post("/v1/tenants", json={"name": name, "role": role}, headers=auth(ADMIN))
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def loop_of(client: TestClient) -> ControlLoop:
    st = client.app.state.service  # type: ignore[attr-defined]
    return ControlLoop(st.repo, st.settings, network=st.network, executors=st.executors)


EVENT = {"site": "guian", "start_s": 0, "end_s": 0, "target_pct": 25}


def test_roles_a_tenant_cannot_post_events_a_grid_operator_cannot_touch_jobs(
    client: TestClient,
) -> None:
    tenant = auth(token(client, "acme", "tenant"))
    grid = auth(token(client, "grid", "grid-operator"))
    t = now_s()
    ev = dict(EVENT, start_s=t + H, end_s=t + 4 * H)
    r = client.post("/v1/grid-events", json=ev, headers=tenant)
    assert r.status_code == 403 and "grid-operator" in r.text
    job = client.post(
        "/v1/jobs", json={"name": "x", "accelerators": 1, "duration_h": 1.0}, headers=tenant
    ).json()
    r = client.post(
        "/v1/jobs", json={"name": "y", "accelerators": 1, "duration_h": 1.0}, headers=grid
    )
    assert r.status_code == 403
    assert client.get("/v1/jobs", headers=grid).status_code == 403
    assert client.get(f"/v1/jobs/{job['id']}", headers=grid).status_code == 403
    assert client.get(f"/v1/jobs/{job['id']}/placement", headers=grid).status_code == 403
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=grid).status_code == 403
    assert client.get("/v1/tenants", headers=grid).status_code == 403
    posted = client.post("/v1/grid-events", json=ev, headers=grid)
    assert posted.status_code == 201, posted.text
    eid = posted.json()["id"]
    assert client.get(f"/v1/grid-events/{eid}", headers=tenant).status_code == 403
    assert client.get(f"/v1/grid-events/{eid}", headers=grid).status_code == 200
    assert client.get(f"/v1/grid-events/{eid}", headers=auth(ADMIN)).status_code == 200


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"site": "atlantis"}, "site"),
        ({"site": None, "province": "Atlantis"}, "province"),
        ({"target_pct": None}, "target"),
        ({"target_mw": 1.0}, "target"),
        ({"end_s": 1}, "end_s"),
        ({"target_pct": 120}, "target_pct"),
    ],
)
def test_bad_events_are_4xx_naming_the_field(client: TestClient, patch: dict, field: str) -> None:
    grid = auth(token(client, "grid", "grid-operator"))
    t = now_s()
    body = dict(EVENT, start_s=t + H, end_s=t + 4 * H) | patch
    r = client.post("/v1/grid-events", json=body, headers=grid)
    assert r.status_code in (400, 422), r.text
    assert field in r.text


def test_an_event_is_answered_carried_out_held_by_later_plans_and_audited(
    client: TestClient,
) -> None:
    tenant = auth(token(client, "acme", "tenant"))
    grid = auth(token(client, "grid", "grid-operator"))
    t = now_s()
    for n in range(12):
        body = {
            "name": f"train-{n}",
            "accelerators": 8,
            "duration_h": 4.0,
            "deadline_s": t + 40 * H,
            "flex_class": n % 4,
            "checkpointable": True,
        }
        assert client.post("/v1/jobs", json=body, headers=tenant).status_code == 201
    loop = loop_of(client)
    loop.plan_queued()
    jobs = client.get("/v1/jobs", headers=tenant).json()["items"]
    assert all(j["state"] == "placed" for j in jobs)
    site, _ = Counter(j["site_id"] for j in jobs).most_common(1)[0]
    first = min(j["start_s"] for j in jobs if j["site_id"] == site)
    start = max(first, t + 600)
    ev = {"site": site, "start_s": start, "end_s": start + 3 * H, "target_pct": 25}
    r = client.post("/v1/grid-events", json=ev, headers=grid)
    assert r.status_code == 201, r.text
    doc = r.json()
    answer = doc["answer"]
    assert len(answer["hours"]) == 3 and answer["kind"].startswith("modelled")
    for h in answer["hours"]:
        assert h["asked_kw"] > 0
        assert h["committed_kw"] >= h["asked_kw"] - 1e-6, h
    assert not answer["notes"]
    affected = answer["affected"]
    assert affected
    classes = {j["id"]: j["flex_class"] for j in jobs}
    assert all(a["flex_class"] == classes[a["job_id"]] for a in affected)
    # Class 0 is never slowed; flexible work goes before it.
    for a in affected:
        if a["flex_class"] == 0:
            assert a["new_end_s"] <= a["old_end_s"]
    assert answer["deadline_risk"]["added_misses"] == 0
    # The answer is carried out: the jobs it moved are placed where it says.
    after = {j["id"]: j for j in client.get("/v1/jobs", headers=tenant).json()["items"]}
    for a in affected:
        if a["action"] in ("deferred", "moved", "advanced"):
            assert after[a["job_id"]]["site_id"] == a["to_site"]
            assert after[a["job_id"]]["start_s"] == a["new_start_s"]
    # The placements now hold every cap the answer keeps in force.
    st = client.app.state.service  # type: ignore[attr-defined]
    caps, draws = gridops.power_limits(st.repo, loop.planner, now_s(), start + 4 * H)
    assert caps
    for c in caps:
        assert peak_kw([d for d in draws if d.site_id in c.sites], c.start_s, c.end_s) <= (
            c.limit_kw + 1e-6
        )
    # Work submitted afterwards is planned under the caps too.
    for n in range(6):
        body = {"name": f"late-{n}", "accelerators": 8, "duration_h": 4.0}
        client.post("/v1/jobs", json=body, headers=tenant)
    loop.plan_queued()
    caps, draws = gridops.power_limits(st.repo, loop.planner, now_s(), start + 4 * H)
    for c in caps:
        assert peak_kw([d for d in draws if d.site_id in c.sites], c.start_s, c.end_s) <= (
            c.limit_kw + 1e-6
        )
    # Audited: the event by the grid operator, each moved job by the system.
    log = client.get(f"/v1/audit?object_id={doc['id']}", headers=auth(ADMIN)).json()
    assert [e["action"] for e in log] == ["grid_event.create"]
    assert log[0]["actor"] == doc["created_by"]
    moved = [a for a in affected if a["action"] in ("deferred", "moved", "advanced")]
    if moved:
        jl = client.get(f"/v1/audit?object_id={moved[0]['job_id']}", headers=auth(ADMIN)).json()
        assert "job.grid_event" in [e["action"] for e in jl]
    # The report: the commitment, and nothing delivered before the event runs.
    rep = client.get(f"/v1/grid-events/{doc['id']}", headers=grid).json()
    assert rep["answer"]["affected"] == answer["affected"]
    assert [{k: h[k] for k in answer["hours"][0]} for h in rep["answer"]["hours"]] == answer[
        "hours"
    ]
    assert rep["delivered"]["kind"].startswith("delivered")
    assert all(h["delivered_kw"] is None for h in rep["delivered"]["hours"])


def test_running_work_is_paused_at_the_event_start_and_planned_again(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = auth(token(client, "acme", "tenant"))
    grid = auth(token(client, "grid", "grid-operator"))
    t = now_s()
    body = {
        "name": "urgent-but-flexible",
        "accelerators": 8,
        "duration_h": 4.0,
        "deadline_s": t + 30 * H,
        "flex_class": 3,
        "checkpointable": True,
    }
    job = client.post("/v1/jobs", json=body, headers=tenant).json()
    loop = loop_of(client)
    loop.plan_queued()
    placed = client.get(f"/v1/jobs/{job['id']}", headers=tenant).json()
    assert placed["state"] == "placed"
    # Its executor started it ten minutes ago (as the dispatcher records a start).
    st = client.app.state.service  # type: ignore[attr-defined]
    run = placed["end_s"] - placed["start_s"]
    st.repo.set_fields(job["id"], start_s=t - 600, end_s=t - 600 + run)
    assert st.repo.transition(job["id"], "running", run_started_s=t - 600)
    now = client.get(f"/v1/jobs/{job['id']}", headers=tenant).json()
    start = t + 1800
    ev = {"site": now["site_id"], "start_s": start, "end_s": start + 2 * H, "target_pct": 50}
    doc = client.post("/v1/grid-events", json=ev, headers=grid).json()
    (a,) = doc["answer"]["affected"]
    assert a["job_id"] == job["id"] and a["action"] in ("paused", "moved")
    assert a["paused_at_s"] == start
    assert doc["pauses"] == [[job["id"], start, False]]
    # Before its stop it keeps running; at its stop the loop pauses it.
    loop.grid_pauses()
    assert client.get(f"/v1/jobs/{job['id']}", headers=tenant).json()["state"] == "running"
    monkeypatch.setattr(gridops, "now_s", lambda: start + 5)
    loop.grid_pauses()
    after = client.get(f"/v1/jobs/{job['id']}", headers=tenant).json()
    assert after["state"] == "submitted" and "grid event" in after["message"]
    states = [
        (e["detail"]["old"], e["detail"]["new"])
        for e in client.get(f"/v1/audit?object_id={job['id']}", headers=auth(ADMIN)).json()
        if e["action"] == "job.state"
    ]
    assert ("running", "checkpointed") in states and ("checkpointed", "submitted") in states
    rep = client.get(f"/v1/grid-events/{doc['id']}", headers=grid).json()
    assert rep["pauses"] == [[job["id"], start, True]]
