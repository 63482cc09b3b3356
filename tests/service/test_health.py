"""/healthz and /metrics of a service whose loop runs: the loop's last tick and each site's
executor; 503 when every site's engine is down or the loop stops completing ticks. Bad
executor settings stop the service at start, naming the site."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.netkit import network_file
from tests.service import engines  # registers the test executors

from computenet.api.app import create_app
from computenet.errors import InputError, UnknownNameError
from computenet.settings import Settings


def killable_sites(home: Path) -> tuple[str, list[Path]]:
    alive = [home / "a.alive", home / "b.alive"]
    sites = {}
    for site_id, path in zip(("a", "b"), alive, strict=True):
        path.touch()
        sites[site_id] = {"executor": f'{{ kind = "test-killable", alive = "{path}" }}'}
    return network_file(home / "net.toml", sites), alive


def service(db_url: str, home: Path, network: str, **kw: Any) -> Settings:
    """A fast loop; heartbeats every tick; one silent heartbeat marks a site down."""
    fast: dict[str, Any] = dict(
        loop_interval_s=0.05,
        heartbeat_interval_s=0.0,
        heartbeat_timeout_s=1.0,
        site_down_after_s=0.0,
    )
    return Settings(db_url=db_url, home=home, network=network, **(fast | kw))


def until(client: TestClient, ok: Callable[[Any], bool], label: str) -> Any:
    """Poll /healthz until ``ok(response)`` (bounded: a loop that never gets there fails)."""
    for _ in range(300):
        r = client.get("/healthz")
        if ok(r):
            return r
        time.sleep(0.05)
    raise AssertionError(f"/healthz never {label}: {r.status_code} {r.text}")


def test_healthz_follows_the_loop_and_the_sites(db_url: str, tmp_path: Path) -> None:
    network, alive = killable_sites(tmp_path)
    app = create_app(service(db_url, tmp_path, network, loop_stale_after_s=1.0))
    with TestClient(app) as client:
        r = until(client, lambda r: r.json()["loop"]["last_tick_s"] is not None, "ticked")
        body = r.json()
        assert r.status_code == 200 and body["status"] == "ok"
        assert body["loop"]["runs_here"] is True and body["loop"]["age_s"] < 1.0
        assert [(s["site_id"], s["kind"], s["up"]) for s in body["sites"]] == [
            ("a", "test-killable", True),
            ("b", "test-killable", True),
        ]
        assert body["sites"][0]["last_heartbeat_s"] is not None
        metrics = client.get("/metrics").text
        assert "computenet_loop_tick_seconds_count" in metrics
        assert 'computenet_site_up{kind="test-killable",site="a"} 1.0' in metrics

        alive[0].unlink()  # one site down: still healthy
        r = until(client, lambda r: not r.json()["sites"][0]["up"], "saw a down")
        assert r.status_code == 200 and r.json()["sites"][0]["down_since_s"] is not None
        assert "controller does not answer" in r.json()["sites"][0]["message"]
        alive[1].unlink()  # every site down
        r = until(client, lambda r: r.status_code == 503, "answered 503")
        assert r.json()["status"] == "every site's executor is down"
        assert (
            'computenet_site_up{kind="test-killable",site="b"} 0.0' in client.get("/metrics").text
        )
        for path in alive:
            path.touch()
        until(client, lambda r: r.status_code == 200, "recovered")

        # The loop stops completing ticks: 503 once its last tick is older than the limit.
        st = app.state.service

        def broken() -> None:
            raise RuntimeError("database gone")

        st.loop.tick = broken
        r = until(client, lambda r: r.status_code == 503, "noticed the stalled loop")
        assert r.json()["status"].startswith("no loop tick completed for")
        errors = re.search(
            r"^computenet_loop_tick_errors_total (\S+)$", client.get("/metrics").text, re.M
        )
        assert errors is not None and float(errors.group(1)) > 0


def test_sites_show_executor_kind_capabilities_and_health(db_url: str, tmp_path: Path) -> None:
    from tests.service.conftest import ADMIN

    network, _ = killable_sites(tmp_path)
    app = create_app(service(db_url, tmp_path, network, admin_token=ADMIN))
    with TestClient(app) as client:
        until(client, lambda r: r.json()["sites"][0]["last_heartbeat_s"] is not None, "beat")
        sites = client.get("/v1/sites", headers={"Authorization": f"Bearer {ADMIN}"}).json()
        a = sites[0]
        assert a["id"] == "a" and a["executor"] == "test-killable"
        assert a["capabilities"]["runs_commands"] is True and a["capabilities"]["cancel"] is True
        assert a["health"]["up"] is True and a["health"]["reachable"] is True


def test_a_bad_executor_stops_the_service_at_start_naming_the_site(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cn.db'}"
    unknown = network_file(tmp_path / "unknown.toml", {"a": {"executor": '"slurrm"'}})
    with pytest.raises(UnknownNameError) as exc:
        create_app(service(db, tmp_path, unknown))
    assert "sites.a.executor" in str(exc.value) and "local" in str(exc.value)
    bad = network_file(
        tmp_path / "bad.toml", {"a": {"executor": '{ kind = "test-killable", alive = 5 }'}}
    )
    with pytest.raises(InputError) as exc2:
        create_app(service(db, tmp_path, bad))
    assert "sites.a.executor" in str(exc2.value) and "alive" in str(exc2.value)


class HangingEngine(engines.KillableLocal):
    """An engine whose heartbeat never returns until released (a hung controller)."""

    def __init__(self, site_id: str, home: Path) -> None:
        super().__init__(site_id, {"alive": str(home / "unused")}, home)
        self.release = threading.Event()
        self.calls = 0

    def heartbeat(self) -> None:
        self.calls += 1
        self.release.wait()


def test_a_hung_engine_does_not_stall_the_others(db_url: str, tmp_path: Path) -> None:
    from computenet.control.health import Health
    from computenet.control.metrics import LoopMetrics
    from computenet.executors.simulated import SimulatedExecutor
    from computenet.store.repository import Repository, migrate, open_engine

    engine = open_engine(db_url)
    migrate(engine)
    hung = HangingEngine("a", tmp_path)
    executors = {"a": hung, "b": SimulatedExecutor("b", {}, tmp_path)}
    s = service(db_url, tmp_path, "unused", heartbeat_timeout_s=0.2, site_down_after_s=3600.0)
    health = Health(Repository(engine), executors, s, LoopMetrics())
    try:
        health.beat()  # returns after the timeout although a's heartbeat still hangs
        a, b = health.snapshot()
        assert not a["reachable"] and "no answer within 0.2 s" in a["message"]
        assert b["reachable"] and b["last_heartbeat_s"] is not None
        health.beat()  # a's first heartbeat still hangs: no second one piles up
        assert hung.calls == 1
        hung.release.set()
        for _ in range(100):
            if health._pending["a"].done():
                break
            time.sleep(0.02)
        health.beat()
        assert health.snapshot()[0]["reachable"]
    finally:
        hung.release.set()
        health.close()
