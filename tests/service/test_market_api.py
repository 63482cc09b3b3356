"""The compute market over HTTP on SQLite and PostgreSQL: a provider publishes offers for
its own sites only, a tenant gets a quote from the engine, accepts it (charged, its job
placed where quoted), cancels or is settled by the stated rules; the ledger balances."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.market.test_units_and_certificates import gpu_body
from tests.service.conftest import ADMIN
from tests.service.test_api import auth, tenant
from tests.service.test_api import client as client

from computenet.store.market import MarketStore

H = 3600


def ids(client: TestClient) -> dict[str, str]:
    return {t["name"]: t["id"] for t in client.get("/v1/tenants", headers=auth(ADMIN)).json()}


def offer(client: TestClient, token: str, site: str, acc: str, price: int, **kw: int) -> dict:
    now = int(time.time()) // H * H
    body = {
        "site_id": site,
        "accelerator": acc,
        "accelerators": 64,
        "start_s": now,
        "end_s": now + 48 * H,
        "price_fen_per_unit": price,
    } | kw
    r = client.post("/v1/market/offers", json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    return r.json()


def order(client: TestClient, token: str, **kw: object) -> dict:
    now = int(time.time())
    body = {
        "units": 10.0,
        "accelerators": 8,
        "start_s": now,
        "end_s": now + 24 * H,
        "max_price_fen_per_unit": 40,
    } | kw
    r = client.post("/v1/market/orders", json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def market(client: TestClient) -> dict[str, str]:
    toks = {
        "gridco": tenant(client, "gridco", role="provider", sites=("guian", "horinger")),
        "cloudco": tenant(client, "cloudco", role="provider", sites=("wuhu",)),
        "acme": tenant(client, "acme"),
        "rival": tenant(client, "rival"),
    }
    offer(client, toks["gridco"], "guian", "H20", 30)
    offer(client, toks["gridco"], "horinger", "A100", 25)
    return toks


def test_a_provider_offers_only_for_its_own_sites(client: TestClient, market: dict) -> None:
    body = {
        "site_id": "wuhu",
        "accelerator": "H20",
        "accelerators": 8,
        "start_s": 0,
        "end_s": 10**10,
        "price_fen_per_unit": 1,
    }
    r = client.post("/v1/market/offers", json=body, headers=auth(market["gridco"]))
    assert r.status_code == 403 and "not one of this provider's sites" in r.text
    assert (
        client.post("/v1/market/offers", json=body, headers=auth(market["acme"])).status_code == 403
    )
    bad = body | {"accelerators": 10_000}
    r = client.post("/v1/market/offers", json=bad, headers=auth(market["cloudco"]))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "accelerators"
    catalog = client.get("/v1/market/offers", headers=auth(market["acme"])).json()
    assert catalog["unit"] == "PFLOP-hour" and len(catalog["offers"]) == 2
    assert {o["throughput"]["basis"] for o in catalog["offers"]} == {"spec"}
    gridco_offer = catalog["offers"][0]["id"]
    r = client.delete(f"/v1/market/offers/{gridco_offer}", headers=auth(market["cloudco"]))
    assert r.status_code == 404  # another provider's offer is not visible to withdraw


def test_certificates_make_a_pool_sell_measured_units(client: TestClient, market: dict) -> None:
    cert = gpu_body(200.0, name="NVIDIA A100-SXM4-80GB")
    body = {"site_id": "horinger", "accelerator": "A100", "certificate": cert}
    r = client.post("/v1/market/certificates", json=body, headers=auth(market["cloudco"]))
    assert r.status_code == 403
    wrong = body | {"accelerator": "H20", "site_id": "guian"}
    r = client.post("/v1/market/certificates", json=wrong, headers=auth(market["gridco"]))
    assert r.status_code == 422 and "certificate.accelerator" in r.text
    tampered = body | {
        "certificate": cert | {"figures": cert["figures"] | {"matmul_tflops": 999.0}}
    }
    r = client.post("/v1/market/certificates", json=tampered, headers=auth(market["gridco"]))
    assert r.status_code == 422 and "sha256" in r.text
    r = client.post("/v1/market/certificates", json=body, headers=auth(market["gridco"]))
    assert r.status_code == 201, r.text
    catalog = client.get("/v1/market/offers", headers=auth(market["acme"])).json()["offers"]
    a100 = next(o for o in catalog if o["accelerator"] == "A100")
    assert a100["throughput"]["basis"] == "measured" and a100["units_per_accelerator_hour"] == 0.2


def test_quote_accept_run_settle_and_the_ledger(
    client: TestClient, market: dict, db_url: str
) -> None:
    q = order(client, market["acme"])
    assert q["state"] == "quoted" and q["quote"]["site_id"] in ("guian", "horinger"), q
    assert (
        client.get(f"/v1/market/orders/{q['id']}", headers=auth(market["rival"])).status_code == 404
    )
    assert (
        client.post(
            f"/v1/market/orders/{q['id']}/accept", headers=auth(market["rival"])
        ).status_code
        == 404
    )
    r = client.post(f"/v1/market/orders/{q['id']}/accept", headers=auth(market["acme"]))
    assert r.status_code == 200 and r.json()["state"] == "committed", r.text
    again = client.post(f"/v1/market/orders/{q['id']}/accept", headers=auth(market["acme"])).json()
    assert again["job_id"] == r.json()["job_id"]  # a retried accept charges nothing more
    job = client.get(f"/v1/jobs/{again['job_id']}", headers=auth(market["acme"])).json()
    assert job["state"] == "placed" and job["site_id"] == q["quote"]["site_id"]
    assert job["start_s"] == q["quote"]["start_s"]
    price = q["quote"]["price_fen"]
    t = ids(client)
    bal = client.get("/v1/ledger/balances", headers=auth(ADMIN)).json()
    assert bal["trial_balance"] == 0
    assert bal["balances"][f"tenant:{t['acme']}"] == -price
    assert bal["balances"][f"provider:{t['gridco']}"] + bal["balances"]["platform:fees"] == price
    mine = client.get("/v1/ledger/balances", headers=auth(market["acme"])).json()
    assert mine == {"balances": {f"tenant:{t['acme']}": -price}}
    r = client.get(
        f"/v1/ledger/statement?account=tenant:{t['acme']}", headers=auth(market["rival"])
    )
    assert r.status_code == 403
    # The job runs half its planned time at the reserved site, then the site fails it.
    from computenet.store.repository import Repository, open_engine

    engine = open_engine(db_url)
    repo = Repository(engine)
    started = q["quote"]["start_s"]
    repo.transition(job["id"], "running", run_started_s=started, executor=job["site_id"])
    repo.set_fields(job["id"], executor=job["site_id"])
    half = (q["quote"]["end_s"] - started) // 2
    repo.transition(job["id"], "failed", message=f"site {job['site_id']!r} lost it")
    repo.set_fields(job["id"], updated_s=started + half)
    (settled,) = MarketStore(engine).settle(int(time.time()))
    assert settled["state"] == "settled" and 0.45 < settled["settlement"]["delivered_share"] < 0.55
    assert MarketStore(engine).settle(int(time.time())) == []  # idempotent
    bal = client.get("/v1/ledger/balances", headers=auth(ADMIN)).json()
    assert bal["trial_balance"] == 0
    assert -bal["balances"][f"tenant:{t['acme']}"] == pytest.approx(price / 2, abs=2)
    csv_text = client.get("/v1/ledger/statement?format=csv", headers=auth(market["acme"])).text
    assert csv_text.splitlines()[0] == "at_s,key,kind,memo,amount_fen,balance_fen"
    assert f"order:{q['id']}:shortfall" in csv_text
    card = client.get(f"/v1/providers/{t['gridco']}/scorecard", headers=auth(market["acme"])).json()
    assert card["orders_settled"] == 1 and card["completion_share"] == 0.0
    assert card["inputs"]["ledger_keys"] == [f"order:{q['id']}:charge"]


def test_cancel_refunds_by_the_rules_and_unmatched_orders_say_why(
    client: TestClient, market: dict
) -> None:
    now = int(time.time())
    late = order(client, market["acme"], start_s=now + 5 * H, end_s=now + 30 * H)
    client.post(f"/v1/market/orders/{late['id']}/accept", headers=auth(market["acme"]))
    r = client.post(f"/v1/market/orders/{late['id']}/cancel", headers=auth(market["acme"]))
    assert r.status_code == 200 and r.json()["settlement"]["refund_share"] == 1.0
    bal = client.get("/v1/ledger/balances", headers=auth(ADMIN)).json()
    assert bal["trial_balance"] == 0 and bal["balances"] == {}
    dear = order(client, market["acme"], max_price_fen_per_unit=5)
    assert dear["state"] == "unmatched" and "price" in dear["settlement"]["reason"]
    r = client.post(f"/v1/market/orders/{dear['id']}/accept", headers=auth(market["acme"]))
    assert r.status_code == 409
    r = client.post(
        "/v1/market/orders",
        json={"units": 1, "start_s": 0, "end_s": 1, "max_price_fen_per_unit": 1},
        headers=auth(market["gridco"]),
    )
    assert r.status_code == 403  # providers do not buy
    listing = client.get("/v1/market/orders", headers=auth(market["rival"])).json()
    assert listing == []
    provider_view = client.get("/v1/market/orders", headers=auth(market["gridco"])).json()
    assert [o["id"] for o in provider_view] == [late["id"]]
    _ = json, Path
