"""The dashboard's JSON (/web/api) on SQLite and PostgreSQL: what each role sees, the jobs
table's filters and pages, and that a tenant's jobs never reach another tenant's page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.service.conftest import ADMIN

from computenet.api.app import create_app
from computenet.settings import Settings
from computenet.store.repository import Repository, now_s

JOB = {"name": "train", "accelerators": 4, "duration_h": 2.0}


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(db_url=db_url, home=tmp_path, admin_token=ADMIN, run_loop=False)
    with TestClient(create_app(settings)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tenant(client: TestClient, name: str, role: str = "tenant", sites: tuple[str, ...] = ()) -> str:
    body = {"name": name, "role": role} | ({"sites": list(sites)} if sites else {})
    r = client.post("/v1/tenants", json=body, headers=auth(ADMIN))
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def repo(client: TestClient) -> Repository:
    return client.app.state.service.repo  # type: ignore[attr-defined,no-any-return]


def place(
    client: TestClient,
    job_id: str,
    site: str,
    cost: float,
    carbon: float,
    transfers: list[dict[str, Any]] | None = None,
) -> None:
    """Mark a job placed as the loop would, with a placement explanation."""
    start = now_s() + 600
    explanation = {
        "policy": "greedy",
        "reason": f"greedy: {site} in 0.2 h",
        "breakdown": {
            "energy_kwh": 10.0,
            "energy_cost_cny": cost,
            "compute_cost_cny": 0.0,
            "transfer_cost_cny": 0.0,
            "carbon_kg": carbon,
            "objective_cny": cost + carbon,
            "cost_cny": cost,
        },
        "transfers": transfers or [],
        "alternatives": [
            {"site_id": "tianfu", "start_s": start, "objective_cny": cost + 9, "reason": "x"}
        ],
    }
    moved = repo(client).transition(
        job_id,
        "placed",
        site_id=site,
        accelerator="A100",
        start_s=start,
        end_s=start + 7200,
        explanation=explanation,
    )
    assert moved


def submit(client: TestClient, token: str, name: str) -> str:
    r = client.post("/v1/jobs", json=JOB | {"name": name}, headers=auth(token))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def get(client: TestClient, path: str, token: str, status: int = 200) -> Any:
    r = client.get(path, headers=auth(token))
    assert r.status_code == status, (path, r.text)
    return r.json()


def test_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="signin-form"' in page.text
    for name in ("app.js", "reasons.js", "vendor/echarts.min.js", "vendor/china.json"):
        r = client.get(f"/dashboard/static/{name}")
        assert r.status_code == 200, f"{name} missing: run `python hatch_build.py`"


def test_every_call_needs_a_token(client: TestClient) -> None:
    for path in ("/web/api/me", "/web/api/jobs", "/web/api/network", "/web/api/totals"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=auth("cn_wrong")).status_code == 401, path


def test_a_tenant_never_sees_another_tenants_job(client: TestClient) -> None:
    a, b = tenant(client, "acme"), tenant(client, "globex")
    mine = submit(client, a, "acme-train")
    theirs = submit(client, b, "globex-train")
    place(client, mine, "tianfu", 10.0, 5.0)
    place(client, theirs, "guian", 1000.0, 500.0)
    # The table: only its own, whatever the filters ask for.
    page = get(client, "/web/api/jobs", a)
    assert [j["id"] for j in page["items"]] == [mine] and page["total"] == 1
    b_id = get(client, "/web/api/me", b)["tenant_id"]
    assert get(client, f"/web/api/jobs?tenant={b_id}", a)["total"] == 1  # ignored, not obeyed
    assert get(client, "/web/api/jobs?q=globex", a)["total"] == 0
    # The job page answers exactly as for a job that does not exist.
    missing = get(client, "/web/api/jobs/j_nonexistent", a, 404)
    hidden = get(client, f"/web/api/jobs/{theirs}", a, 404)
    assert json.dumps(hidden).replace(theirs, "X") == json.dumps(missing).replace(
        "j_nonexistent", "X"
    )
    # Live changes, audit search, load on the map and totals hold no trace of it.
    repo(client).transition(theirs, "running")
    assert get(client, "/web/api/changes?since=0", a)["jobs"] == [{"id": mine, "state": "placed"}]
    assert get(client, f"/web/api/audit?q={theirs}", a)["items"] == []
    net = get(client, "/web/api/network?hours=4", a)
    load = {s["id"]: sum(s["load"]) for s in net["sites"]}
    assert load["guian"] == 0 and load["tianfu"] > 0 and net["load_scope"] == "your jobs"
    totals = get(client, "/web/api/totals?days_back=1&days_ahead=1", a)
    assert totals["sum"]["jobs"] == 1 and totals["sum"]["cost_cny"] == pytest.approx(10.0)
    assert get(client, "/web/api/me", a)["tenants"] == [
        {"id": get(client, "/web/api/me", a)["tenant_id"], "name": "acme"}
    ]
    # Nor its datasets.
    body = {"name": "globex-data", "size_gb": 1, "home_site": "guian"}
    assert client.post("/v1/datasets", json=body, headers=auth(b)).status_code == 201
    assert get(client, "/web/api/datasets", a)["items"] == []
    assert [d["name"] for d in get(client, "/web/api/datasets", b)["items"]] == ["globex-data"]
    # The admin sees both.
    assert get(client, "/web/api/jobs", ADMIN)["total"] == 2
    admin_net = get(client, "/web/api/network?hours=4", ADMIN)
    assert sum(next(s for s in admin_net["sites"] if s["id"] == "guian")["load"]) > 0
    assert get(client, f"/web/api/jobs/{theirs}", ADMIN)["state"] == "running"


def test_jobs_table_filters_pages_and_costs(client: TestClient) -> None:
    a = tenant(client, "acme")
    ids = [submit(client, a, f"acme-{i}") for i in range(7)]
    for i in ids[:3]:
        place(client, i, "tianfu", 12.5, 3.0)
    repo(client).cancel_job(repo(client).principal_for(a), ids[6])  # type: ignore[arg-type]
    assert get(client, "/web/api/jobs?state=placed", a)["total"] == 3
    assert get(client, "/web/api/jobs?site=tianfu", a)["total"] == 3
    assert get(client, "/web/api/jobs?state=cancelled", a)["items"][0]["id"] == ids[6]
    assert get(client, "/web/api/jobs?q=acme-4", a)["items"][0]["id"] == ids[4]
    assert get(client, "/web/api/jobs?q=%25", a)["total"] == 0  # a literal %, no wildcard
    first = get(client, "/web/api/jobs?limit=4&offset=0", a)
    rest = get(client, "/web/api/jobs?limit=4&offset=4", a)
    assert first["total"] == 7 and len(first["items"]) == 4 and len(rest["items"]) == 3
    assert {j["id"] for j in first["items"] + rest["items"]} == set(ids)
    placed = get(client, "/web/api/jobs?state=placed", a)["items"][0]
    assert placed["cost_cny"] == pytest.approx(12.5) and placed["carbon_kg"] == pytest.approx(3.0)
    assert placed["tenant_name"] == "acme"
    bad = client.get("/web/api/jobs?state=sleeping", headers=auth(a))
    assert bad.status_code == 422 and "state" in bad.text


def test_job_detail_has_history_and_data_rules(client: TestClient) -> None:
    a = tenant(client, "acme")
    data = client.post(
        "/v1/datasets",
        json={
            "name": "patients",
            "size_gb": 5,
            "home_site": "tianfu",
            "classification": "personal",
            "individuals": 200_000,
        },
        headers=auth(a),
    ).json()
    r = client.post("/v1/jobs", json=JOB | {"datasets": [data["id"]]}, headers=auth(a))
    job_id = r.json()["id"]
    place(client, job_id, "tianfu", 3.0, 1.0)
    job = get(client, f"/web/api/jobs/{job_id}", a)
    assert [e["action"] for e in job["history"]] == ["job.submit", "job.state"]
    assert job["history"][1]["detail"] == {"old": "submitted", "new": "placed"}
    assert job["explanation"]["alternatives"][0]["site_id"] == "tianfu"
    (d,) = job["datasets_detail"]
    # The data it moves is drawn on the map.
    move = {"dataset_id": data["id"], "from_site": "tianfu", "to_site": "guian", "size_gb": 5.0}
    other = submit(client, a, "acme-moves")
    place(client, other, "guian", 3.0, 1.0, transfers=[move])
    moves = get(client, "/web/api/network?hours=2", a)["transfers"]
    assert moves == [dict(move, job_id=other)]
    # 200,000 people, export not cleared: personal data stays in its jurisdiction (PIPL).
    assert d["rule"]["may_go"] == "home jurisdiction" and "PIPL" in d["rule"]["source"]


def test_a_provider_sees_the_sites_it_owns(client: TestClient) -> None:
    bare = tenant(client, "nosites", role="provider")
    assert get(client, "/web/api/network?hours=2", bare)["sites"] == []
    p = tenant(client, "gridco", role="provider", sites=("guian",))
    r = client.put("/v1/sites/guian/signals", json={"capacity": {"A100": 64}}, headers=auth(p))
    assert r.status_code == 200, r.text
    net = get(client, "/web/api/network?hours=2", p)
    assert [s["id"] for s in net["sites"]] == ["guian"]
    assert net["sites"][0]["accelerators"]["A100"] == 64  # the posted capacity
    assert get(client, "/web/api/me", p)["sites"] == ["guian"]
    assert len(get(client, "/web/api/network?hours=2", ADMIN)["sites"]) == 19
    # A tenant's job at its site: the provider sees the load it adds, never the job.
    a = tenant(client, "acme")
    job_id = submit(client, a, "acme-at-guian")
    place(client, job_id, "guian", 5.0, 2.0)
    net = get(client, "/web/api/network?hours=4", p)
    assert sum(net["sites"][0]["load"]) > 0 and net["load_scope"] == "all tenants at your sites"
    assert get(client, "/web/api/totals?days_back=1&days_ahead=1", p)["sum"]["jobs"] == 1
    assert get(client, "/web/api/jobs", p)["total"] == 0
    get(client, f"/web/api/jobs/{job_id}", p, 404)
    assert get(client, f"/web/api/audit?q={job_id}", p)["items"] == []


def test_network_view_has_48_hours_of_signals_and_links(client: TestClient) -> None:
    net = get(client, "/web/api/network", ADMIN)
    assert net["map"] == "china" and net["hours"] == 48 and len(net["sites"]) == 19
    for site in net["sites"]:
        assert len(site["price_cny_per_kwh"]) == len(site["carbon_g_per_kwh"]) == 48
        assert len(site["load"]) == 48 and site["capacity"] > 0 and site["pue"] >= 1
        assert all(v is not None and v > 0 for v in site["price_cny_per_kwh"])
    ids = {s["id"] for s in net["sites"]}
    assert net["links"] and all(
        link["a"] in ids and link["b"] in ids and link["rtt_ms"] > 0 for link in net["links"]
    )


def test_changes_move_the_cursor(client: TestClient) -> None:
    a = tenant(client, "acme")
    start = get(client, "/web/api/changes", a)["cursor"]
    job_id = submit(client, a, "acme-live")
    place(client, job_id, "tianfu", 1.0, 1.0)
    after = get(client, f"/web/api/changes?since={start}", a)
    assert after["jobs"] == [{"id": job_id, "state": "placed"}] and after["cursor"] > start
    assert get(client, f"/web/api/changes?since={after['cursor']}", a)["jobs"] == []
