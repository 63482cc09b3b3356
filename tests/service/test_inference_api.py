"""POST /v1/services and GET /v1/services/{id}/placement: an inference service planned on
the service's network, its plan stored with reasons, tenants kept apart, bad input refused
naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.service.conftest import ADMIN
from tests.service.test_api import auth, make_client, tenant

T0 = 1_688_342_400  # 2023-07-03T00:00:00Z

SERVICE = {
    "name": "chat",
    "ttft_target_ms": 1500,
    "prompt_tokens_mean": 1155,
    "prompt_tokens_p99": 4142,
    "output_tokens_mean": 211,
    "data_class": "personal",
    "start_s": T0,
    "method": "heuristic",
    "demand_rps": {"users-beijing": [20, 30], "users-hong-kong": [5, 8]},
}


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with make_client(db_url, tmp_path) as c:
        yield c


def test_a_service_is_placed_and_its_plan_read_back(client: TestClient) -> None:
    tok = tenant(client, "acme")
    r = client.post("/v1/services", json=SERVICE, headers=auth(tok))
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    plan = client.get(f"/v1/services/{sid}/placement", headers=auth(tok))
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body == r.json()["placement"]
    assert body["placements"] and all(p["reasons"] for p in body["placements"])
    # personal prompts of Hong Kong users are served in Hong Kong only
    for p in body["placements"]:
        if "users-hong-kong" in p["regions"]:
            assert p["site_id"] == "hong-kong"
    assert len(body["placements"][0]["replicas_by_hour"]) == 2
    log = client.get("/v1/audit", params={"object_id": sid}, headers=auth(ADMIN)).json()
    assert "service.create" in [e["action"] for e in log]


def test_another_tenant_cannot_read_a_service(client: TestClient) -> None:
    tok = tenant(client, "acme")
    rival = tenant(client, "rival")
    sid = client.post("/v1/services", json=SERVICE, headers=auth(tok)).json()["id"]
    assert client.get(f"/v1/services/{sid}/placement", headers=auth(rival)).status_code == 404
    assert client.get(f"/v1/services/{sid}", headers=auth(rival)).status_code == 404
    assert client.get(f"/v1/services/{sid}", headers=auth(ADMIN)).status_code == 200
    assert client.post("/v1/services", json=SERVICE).status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ttft_target_ms": 0}, "ttft_target_ms"),
        ({"data_class": "secret"}, "data_class"),
        ({"start_s": T0 + 5}, "start_s"),
        ({"demand_rps": {"users-beijing": [1, 2], "users-xian": [1]}}, "demand_rps"),
        ({"demand_rps": {"users-atlantis": [1]}}, "users-atlantis"),
        ({"accelerator_types": ["TPU"]}, "TPU"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_services_are_refused_naming_the_field(client: TestClient, change, field) -> None:
    tok = tenant(client, "acme")
    r = client.post("/v1/services", json=SERVICE | change, headers=auth(tok))
    assert 400 <= r.status_code < 500 and field in r.text, r.text
