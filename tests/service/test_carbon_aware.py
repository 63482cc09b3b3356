"""The Carbon Aware SDK-compatible endpoints (/v1/carbon-aware): the requests of the SDK's own
documentation (casdk-docs/docs/tutorial-basics/carbon-aware-webapi.md, CarbonAwareController)
with computenet's site ids as locations, answered in the SDK's JSON shapes."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.service.test_api import auth, make_client, tenant

BASE = "/v1/carbon-aware"
EMISSIONS_KEYS = {"location", "time", "rating", "duration"}  # the SDK's EmissionsData
FORECAST_KEYS = {  # the SDK's EmissionsForecastDTO
    "generatedAt",
    "requestedAt",
    "location",
    "dataStartAt",
    "dataEndAt",
    "windowSize",
    "optimalDataPoints",
    "forecastData",
}
POINT_KEYS = {"location", "timestamp", "duration", "value"}  # the SDK's EmissionsDataDTO


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(f"sqlite:///{tmp_path / 'cn.db'}", tmp_path) as c:
        yield c


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_bylocation_answers_the_documented_request(client: TestClient) -> None:
    tok = tenant(client, "acme")
    # docs: /emissions/bylocation?location=useast&time=2022-01-01&toTime=2022-05-17
    r = client.get(
        f"{BASE}/emissions/bylocation?location=horinger&time=2022-01-01&toTime=2022-05-17",
        headers=auth(tok),
    )
    assert r.status_code == 200, r.text
    points = r.json()
    assert len(points) == 136 * 24  # one per hour from Jan 1 to May 17
    assert all(set(p) == EMISSIONS_KEYS for p in points)
    assert points[0]["time"] == "2022-01-01T00:00:00+00:00"
    assert points[0]["duration"] == "01:00:00"  # a .NET TimeSpan, as the SDK writes it
    # Horinger plans with its grid (647.9 g/kWh) mixed with its reported 84.57 % green power
    assert points[0]["rating"] == pytest.approx(647.9 * (1 - 0.8457))
    assert "X-Computenet-Carbon" not in r.headers  # the annual factor: nothing modelled


def test_bylocations_and_best(client: TestClient) -> None:
    tok = tenant(client, "acme")
    q = "location=guian&location=tianfu&time=2023-07-03T00:00:00Z&toTime=2023-07-03T06:00:00Z"
    r = client.get(f"{BASE}/emissions/bylocations?{q}", headers=auth(tok))
    assert r.status_code == 200, r.text
    points = r.json()
    assert len(points) == 12 and {p["location"] for p in points} == {"guian", "tianfu"}
    best = client.get(f"{BASE}/emissions/bylocations/best?{q}", headers=auth(tok)).json()
    assert best and all(set(p) == EMISSIONS_KEYS for p in best)
    low = min(p["rating"] for p in points)
    assert {p["location"] for p in best} == {"tianfu"}  # Sichuan hydro: 156.4 g/kWh
    assert all(p["rating"] == low for p in best)
    # durationMinutes: each rating is the mean over that long from its time
    r = client.get(f"{BASE}/emissions/bylocations?{q}&durationMinutes=90", headers=auth(tok))
    assert r.json()[0]["duration"] == "01:30:00"


def test_forecast_current_in_the_sdk_shape(client: TestClient) -> None:
    tok = tenant(client, "acme")
    now = int(time.time())
    hour = now // 3600 * 3600
    start = dt.datetime.fromtimestamp(hour + 3600, dt.UTC)
    end = start + dt.timedelta(hours=14, minutes=38)
    iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    # docs: ?location=northeurope&dataStartAt=...T14:00:00Z&dataEndAt=...T04:38:00Z&windowSize=10
    r = client.get(
        f"{BASE}/emissions/forecasts/current?location=zhongwei&location=shaoguan"
        f"&dataStartAt={iso(start)}&dataEndAt={iso(end)}&windowSize=10",
        headers=auth(tok),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [f["location"] for f in body] == ["zhongwei", "shaoguan"]
    for f in body:
        assert set(f) == FORECAST_KEYS and f["windowSize"] == 10
        assert _t(f["generatedAt"]).timestamp() == hour
        assert _t(f["dataStartAt"]) == start and _t(f["dataEndAt"]) == end
        data = f["forecastData"]
        assert len(data) == 15 and all(set(p) == POINT_KEYS for p in data)
        assert all(p["duration"] == 10 for p in data)
        low = min(p["value"] for p in data)
        assert f["optimalDataPoints"] and all(p["value"] == low for p in f["optimalDataPoints"])
    # no bounds: the whole current forecast (48 hourly points), window one point
    whole = client.get(
        f"{BASE}/emissions/forecasts/current?location=zhongwei", headers=auth(tok)
    ).json()[0]
    assert len(whole["forecastData"]) == 48 and whole["windowSize"] == 60


def test_bad_requests_name_the_parameter(client: TestClient) -> None:
    tok = tenant(client, "acme")
    cases = {
        "emissions/bylocation?location=nowhere": "location",
        "emissions/bylocation?location=guian&time=yesterday": "time",
        "emissions/bylocation?location=guian&time=2023-01-02&toTime=2023-01-01": "toTime",
        "emissions/bylocation?location=guian&time=2020-01-01&toTime=2023-01-01": "toTime",
        "emissions/forecasts/current?location=guian&dataStartAt=2020-01-01": "dataStartAt",
        "emissions/forecasts/current?location=guian&windowSize=0": "windowSize",
    }
    for path, field in cases.items():
        r = client.get(f"{BASE}/{path}", headers=auth(tok))
        assert r.status_code == 422, (path, r.text)  # computenet maps bad input to 422
        assert field in r.text, (path, r.text)


def test_reads_need_a_token_like_every_other_read(client: TestClient) -> None:
    for path in (
        "emissions/bylocation?location=guian",
        "emissions/bylocations/best?location=guian",
        "emissions/forecasts/current?location=guian",
        "locations",
    ):
        assert client.get(f"{BASE}/{path}").status_code == 401, path
        bad = {"Authorization": "Bearer cn_not_a_token_0000000000000000"}
        assert client.get(f"{BASE}/{path}", headers=bad).status_code == 401, path
    tok = tenant(client, "acme")
    locs = client.get(f"{BASE}/locations", headers=auth(tok)).json()
    assert locs["guian"] == {"Latitude": 26.65, "Longitude": 106.63, "Name": "guian"}


def test_modelled_carbon_is_labelled_and_varies(tmp_path: Path) -> None:
    pytest.importorskip("pvlib")
    url = f"sqlite:///{tmp_path / 'cn.db'}"
    with make_client(url, tmp_path, carbon_model="hourly") as c:
        tok = tenant(c, "acme")
        r = c.get(
            f"{BASE}/emissions/bylocation?location=qingyang"
            "&time=2023-07-03T00:00:00Z&toTime=2023-07-04T00:00:00Z",
            headers=auth(tok),
        )
        assert r.status_code == 200 and r.headers["X-Computenet-Carbon"] == "modelled"
        ratings = [p["rating"] for p in r.json()]
        assert max(ratings) > min(ratings) * 1.05  # the sun lowers it by day
        site = next(
            s for s in c.get("/v1/sites", headers=auth(tok)).json() if s["id"] == "qingyang"
        )
        assert site["supply"]["carbon_model"].startswith("modelled")


def test_sites_show_grid_and_effective_side_by_side(client: TestClient) -> None:
    tok = tenant(client, "acme")
    sites = {s["id"]: s for s in client.get("/v1/sites", headers=auth(tok)).json()}
    hor = sites["horinger"]["supply"]
    assert hor["grid_carbon_g_per_kwh_now"] == pytest.approx(647.9)
    assert hor["effective_carbon_g_per_kwh_now"] == pytest.approx(647.9 * (1 - 0.8457))
    assert hor["green_share_now"] == pytest.approx(0.8457)
    assert [g["status"] for g in hor["green_supply"]] == ["reported"]
    assert hor["green_supply"][0]["applied"] is True
    gui = sites["guian"]["supply"]  # the >80 % policy target: shown, not applied by default
    assert gui["green_supply"][0]["status"] == "target"
    assert gui["green_supply"][0]["applied"] is False
    assert gui["effective_carbon_g_per_kwh_now"] == gui["grid_carbon_g_per_kwh_now"]
    assert sites["beijing"]["supply"]["green_supply"] == []


def test_a_posted_grid_feed_is_mixed_with_the_sites_green_supply(client: TestClient) -> None:
    tok = tenant(client, "acme")
    prov = tenant(client, "gridco", role="provider", sites=("horinger",))
    t0 = (int(time.time()) // 3600 - 1) * 3600
    feed = {"carbon_g_per_kwh": {"start_s": t0, "values": [400.0, 400.0, 400.0]}}
    r = client.put("/v1/sites/horinger/signals", json=feed, headers=auth(prov))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["supply"]["grid_carbon_g_per_kwh_now"] == 400.0  # the posted grid series
    assert got["carbon_g_per_kwh_now"] == pytest.approx(400.0 * (1 - 0.8457))
    now = dt.datetime.fromtimestamp(t0 + 3600, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pts = client.get(
        f"{BASE}/emissions/bylocation?location=horinger&time={now}", headers=auth(tok)
    ).json()
    assert pts[0]["rating"] == pytest.approx(400.0 * (1 - 0.8457))


def test_durations_are_written_as_dotnet_timespans() -> None:
    from computenet.api.routers.carbon_aware import timespan

    assert timespan(3600) == "01:00:00" and timespan(90 * 60) == "01:30:00"
    assert timespan(86400 + 5) == "1.00:00:05"
