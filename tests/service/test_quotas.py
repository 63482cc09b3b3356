"""Quotas and priority classes in the service: the admin API sets them (audited), a tenant
can neither set quotas nor see another tenant's, submissions name a priority class, and
the live loop admits within quotas, audits each denial once and carries out preemptions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.service.conftest import ADMIN
from tests.service.test_api import auth, make_client, tenant

from computenet.control.loop import ControlLoop
from computenet.settings import Settings
from computenet.store.repository import JobSpec, Principal, Repository, migrate, now_s, open_engine

QUOTA = {"nominal": {"A100": 8}, "borrowing_limit": {"A100": 4}, "weight": 2.0}


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with make_client(db_url, tmp_path) as c:
        yield c


def _id_of(client: TestClient, name: str) -> str:
    listing = client.get("/v1/tenants", headers=auth(ADMIN)).json()
    return next(t["id"] for t in listing if t["name"] == name)


def test_admin_sets_a_quota_and_the_tenant_reads_its_own(client: TestClient) -> None:
    tok = tenant(client, "acme")
    acme = _id_of(client, "acme")
    r = client.put(f"/v1/admin/quotas/{acme}", json=QUOTA, headers=auth(ADMIN))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["nominal"] == {"A100": 8} and body["borrowing_limit"] == {"A100": 4}
    assert body["weight"] == 2.0 and body["usage"] == {}
    mine = client.get("/v1/quotas", headers=auth(tok)).json()
    assert [q["tenant_id"] for q in mine] == [acme]
    assert client.get(f"/v1/quotas/{acme}", headers=auth(tok)).status_code == 200
    log = client.get("/v1/audit", params={"object_id": acme}, headers=auth(ADMIN)).json()
    assert "quota.set" in [e["action"] for e in log]
    assert client.delete(f"/v1/admin/quotas/{acme}", headers=auth(ADMIN)).status_code == 204
    assert client.get("/v1/quotas", headers=auth(tok)).json() == []


def test_a_tenant_cannot_set_quotas_nor_see_another_tenants_usage(client: TestClient) -> None:
    tok = tenant(client, "acme")
    tenant(client, "rival")
    acme, rival = _id_of(client, "acme"), _id_of(client, "rival")
    for who in (acme, rival):
        assert client.put(f"/v1/admin/quotas/{who}", json=QUOTA, headers=auth(ADMIN)).is_success
    # Setting, even its own, is for admins.
    r = client.put(f"/v1/admin/quotas/{acme}", json=QUOTA, headers=auth(tok))
    assert r.status_code == 403
    assert client.delete(f"/v1/admin/quotas/{rival}", headers=auth(tok)).status_code == 403
    assert client.get("/v1/admin/quotas", headers=auth(tok)).status_code == 403
    # Another tenant's quota and usage are not visible at all.
    assert client.get(f"/v1/quotas/{rival}", headers=auth(tok)).status_code == 404
    assert [q["tenant_id"] for q in client.get("/v1/quotas", headers=auth(tok)).json()] == [acme]
    everyone = client.get("/v1/admin/quotas", headers=auth(ADMIN)).json()
    assert sorted(q["tenant_id"] for q in everyone) == sorted([acme, rival])
    # A provider is not an admin either.
    prov = tenant(client, "grid", role="provider")
    assert client.put(f"/v1/admin/quotas/{acme}", json=QUOTA, headers=auth(prov)).status_code == 403


def test_bad_quotas_are_refused_naming_the_field(client: TestClient) -> None:
    tenant(client, "acme")
    acme = _id_of(client, "acme")
    for bad, field in (
        ({"nominal": {"A100": -1}}, "nominal"),
        ({"nominal": {"A100": 1}, "weight": 0}, "weight"),
        ({"nominal": {"A100": 1}, "extra": 1}, "extra"),
    ):
        r = client.put(f"/v1/admin/quotas/{acme}", json=bad, headers=auth(ADMIN))
        assert r.status_code == 422 and field in r.text, r.text
    r = client.put("/v1/admin/quotas/t_nobody", json=QUOTA, headers=auth(ADMIN))
    assert r.status_code == 404


def test_priority_classes_name_a_priority_and_only_admins_define_them(client: TestClient) -> None:
    tok = tenant(client, "acme")
    classes = client.get("/v1/priority-classes", headers=auth(tok)).json()
    assert [c["name"] for c in classes] == ["low", "normal", "high"]
    job = {"name": "j", "accelerators": 1, "duration_h": 1.0, "priority_class": "high"}
    r = client.post("/v1/jobs", json=job, headers=auth(tok))
    assert r.status_code == 201 and r.json()["priority"] == 1000
    r = client.post("/v1/jobs", json=job | {"priority_class": "urgent"}, headers=auth(tok))
    assert r.status_code == 422 and "priority_class" in r.text and "high" in r.text
    r = client.post("/v1/jobs", json=job | {"priority": 5}, headers=auth(tok))
    assert r.status_code == 422 and "disagree" in r.text
    put = client.put("/v1/admin/priority-classes/urgent", json={"priority": 900}, headers=auth(tok))
    assert put.status_code == 403
    put = client.put(
        "/v1/admin/priority-classes/urgent", json={"priority": 900}, headers=auth(ADMIN)
    )
    assert put.status_code == 200
    r = client.post("/v1/jobs", json=job | {"priority_class": "urgent"}, headers=auth(tok))
    assert r.status_code == 201 and r.json()["priority"] == 900


# -- the live loop ----------------------------------------------------------------------


@pytest.fixture
def repo(db_url: str) -> Repository:
    engine = open_engine(db_url)
    migrate(engine)
    r = Repository(engine)
    r.ensure_admin_token(ADMIN)
    return r


@pytest.fixture
def acme(repo: Repository) -> Principal:
    tid, _ = repo.create_tenant("acme", "tenant", "t_admin")
    return Principal(tid, "tenant")


@pytest.fixture(scope="module")
def china() -> object:
    catalog = pytest.importorskip("computenet.catalog")
    return catalog.load_network("china")


def _loop(repo: Repository, home: Path, network: object, policy: str) -> ControlLoop:
    s = Settings(db_url="unused", home=home, run_loop=False, executor="local", policy=policy)
    return ControlLoop(repo, s, network=network)


def _submit(repo: Repository, who: Principal, spec: JobSpec) -> str:
    job, created = repo.submit_batch([(who, spec, None)])[0]
    assert created
    return str(job["id"])


def _audit(repo: Repository, job_id: str) -> list[str]:
    rows = repo.audit(Principal("t_admin", "admin"), object_id=job_id, limit=100, offset=0)
    return [r["action"] for r in rows]


def test_the_loop_admits_within_the_quota_and_audits_a_denial_once(
    repo: Repository, acme: Principal, tmp_path: Path, china: object
) -> None:
    repo.set_quota(acme.tenant_id, {"A100": 2}, {}, 1.0, "t_admin")
    ids = [
        _submit(repo, acme, JobSpec(f"j{i}", 1, 2.0, accelerator_types=("A100",))) for i in range(3)
    ]
    loop = _loop(repo, tmp_path, china, "quota-fifo")
    loop.plan_queued()
    loop.plan_queued()
    jobs = {i: repo.get_job(acme, i) for i in ids}
    assert sorted(j["state"] for j in jobs.values()) == ["placed", "placed", "submitted"]
    (waiting,) = [j for j in jobs.values() if j["state"] == "submitted"]
    assert waiting["message"].startswith("waiting: quota: tenant ")
    assert _audit(repo, waiting["id"]).count("job.quota_wait") == 1
    assert repo.quotas(acme)[0]["usage"] == {"A100": 2}


def test_the_loop_preempts_checkpointable_low_priority_work_for_an_urgent_job(
    repo: Repository, acme: Principal, tmp_path: Path, china: object
) -> None:
    keep = "guian"
    for site in china.sites:  # type: ignore[attr-defined]
        caps = {
            p.accelerator: (4 if site.id == keep and p.accelerator == "A100" else 0)
            for p in site.pools
        }
        repo.put_site_feed("t_op", site.id, capacity=caps)
    repo.set_quota(acme.tenant_id, {"A100": 8}, {}, 1.0, "t_admin")
    loop = _loop(repo, tmp_path, china, "fair-share")
    low = _submit(
        repo,
        acme,
        # Due soon after its run, so it starts now whatever the hour's prices (a job with
        # days of slack would wait for cheap hours and leave room for the urgent one).
        JobSpec(
            "low",
            4,
            10.0,
            deadline_s=now_s() + int(10.2 * 3600),
            accelerator_types=("A100",),
            checkpointable=True,
            priority=0,
        ),
    )
    loop.plan_queued()
    placed = repo.get_job(acme, low)
    assert placed["state"] == "placed" and placed["start_s"] <= now_s() + 900
    urgent = _submit(
        repo,
        acme,
        JobSpec(
            "urgent", 4, 0.5, deadline_s=now_s() + 3600, accelerator_types=("A100",), priority=1000
        ),
    )
    loop.plan_queued()
    got = repo.get_job(acme, urgent)
    assert got["state"] == "placed" and got["site_id"] == keep
    victim = repo.get_job(acme, low)
    assert victim["state"] == "submitted" and victim["message"].startswith("preempted: by ")
    assert "job.preempt" in _audit(repo, low)
