"""The engine's structured reasons stored with each job, on SQLite and PostgreSQL: the API
answers them (``/v1/jobs/{id}/explain`` and ``reasons`` on the job), they survive a restart
of the app on the same database, and another tenant cannot read them."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from tests.service.conftest import ADMIN

from computenet.api.app import create_app
from computenet.control.loop import ControlLoop
from computenet.engine import reasons
from computenet.settings import Settings
from computenet.store.repository import now_s


def _settings(db_url: str, home: Path) -> Settings:
    return Settings(db_url=db_url, home=home, admin_token=ADMIN, run_loop=False)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tenant(client: TestClient, name: str) -> str:
    r = client.post("/v1/tenants", json={"name": name}, headers=_auth(ADMIN))
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_reasons_are_stored_with_the_job_and_survive_a_restart(db_url: str, tmp_path: Path) -> None:
    s = _settings(db_url, tmp_path)
    with TestClient(create_app(s)) as client:
        h = _auth(_tenant(client, "acme"))
        ds = client.post(
            "/v1/datasets",
            json={
                "name": "records",
                "size_gb": 10,
                "home_site": "shaoguan",
                "classification": "core",
            },
            headers=h,
        ).json()
        deadline = now_s() + 2 * 86400
        body = {"name": "core", "accelerators": 4, "duration_h": 2.0, "deadline_s": deadline}
        core = client.post("/v1/jobs", json=body | {"datasets": [ds["id"]]}, headers=h).json()
        assert core["reasons"] == []  # not planned yet
        huge = client.post(
            "/v1/jobs", json={"name": "huge", "accelerators": 100_000, "duration_h": 1}, headers=h
        ).json()
        st = client.app.state.service  # type: ignore[attr-defined]
        ControlLoop(st.repo, s, network=st.network, executors=st.executors).plan_queued()
        before = {
            j: client.get(f"/v1/jobs/{j}/explain", headers=h).json()
            for j in (core["id"], huge["id"])
        }
        job = client.get(f"/v1/jobs/{core['id']}", headers=h).json()
        listed = client.get("/v1/jobs", headers=h).json()["items"]
        other = _auth(_tenant(client, "other"))
        assert client.get(f"/v1/jobs/{core['id']}/explain", headers=other).status_code == 404

    placed = before[core["id"]]
    assert job["state"] == "placed" and job["site_id"] == "shaoguan"
    assert (
        job["reasons"] == placed and {j["id"]: j["reasons"] for j in listed}[core["id"]] == placed
    )
    assert placed[0]["role"] == "placed" and placed[0]["code"] == "cost"
    assert placed[0]["site_id"] == "shaoguan" and placed[0]["objective_cny"] > 0
    rules = [r for r in placed if r["code"] == "data_rule"]
    assert rules and all(r["role"] == "rejected" for r in rules)
    assert rules[0]["classification"] == "core" and rules[0]["dataset_id"] == ds["id"]
    assert rules[0]["message"].startswith(f"violates data rule: core data {ds['id']} may not")
    assert before[huge["id"]] == [
        {
            "code": "gang",
            "role": "infeasible",
            "message": before[huge["id"]][0]["message"],
            "detail": before[huge["id"]][0]["message"],
        }
    ]
    # Each list is in the one deterministic order, and renders the same from its codes.
    for listed_reasons in before.values():
        keys = [
            reasons.sort_key(r)
            for r in (reasons.from_json(d) for d in listed_reasons)
            if r is not None
        ]
        assert keys == sorted(keys)
        assert reasons.rendered(reversed(listed_reasons)) == listed_reasons

    # A restart: a new app on the same database reads the same reasons back.
    with TestClient(create_app(s)) as client:
        h = _auth(_tenant(client, "acme2"))  # tokens are per tenant; read as admin instead
        for job_id, was in before.items():
            got = client.get(f"/v1/jobs/{job_id}/explain", headers=_auth(ADMIN))
            assert got.status_code == 200 and got.json() == was
            assert (
                client.get(f"/v1/jobs/{job_id}/placement", headers=_auth(ADMIN)).json()["reasons"]
                == was
            )
        assert client.get(f"/v1/jobs/{core['id']}/explain", headers=h).status_code == 404


def test_a_job_waiting_for_down_sites_says_so(db_url: str, tmp_path: Path) -> None:
    """Core data at a site that is down: the job waits, with a ``site_down`` reason."""
    s = _settings(db_url, tmp_path)
    with TestClient(create_app(s)) as client:
        h = _auth(_tenant(client, "acme"))
        ds = client.post(
            "/v1/datasets",
            json={"name": "r", "size_gb": 1, "home_site": "shaoguan", "classification": "core"},
            headers=h,
        ).json()
        body = {"name": "w", "accelerators": 1, "duration_h": 1.0, "datasets": [ds["id"]]}
        job = client.post("/v1/jobs", json=body, headers=h).json()
        st = client.app.state.service  # type: ignore[attr-defined]
        loop = ControlLoop(st.repo, s, network=st.network, executors=st.executors)
        rows = st.repo.claim("t", ["submitted"], 30, limit=10)
        decisions = loop.planner.plan(rows, frozenset({"shaoguan"}))
        state, fields = decisions[job["id"]]
        assert state is None
        st.repo.set_fields(job["id"], **fields)
        got = client.get(f"/v1/jobs/{job['id']}/explain", headers=h).json()
    assert [(r["code"], r["role"], r["sites"]) for r in got] == [
        ("site_down", "deferred", ["shaoguan"])
    ]
    assert got[0]["message"] == "waiting: the sites it may use are down (shaoguan)"
