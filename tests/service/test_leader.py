"""Several service processes on one PostgreSQL: both answer the API, exactly one runs the
loop, and killing it (kill -9, mid-run, while jobs keep arriving) hands the loop to the other
with every job run exactly once.

Two real ``computenet serve`` processes share the database and the data directory (the
``local`` executor keeps its run records there, so the survivor can poll runs the dead one
started). Each job's command appends its own key to one file: a key missing there was never
run, a key twice was run twice."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.service.conftest import ADMIN

pytestmark = pytest.mark.postgres

LEASE_S = 2.0  # short, so the test runs in seconds; the default is 10
RENEW_S = 0.5


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def health(self) -> dict[str, Any]:
        r = httpx.get(self.url + "/healthz", timeout=5.0)
        assert r.status_code == 200, r.text
        return dict(r.json())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_url: str, home: Path, name: str) -> Server:
    port = free_port()
    env = dict(os.environ, COMPUTENET_HOME=str(home), COMPUTENET_ADMIN_TOKEN=ADMIN)
    cmd = [sys.executable, "-m", "computenet.cli.main", "serve", "--db", db_url]
    cmd += ["--port", str(port), "--policy", "cheapest-now", "--executor", "local"]
    cmd += ["--leader-lease", str(LEASE_S), "--leader-renew", str(RENEW_S)]
    log = home.parent / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    for _ in range(1200):  # bounded: a server that never answers fails the test
        assert proc.poll() is None, log.read_text()
        try:
            server.health()
            return server
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(f"{name} did not answer: {log.read_text()[-2000:]}")


@pytest.fixture
def servers(db_url: str, tmp_path: Path) -> Iterator[list[Server]]:
    home = tmp_path / "home"
    home.mkdir()
    started: list[Server] = []
    try:
        started.append(start_server(db_url, home, "a"))
        started.append(start_server(db_url, home, "b"))
        yield started
    finally:
        for s in started:
            s.proc.kill()
            s.proc.wait()


@dataclass
class Submitter:
    """Submits jobs one after another, each through the next live server; a job whose
    request failed (its server died under it) is retried with the SAME Idempotency-Key on
    the other server, so it exists once whatever the dead one had committed."""

    servers: list[Server]
    token: str
    runs: Path
    acked: dict[str, str] = field(default_factory=dict)  # key -> job id
    acked_by: collections.Counter[str] = field(default_factory=collections.Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    failed_over: int = 0

    def body(self, key: str) -> dict[str, Any]:
        return {
            "name": key,
            "accelerators": 1,
            "duration_h": 0.01,
            "deadline_s": int(time.time()) + 600,  # due soon: placed to start now
            "command": f"echo {key} >> {self.runs}; sleep 0.5",
        }

    def submit(self, key: str, first: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": key}
        for attempt in range(40):
            server = self.servers[(first + attempt) % len(self.servers)]
            if server.proc.poll() is not None:
                continue
            try:
                r = httpx.post(server.url + "/v1/jobs", json=self.body(key), headers=headers)
            except httpx.HTTPError:
                self.failed_over += 1
                continue
            assert r.status_code in (200, 201), r.text
            self.acked[key] = r.json()["id"]
            self.acked_by[server.url] += 1
            return
        raise AssertionError(f"no server took job {key}")

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            self.submit(f"job-{n:04d}", n)
            n += 1
            time.sleep(0.05)


def wait_for(what: str, check: Any, tries: int = 1200, pause_s: float = 0.05) -> Any:
    """Poll ``check`` until it answers something true (bounded: a stuck service fails)."""
    for _ in range(tries):
        value = check()
        if value:
            return value
        time.sleep(pause_s)
    raise AssertionError(f"gave up waiting for {what}")


def leaders(servers: list[Server]) -> list[Server]:
    return [s for s in servers if s.proc.poll() is None and s.health()["leader"]["this_process"]]


def lines(path: Path) -> collections.Counter[str]:
    return collections.Counter(path.read_text().split()) if path.exists() else collections.Counter()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_killing_the_leader_hands_the_loop_over_and_runs_every_job_once(
    servers: list[Server], db_url: str, tmp_path: Path
) -> None:
    # Jobs run under unprivileged uids, and pytest's tmp_path is private to root: the jobs'
    # shared record is a world-writable file in a directory of its own.
    shared = Path(tempfile.mkdtemp(prefix="cn-leader-"))
    shared.chmod(0o755)
    runs = shared / "runs.txt"
    runs.touch(mode=0o666)
    runs.chmod(0o666)

    # Exactly one of the two leads, and both say which one.
    leader = wait_for("a leader", lambda: leaders(servers))
    assert len(leader) == 1
    leader_s = leader[0]
    survivor = next(s for s in servers if s is not leader_s)
    holder = {s.health()["leader"]["holder"] for s in servers}
    assert holder == {leader_s.health()["leader"]["holder"]}
    assert survivor.health()["leader"]["candidate"] is True
    gauges = [httpx.get(s.url + "/metrics").text for s in (leader_s, survivor)]
    assert "computenet_loop_leader 1.0" in gauges[0] and "computenet_loop_leader 0.0" in gauges[1]
    old_generation = leader_s.health()["leader"]["generation"]

    created = httpx.post(
        survivor.url + "/v1/tenants",
        json={"name": "acme", "permissions": ["commands"]},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert created.status_code == 201, created.text
    sub = Submitter(servers, created.json()["token"], runs)
    thread = threading.Thread(target=sub.run, daemon=True)
    thread.start()
    try:
        # Both APIs take jobs, and the leader has run some, before it dies.
        wait_for("jobs through both APIs", lambda: len(sub.acked_by) == 2 and len(sub.acked) > 10)
        wait_for("jobs run by the first leader", lambda: len(lines(runs)) >= 3)
        before_kill = dict(sub.acked_by)
        leader_s.proc.send_signal(signal.SIGKILL)
        killed_at_s = time.time()
        leader_s.proc.wait()

        # The survivor takes the loop over (the lease lapses first) and ticks.
        health = wait_for(
            "the survivor to lead and tick",
            lambda: (h := survivor.health()["leader"])["first_tick_s"] and h,
        )
        takeover_s = health["first_tick_s"] - killed_at_s
        print(f"takeover: {takeover_s:.2f} s after kill -9 (bound {health['takeover_within_s']} s)")
        assert health["generation"] == old_generation + 1
        # Jobs keep arriving through the survivor after the kill.
        acked_at_kill = len(sub.acked)
        wait_for("jobs after the takeover", lambda: len(sub.acked) >= acked_at_kill + 10)
    finally:
        sub.stop.set()
        thread.join()

    assert all(before_kill.get(s.url, 0) > 0 for s in servers)  # both answered while both lived
    assert sub.acked_by[survivor.url] > before_kill[survivor.url]  # the survivor kept answering

    # Every job ends, and ran exactly once: its key is in the file once.
    token = {"Authorization": f"Bearer {sub.token}"}

    def all_done() -> list[dict[str, Any]] | None:
        page = httpx.get(survivor.url + "/v1/jobs", params={"limit": 500}, headers=token).json()
        done = [j for j in page["items"] if j["state"] in ("succeeded", "failed", "cancelled")]
        return page["items"] if len(done) == page["total"] == len(sub.acked) else None

    jobs = wait_for("every job to finish", all_done, tries=1800)
    assert {j["state"] for j in jobs} == {"succeeded"}
    assert {j["name"] for j in jobs} == set(sub.acked)
    ran = lines(runs)
    assert set(ran) == set(sub.acked), "a job never ran, or something ran that was not asked"
    assert [k for k, n in ran.items() if n > 1] == [], "a job ran twice"

    # Each dispatch recorded the generation of the leader that made it: the old leader's
    # and the survivor's, nothing else.
    import psycopg

    with psycopg.connect(db_url) as conn:
        generations = {
            g for (g,) in conn.execute("SELECT DISTINCT dispatch_generation FROM jobs").fetchall()
        }
        takeovers = conn.execute(
            "SELECT count(*) FROM audit WHERE action = 'loop.leader'"
        ).fetchone()
    assert generations == {old_generation, old_generation + 1}
    assert takeovers == (2,)
    assert survivor.health()["status"] == "ok"
