"""The REST API on SQLite and PostgreSQL: jobs, idempotency, isolation, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.service.conftest import ADMIN

from computenet.api.app import create_app
from computenet.settings import Settings


def make_client(db_url: str, home: Path, **kw: object) -> TestClient:
    settings = Settings(db_url=db_url, home=home, admin_token=ADMIN, run_loop=False, **kw)
    return TestClient(create_app(settings))


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with make_client(db_url, tmp_path) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tenant(client: TestClient, name: str, role: str = "tenant", sites: tuple[str, ...] = ()) -> str:
    body = {"name": name, "role": role} | ({"sites": list(sites)} if sites else {})
    r = client.post("/v1/tenants", json=body, headers=auth(ADMIN))
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "token"}
    return str(body["token"])


MINIMAL = {"name": "train", "accelerators": 1, "duration_h": 2.0}


def test_submit_minimal_then_read(client: TestClient) -> None:
    tok = tenant(client, "acme")
    r = client.post("/v1/jobs", json=MINIMAL, headers=auth(tok))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "submitted" and job["priority"] == 0 and job["command"] is None
    got = client.get(f"/v1/jobs/{job['id']}", headers=auth(tok)).json()
    assert got == job
    assert client.get("/healthz").json()["status"] == "ok"


def test_idempotency_key_returns_same_job(client: TestClient) -> None:
    tok = tenant(client, "acme")
    h = auth(tok) | {"Idempotency-Key": "abc-1"}
    first = client.post("/v1/jobs", json=MINIMAL, headers=h)
    again = client.post("/v1/jobs", json=MINIMAL, headers=h)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert client.get("/v1/jobs", headers=auth(tok)).json()["total"] == 1
    # The key is per tenant: another tenant's same key is a different job.
    other = client.post(
        "/v1/jobs", json=MINIMAL, headers=auth(tenant(client, "b")) | {"Idempotency-Key": "abc-1"}
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_without_group_commit_each_submission_is_durable_and_idempotent(
    db_url: str, tmp_path: Path
) -> None:
    with make_client(db_url, tmp_path, group_commit=False) as c:
        tok = tenant(c, "acme")
        h = auth(tok) | {"Idempotency-Key": "k-1"}
        first, again = (c.post("/v1/jobs", json=MINIMAL, headers=h) for _ in range(2))
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        assert c.app.state.service.batcher._queue is None  # type: ignore[attr-defined]
    with make_client(db_url, tmp_path) as c:  # what was acknowledged is in the database
        assert c.get("/v1/jobs", headers=auth(tok)).json()["total"] == 1


def test_tenant_isolation(client: TestClient) -> None:
    a, b = tenant(client, "a"), tenant(client, "b")
    job = client.post("/v1/jobs", json=MINIMAL, headers=auth(a)).json()
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("GET", f"/v1/jobs/{job['id']}/placement"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
    ]:
        r = client.request(method, path, headers=auth(b))
        assert r.status_code == 404, (method, path, r.text)
    assert client.get("/v1/jobs", headers=auth(b)).json()["total"] == 0
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth(a)).json()["state"] == "submitted"
    # The admin sees everything.
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth(ADMIN)).status_code == 200


def test_list_filters_and_pages(client: TestClient) -> None:
    tok = tenant(client, "acme")
    ids = [
        client.post("/v1/jobs", json=MINIMAL | {"name": f"j{i}"}, headers=auth(tok)).json()["id"]
        for i in range(5)
    ]
    client.post(f"/v1/jobs/{ids[0]}/cancel", headers=auth(tok))
    page = client.get("/v1/jobs?limit=2&offset=0", headers=auth(tok)).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    rest = client.get("/v1/jobs?limit=10&offset=2", headers=auth(tok)).json()["items"]
    assert {j["id"] for j in page["items"]} | {j["id"] for j in rest} == set(ids)
    cancelled = client.get("/v1/jobs?state=cancelled", headers=auth(tok)).json()
    assert [j["id"] for j in cancelled["items"]] == [ids[0]]
    assert client.get("/v1/jobs?name=j3", headers=auth(tok)).json()["total"] == 1


def test_cancel_and_audit(client: TestClient) -> None:
    tok = tenant(client, "acme")
    job = client.post("/v1/jobs", json=MINIMAL, headers=auth(tok)).json()
    r = client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(tok))
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(tok)).status_code == 200
    log = client.get(f"/v1/audit?object_id={job['id']}", headers=auth(ADMIN)).json()
    actions = [(e["action"], e["detail"].get("new")) for e in reversed(log)]
    assert actions == [("job.submit", None), ("job.state", "cancelled")]
    assert all(e["actor"] != "system" and e["at_s"] > 0 for e in log)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"accelerators": 0}, "accelerators"),
        ({"duration_h": -1}, "duration_h"),
        ({"name": ""}, "name"),
        ({"priority": "high"}, "priority"),
        ({"bogus": 1}, "bogus"),
        ({"name": "a\x00b"}, "name"),
        ({"command": "echo \x00"}, "command"),
        ({"accelerator_types": ["H100\x07"]}, "accelerator_types.0"),
    ],
)
def test_bad_field_is_422_naming_it(client: TestClient, patch: dict, field: str) -> None:
    tok = tenant(client, "acme")
    r = client.post("/v1/jobs", json=MINIMAL | patch, headers=auth(tok))
    assert r.status_code == 422
    assert field in [f["field"] for f in r.json()["fields"]]


def test_auth_roles_and_unknown_ids(client: TestClient) -> None:
    assert client.post("/v1/jobs", json=MINIMAL).status_code == 401
    assert client.get("/v1/jobs", headers=auth("cn_wrong")).status_code == 401
    tok = tenant(client, "acme")
    r = client.post("/v1/tenants", json={"name": "x"}, headers=auth(tok))
    assert r.status_code == 403
    assert client.get("/v1/jobs/j_nope", headers=auth(tok)).status_code == 404
    assert client.post("/v1/tenants", json={"name": "acme"}, headers=auth(ADMIN)).status_code == 409


def test_oversized_body_is_413(client: TestClient) -> None:
    tok = tenant(client, "acme")
    r = client.post("/v1/jobs", json=MINIMAL | {"command": "x" * 100_000}, headers=auth(tok))
    assert r.status_code == 413


def test_rate_limit_is_429(db_url: str, tmp_path: Path) -> None:
    with make_client(db_url, tmp_path, rate_per_s=0.001, rate_burst=3) as c:
        tok = tenant(c, "acme")
        codes = [c.get("/v1/jobs", headers=auth(tok)).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


def test_unknown_tokens_are_rate_limited_per_address(db_url: str, tmp_path: Path) -> None:
    with make_client(db_url, tmp_path, auth_fail_per_s=0.001, auth_fail_burst=3) as c:
        tok = tenant(c, "acme")
        assert c.get("/v1/jobs", headers=auth(tok)).status_code == 200
        codes = [c.get("/v1/jobs", headers=auth(f"cn_guess{i}")).status_code for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        assert "unknown tokens" in c.get("/v1/jobs", headers=auth("cn_x")).json()["detail"]
        # A token the service knows is still served (no lookup needed).
        assert c.get("/v1/jobs", headers=auth(tok)).status_code == 200


def test_tokens_stored_only_as_hashes(db_url: str, tmp_path: Path) -> None:
    with make_client(db_url, tmp_path) as c:
        tok = tenant(c, "acme")
        repo = c.app.state.service.repo  # type: ignore[attr-defined]
        from sqlalchemy import text

        with repo.engine.connect() as conn:
            stored = [r[0] for r in conn.execute(text("SELECT token_sha256 FROM tokens"))]
    assert tok not in stored and ADMIN not in stored
    import hashlib

    assert hashlib.sha256(tok.encode()).hexdigest() in stored


def test_metrics(client: TestClient) -> None:
    tok = tenant(client, "acme")
    client.post("/v1/jobs", json=MINIMAL, headers=auth(tok))
    job = client.post("/v1/jobs", json=MINIMAL, headers=auth(tok)).json()
    text = client.get("/metrics").text
    assert 'computenet_jobs{state="submitted"} 2.0' in text
    assert 'computenet_http_requests_total{method="POST",status="201"}' in text
    client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(tok))
    client.post(f"/v1/jobs/{job['id'].replace('j_', 'j_x')}/cancel", headers=auth(tok))
    text = client.get("/metrics").text
    assert 'computenet_jobs{state="submitted"} 1.0' in text
    assert 'computenet_jobs{state="cancelled"} 1.0' in text
    assert 'computenet_jobs{state="running"} 0.0' in text
    assert 'computenet_http_requests_total{method="POST",status="404"} 1.0' in text


def test_datasets_are_per_tenant_and_checked(client: TestClient) -> None:
    a, b = tenant(client, "a"), tenant(client, "b")
    body = {"name": "scans", "size_gb": 120.0, "home_site": "guian", "classification": "important"}
    r = client.post("/v1/datasets", json=body, headers=auth(a))
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["classification"] == "important" and ds["export_cleared"] is False
    assert client.get(f"/v1/datasets/{ds['id']}", headers=auth(a)).json() == ds
    assert client.get(f"/v1/datasets/{ds['id']}", headers=auth(b)).status_code == 404
    assert client.get("/v1/datasets", headers=auth(b)).json()["total"] == 0
    # b cannot use a's dataset: the job is refused naming the field.
    r = client.post("/v1/jobs", json=MINIMAL | {"datasets": [ds["id"]]}, headers=auth(b))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "datasets"
    r = client.post("/v1/jobs", json=MINIMAL | {"datasets": [ds["id"]]}, headers=auth(a))
    assert r.status_code == 201 and r.json()["datasets"] == [ds["id"]]
    bad = client.post("/v1/datasets", json=body | {"home_site": "atlantis"}, headers=auth(a))
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "home_site"
    bad = client.post("/v1/datasets", json=body | {"classification": "secret"}, headers=auth(a))
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "classification"
    log = client.get(f"/v1/audit?object_id={ds['id']}", headers=auth(ADMIN)).json()
    assert [e["action"] for e in log] == ["dataset.create"]


def test_unknown_accelerator_type_is_422_listing_the_valid(client: TestClient) -> None:
    tok = tenant(client, "acme")
    r = client.post("/v1/jobs", json=MINIMAL | {"accelerator_types": ["TPUv9"]}, headers=auth(tok))
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "accelerator_types" and "A100" in r.json()["detail"]
    ok = client.post("/v1/jobs", json=MINIMAL | {"accelerator_types": ["H20"]}, headers=auth(tok))
    assert ok.status_code == 201 and ok.json()["accelerator_types"] == ["H20"]


def test_sites_and_posted_feeds(client: TestClient) -> None:
    tok = tenant(client, "acme")
    prov = tenant(client, "gridco", role="provider", sites=("guian",))
    sites = client.get("/v1/sites", headers=auth(tok)).json()
    guian = next(s for s in sites if s["id"] == "guian")
    assert guian["accelerators"] == {"A100": 128, "H20": 128} and guian["feed"] is None
    # The catalog's sites are simulated unless the operator runs them with `--executor local`.
    assert guian["executor"] == "simulated" and guian["price_cny_per_kwh_now"] > 0
    assert guian["capabilities"]["runs_commands"] is False
    t0 = (int(time.time()) // 3600 - 1) * 3600
    feed = {
        "capacity": {"A100": 16},
        "price_cny_per_kwh": {"start_s": t0, "step_s": 3600, "values": [0.11, 0.12, 0.13]},
        "carbon_g_per_kwh": {"start_s": t0, "values": [100.0, 90.0, 80.0]},
    }
    assert client.put("/v1/sites/guian/signals", json=feed, headers=auth(tok)).status_code == 403
    r = client.put("/v1/sites/guian/signals", json=feed, headers=auth(prov))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["accelerators"] == {"A100": 16, "H20": 128}
    assert got["price_cny_per_kwh_now"] == 0.12 and got["carbon_g_per_kwh_now"] == 90.0
    assert got["feed"]["updated_by"] != "system"
    # Leaving a field out keeps it; null returns it to the catalog's value.
    r = client.put("/v1/sites/guian/signals", json={"capacity": None}, headers=auth(prov))
    assert r.json()["accelerators"] == {"A100": 128, "H20": 128}
    assert r.json()["price_cny_per_kwh_now"] == 0.12
    bad = client.put("/v1/sites/guian/signals", json={"capacity": {"X1": 3}}, headers=auth(prov))
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "capacity"
    nan = {"price_cny_per_kwh": {"start_s": t0, "values": ["NaN"]}}
    assert client.put("/v1/sites/guian/signals", json=nan, headers=auth(prov)).status_code == 422
    neg = {"carbon_g_per_kwh": {"start_s": t0, "values": [100.0, -1.0]}}
    r = client.put("/v1/sites/guian/signals", json=neg, headers=auth(prov))
    assert r.status_code == 422 and "carbon_g_per_kwh.values[1]" in r.text, r.text
    assert client.put("/v1/sites/mars/signals", json={}, headers=auth(prov)).status_code == 404
    assert client.get("/v1/sites/mars", headers=auth(tok)).status_code == 404
    log = client.get("/v1/audit?object_id=guian", headers=auth(ADMIN)).json()
    assert [e["action"] for e in log] == ["site.feed", "site.feed"]


def test_a_provider_posts_only_for_its_own_sites(client: TestClient) -> None:
    """Crossing the boundary: a provider posting for another provider's site (or for a site
    nobody bound to it) is refused and changes nothing; an admin rebinds."""
    own = tenant(client, "gridco", role="provider", sites=("guian", "horinger"))
    other = tenant(client, "cloudco", role="provider", sites=("shaoguan",))
    t0 = (int(time.time()) // 3600) * 3600
    cheap = {"price_cny_per_kwh": {"start_s": t0, "values": [0.01]}, "capacity": {"A100": 9999}}
    r = client.put("/v1/sites/shaoguan/signals", json=cheap, headers=auth(own))
    assert r.status_code == 403 and "not one of this provider's sites" in r.text
    assert client.get("/v1/sites/shaoguan", headers=auth(own)).json()["feed"] is None
    assert client.put("/v1/sites/guian/signals", json=cheap, headers=auth(other)).status_code == 403
    assert client.put("/v1/sites/guian/signals", json=cheap, headers=auth(own)).status_code == 200
    assert client.put("/v1/sites/wuhu/signals", json=cheap, headers=auth(ADMIN)).status_code == 200
    # Only an admin binds sites; a provider cannot give itself more.
    listing = client.get("/v1/tenants", headers=auth(ADMIN)).json()
    gridco = next(t for t in listing if t["name"] == "gridco")
    assert gridco["sites"] == ["guian", "horinger"]
    grab = {"sites": ["guian", "horinger", "shaoguan"]}
    url = f"/v1/tenants/{gridco['id']}/sites"
    assert client.put(url, json=grab, headers=auth(own)).status_code == 403
    r = client.put(url, json={"sites": ["horinger"]}, headers=auth(ADMIN))
    assert r.status_code == 200 and r.json()["sites"] == ["horinger"]
    assert client.put("/v1/sites/guian/signals", json=cheap, headers=auth(own)).status_code == 403
    bad = client.put(url, json={"sites": ["atlantis"]}, headers=auth(ADMIN))
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "sites[0]"
    acme = tenant(client, "acme")
    acme_id = next(
        t["id"]
        for t in client.get("/v1/tenants", headers=auth(ADMIN)).json()
        if t["name"] == "acme"
    )
    r = client.put(f"/v1/tenants/{acme_id}/sites", json={"sites": ["guian"]}, headers=auth(ADMIN))
    assert r.status_code == 422 and "not a provider" in r.text
    assert client.get("/v1/tenants", headers=auth(acme)).status_code == 403
    log = client.get(f"/v1/audit?object_id={gridco['id']}", headers=auth(ADMIN)).json()
    assert log[0]["action"] == "provider.sites" and log[0]["detail"]["unbound"] == ["guian"]


def test_checkpointable_jobs_and_their_interval(client: TestClient) -> None:
    tok = tenant(client, "acme")
    body = MINIMAL | {"checkpointable": True, "checkpoint_interval_s": 600}
    job = client.post("/v1/jobs", json=body, headers=auth(tok)).json()
    assert job["checkpointable"] is True and job["checkpoint_interval_s"] == 600
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth(tok)).json() == job
    plain = client.post("/v1/jobs", json=MINIMAL, headers=auth(tok)).json()
    assert plain["checkpointable"] is False and plain["checkpoint_interval_s"] is None
    r = client.post("/v1/jobs", json=MINIMAL | {"checkpoint_interval_s": 600}, headers=auth(tok))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "checkpoint_interval_s"
    assert "checkpointable" in r.json()["fields"][0]["reason"]
    r = client.post("/v1/jobs", json=body | {"checkpoint_interval_s": 5}, headers=auth(tok))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "checkpoint_interval_s"
