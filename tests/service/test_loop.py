"""The live loop on SQLite and PostgreSQL: real processes run end to end, cancel kills them,
the engine places jobs with posted feeds and datasets, and no job is dispatched twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from computenet.control.loop import ControlLoop
from computenet.executors.base import Capabilities, Dispatch, ExecStatus
from computenet.executors.local import LocalExecutor, _alive
from computenet.settings import Settings
from computenet.store.repository import (
    DatasetSpec,
    JobSpec,
    Principal,
    Repository,
    migrate,
    now_s,
    open_engine,
)

ACME = Principal("t_acme", "tenant")
T = TypeVar("T")


@pytest.fixture
def repo(db_url: str) -> Repository:
    engine = open_engine(db_url)
    migrate(engine)
    return Repository(engine)


def settings(home: Path, **kw: object) -> Settings:
    """Loop settings; sites run their jobs with the ``local`` executor (``serve --executor
    local``) unless ``executor`` says otherwise."""
    kw.setdefault("executor", "local")
    return Settings(db_url="unused", home=home, run_loop=False, **kw)  # type: ignore[arg-type]


def submit(repo: Repository, spec: JobSpec, key: str | None = None) -> str:
    job, created = repo.submit_batch([(ACME, spec, key)])[0]
    assert created
    return str(job["id"])


def state_of(repo: Repository, job_id: str) -> dict[str, object]:
    return repo.get_job(Principal("admin", "admin"), job_id)


def run_until(loop: ControlLoop, repo: Repository, job_id: str, states: set[str]) -> dict:
    """Tick until the job reaches one of ``states`` (bounded: a stuck loop fails the test)."""
    for _ in range(400):
        loop.tick()
        job = state_of(repo, job_id)
        if job["state"] in states:
            return job
        time.sleep(0.05)  # the local process runs for real; give it a moment
    raise AssertionError(f"job {job_id} stuck in {state_of(repo, job_id)['state']}")


# -- the local executor through the loop (fallback: no engine or network) ---------------


def test_command_runs_end_to_end_and_output_is_captured(repo: Repository, tmp_path: Path) -> None:
    loop = ControlLoop(repo, settings(tmp_path), network=None)
    job_id = submit(repo, JobSpec("hello", 1, 0.01, command="echo hello from $COMPUTENET_JOB_ID"))
    job = run_until(loop, repo, job_id, {"succeeded", "failed"})
    assert job["state"] == "succeeded" and job["exit_code"] == 0
    assert job["site_id"] == "local"
    log = (tmp_path / "jobs").glob(f"{job_id}-*/output.log")
    assert [p.read_text() for p in log] == [f"hello from {job_id}\n"]
    audit = repo.audit(Principal("admin", "admin"), object_id=job_id, limit=10, offset=0)
    assert [e["detail"].get("new") for e in reversed(audit)] == [
        None,
        "placed",
        "running",
        "succeeded",
    ]


def test_exit_code_is_recorded(repo: Repository, tmp_path: Path) -> None:
    loop = ControlLoop(repo, settings(tmp_path), network=None)
    job_id = submit(repo, JobSpec("bad", 1, 0.01, command="echo oops >&2; exit 3"))
    job = run_until(loop, repo, job_id, {"succeeded", "failed"})
    assert job["state"] == "failed" and job["exit_code"] == 3


def test_cancel_kills_the_running_process(repo: Repository, tmp_path: Path) -> None:
    loop = ControlLoop(repo, settings(tmp_path), network=None)
    job_id = submit(repo, JobSpec("long", 1, 1.0, command="sleep 600"))
    run_until(loop, repo, job_id, {"running"})
    pid_file = wait_for(lambda: next((tmp_path / "jobs").glob(f"{job_id}-*/pid"), None))
    pid = int(pid_file.read_text())
    assert _alive(pid)
    assert repo.cancel_job(ACME, job_id)["state"] == "cancelled"
    loop.tick()
    assert not _alive(pid)
    job = state_of(repo, job_id)
    assert job["state"] == "cancelled" and job["exit_code"] == -9


def test_restart_keeps_polling_a_process_it_did_not_start(repo: Repository, tmp_path: Path) -> None:
    """A new loop (a restarted server) finishes a job the old one started."""
    first = ControlLoop(repo, settings(tmp_path), network=None)
    job_id = submit(repo, JobSpec("x", 1, 0.01, command="sleep 0.3; echo done"))
    run_until(first, repo, job_id, {"running"})
    second = ControlLoop(repo, settings(tmp_path), network=None)
    job = run_until(second, repo, job_id, {"succeeded", "failed"})
    assert job["state"] == "succeeded"


# -- dispatch exactly once ---------------------------------------------------------------


@dataclass
class CountingExecutor:
    """Records every start; like the local executor, a repeated request id starts nothing."""

    kind: str = "counting"
    site_id: str = "local"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(True, True, False, False, True, False)
    )
    started: Counter[str] = field(default_factory=Counter)  # job id -> distinct starts
    request_ids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, dispatch: Dispatch) -> str:
        with self.lock:
            if dispatch.request_id not in self.request_ids:
                self.request_ids.add(dispatch.request_id)
                self.started[dispatch.job_id] += 1
        return f"counting:local:{dispatch.request_id}"

    def cancel(self, request_id: str, local_id: str | None) -> None:
        pass

    def poll(self, request_id: str, local_id: str | None) -> ExecStatus:
        return ExecStatus("running")

    def output(self, request_id: str, local_id: str | None, max_bytes: int) -> tuple[str, bool]:
        return "", False

    def heartbeat(self) -> None:
        pass


def test_two_loops_never_dispatch_a_job_twice(repo: Repository, tmp_path: Path) -> None:
    ids = [
        str(j["id"])
        for j, _ in repo.submit_batch([(ACME, JobSpec(f"j{i}", 1, 0.1), None) for i in range(60)])
    ]
    ex = CountingExecutor()
    loops = [
        ControlLoop(repo, settings(tmp_path), network=None, executors={"local": ex})
        for _ in range(2)
    ]
    errors: list[BaseException] = []

    def work(loop: ControlLoop) -> None:
        for _ in range(5):
            try:
                loop.tick()
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(lp,)) for lp in loops]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(ex.started) == set(ids)
    assert max(ex.started.values()) == 1
    assert {state_of(repo, i)["state"] for i in ids} == {"running"}


class CrashAfterRecord(CountingExecutor):
    """Dies (as a kill -9 would) after the dispatch id is in the database and before
    the executor heard of it."""

    def submit(self, dispatch: Dispatch) -> str:
        raise SystemExit("killed")


def test_restart_after_crash_mid_dispatch_starts_the_job_once(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit(repo, JobSpec("x", 1, 0.1, command="true"))
    crashed = ControlLoop(
        repo, settings(tmp_path), network=None, executors={"local": CrashAfterRecord()}
    )
    crashed.plan_queued()
    with monkeypatch.context() as m:
        m.setattr(repo, "release", lambda *a: None)  # a killed process releases nothing
        with pytest.raises(SystemExit):
            crashed.dispatch_due()
    (row,) = repo.jobs_in(["placed"])
    assert row.dispatch_id is not None and row.lease_owner == crashed.owner
    recorded = row.dispatch_id
    restarted = ControlLoop(repo, settings(tmp_path), network=None)
    restarted.dispatch_due()
    assert state_of(repo, job_id)["state"] == "placed"  # still leased to the dead loop
    repo.set_fields(job_id, lease_until_s=0)  # ... until its lease runs out
    ex = CountingExecutor()
    restarted = ControlLoop(repo, settings(tmp_path), network=None, executors={"local": ex})
    restarted.tick()
    restarted.tick()
    assert ex.request_ids == {recorded} and ex.started == Counter({job_id: 1})
    assert state_of(repo, job_id)["state"] == "running"


def test_local_executor_ignores_a_repeated_request_id(tmp_path: Path) -> None:
    ex = LocalExecutor("local", {}, tmp_path)
    ex.submit(run("r1", "j1", "echo once"))
    ex.submit(run("r1", "j1", "echo once"))
    assert wait_done(ex, "r1") == "succeeded"
    assert ex.output("r1", None, 1000) == ("once\n", False)


def run(request_id: str, job_id: str, command: str | None) -> Dispatch:
    """A one-accelerator dispatch of ``command`` for the local executor tests."""
    return Dispatch(request_id, job_id, "t_test", command, 1, None, walltime_s=600)


def wait_done(ex: LocalExecutor, request_id: str) -> str:
    for _ in range(400):
        status = ex.poll(request_id, None).status
        if status not in ("running", "pending"):
            return status
        time.sleep(0.02)
    raise AssertionError("still running")


def wait_for(found: Callable[[], T | None]) -> T:
    """What ``found`` answers once it answers something (bounded: 8 s)."""
    for _ in range(400):
        value = found()
        if value is not None:
            return value
        time.sleep(0.02)
    raise AssertionError("never appeared")


def test_two_executors_racing_on_one_request_id_run_the_command_once(tmp_path: Path) -> None:
    """A restarted server repeats a dispatch whose first launch may still be starting:
    both wrappers start, one claims the run, the command runs once."""
    for i in range(20):
        first, second = LocalExecutor("local", {}, tmp_path), LocalExecutor("local", {}, tmp_path)
        first.submit(run(f"r{i}", "j", "echo x"))
        second.submit(run(f"r{i}", "j", "echo x"))
        assert wait_done(first, f"r{i}") == "succeeded"
        assert wait_done(second, f"r{i}") == "succeeded"
        assert first.output(f"r{i}", None, 100) == ("x\n", False)


def test_a_dispatch_that_died_before_launching_runs_on_retry(tmp_path: Path) -> None:
    (tmp_path / "jobs" / "r1").mkdir(
        parents=True
    )  # the old server made the directory, then was killed
    ex = LocalExecutor("local", {}, tmp_path)
    ex.submit(run("r1", "j", "echo ran"))
    assert wait_done(ex, "r1") == "succeeded"
    assert (tmp_path / "jobs" / "r1" / "output.log").read_text() == "ran\n"


def test_cancel_before_the_wrapper_starts_means_it_never_runs(tmp_path: Path) -> None:
    ex = LocalExecutor("local", {}, tmp_path)
    (tmp_path / "jobs" / "r1").mkdir(parents=True)
    ex.cancel("r1", None)  # the mark is there before any process
    ex.submit(run("r1", "j", "echo ran"))
    ex._procs["r1"].wait()
    assert ex.poll("r1", None).status == "cancelled" and ex.output("r1", None, 100) == ("", False)
    assert not (tmp_path / "jobs" / "r1" / "work").exists()  # the job never started


# -- with the real engine and the built-in network -------------------------------------


@pytest.fixture(scope="module")
def china() -> Iterator[object]:
    catalog = pytest.importorskip("computenet.catalog")
    yield catalog.load_network("china")


def test_engine_places_with_explanation_then_runs(
    repo: Repository, tmp_path: Path, china: object
) -> None:
    loop = ControlLoop(repo, settings(tmp_path), network=china)
    # A deadline a minute away leaves no room to wait for cheaper hours: it starts now.
    job_id = submit(repo, JobSpec("now", 1, 0.005, deadline_s=now_s() + 120, command="true"))
    loop.plan_queued()
    placed = repo.get_explanation(ACME, job_id)
    assert placed["state"] == "placed" and placed["site_id"] in {s.id for s in china.sites}  # type: ignore[attr-defined]
    x = placed["explanation"]
    assert x["policy"] == "greedy" and x["reason"]
    assert x["breakdown"]["energy_kwh"] > 0 and x["breakdown"]["carbon_kg"] > 0
    job = run_until(loop, repo, job_id, {"succeeded", "failed"})
    assert job["state"] == "succeeded"


def test_impossible_job_fails_with_the_reason(
    repo: Repository, tmp_path: Path, china: object
) -> None:
    loop = ControlLoop(repo, settings(tmp_path), network=china)
    job_id = submit(repo, JobSpec("huge", 100_000, 1.0))
    loop.plan_queued()
    job = state_of(repo, job_id)
    assert job["state"] == "failed" and "infeasible" in str(job["message"])


def test_posted_capacity_steers_placement(repo: Repository, tmp_path: Path, china: object) -> None:
    """Providers withdraw every site but one (capacity 0): the engine must use that one."""
    keep = "guian"
    for site in china.sites:  # type: ignore[attr-defined]
        if site.id != keep:
            repo.put_site_feed("t_op", site.id, capacity={p.accelerator: 0 for p in site.pools})
    loop = ControlLoop(repo, settings(tmp_path), network=china)
    job_id = submit(repo, JobSpec("steered", 8, 1.0))
    loop.plan_queued()
    assert state_of(repo, job_id)["site_id"] == keep


def test_core_data_is_processed_at_home(repo: Repository, tmp_path: Path, china: object) -> None:
    ds = repo.create_dataset(ACME, DatasetSpec("records", 10.0, "shaoguan", classification="core"))
    loop = ControlLoop(repo, settings(tmp_path), network=china)
    job_id = submit(repo, JobSpec("uses-core", 4, 2.0, datasets=(ds["id"],)))
    loop.plan_queued()
    assert state_of(repo, job_id)["site_id"] == "shaoguan"


def test_feed_overlay_falls_back_outside_its_span() -> None:
    import numpy as np

    from computenet.control.feeds import FeedOverlay
    from computenet.signals.base import ConstantSignal, SeriesSignal

    feed = SeriesSignal(start_s=3600, step_s=3600, values=np.array([10.0, 20.0]), wrap=False)
    sig = FeedOverlay(feed, ConstantSignal(1.0), "CNY/kWh")
    assert [sig.at(t) for t in (0, 3600, 7200, 10800)] == [1.0, 10.0, 20.0, 1.0]
    assert list(sig.window(0, 4 * 3600, 3600)) == [1.0, 10.0, 20.0, 1.0]
    assert sig.mean(1800, 5400) == pytest.approx((1.0 + 10.0) / 2)


def test_pid_file_is_the_process_group(tmp_path: Path) -> None:
    """Cancel kills the whole group: a child the command forks dies too."""
    ex = LocalExecutor("local", {}, tmp_path)
    ex.submit(run("r", "j", "sleep 600 & echo $! > child; wait"))
    child = tmp_path / "jobs" / "r" / "work" / "child"  # in the job's working directory
    pid = int(wait_for(lambda: (child.exists() and child.read_text().strip()) or None))
    assert _alive(pid)
    ex.cancel("r", None)
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.02)
    assert not _alive(pid) and ex.poll("r", None).status == "cancelled"


def test_submitted_over_http_runs_and_its_output_is_served(db_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from tests.service.conftest import ADMIN

    from computenet.api.app import create_app

    s = Settings(db_url=db_url, home=tmp_path, admin_token=ADMIN, run_loop=False, executor="local")
    with TestClient(create_app(s)) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        acme = {"name": "acme", "permissions": ["commands"]}  # commands need the permission
        tok = client.post("/v1/tenants", json=acme, headers=admin).json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        body = {
            "name": "hi",
            "accelerators": 1,
            "duration_h": 0.01,
            "deadline_s": now_s() + 300,
            "command": "echo hi; exit 0",
        }
        job = client.post("/v1/jobs", json=body, headers=h).json()
        assert client.get(f"/v1/jobs/{job['id']}/output", headers=h).json()["output"] == ""
        st = client.app.state.service  # type: ignore[attr-defined]
        # The loop the app would run: the app's network and its sites' executors.
        loop = ControlLoop(st.repo, s, network=st.network, executors=st.executors)
        run_until(loop, loop.repo, job["id"], {"succeeded", "failed"})
        got = client.get(f"/v1/jobs/{job['id']}", headers=h).json()
        assert got["state"] == "succeeded" and got["exit_code"] == 0
        out = client.get(f"/v1/jobs/{job['id']}/output", headers=h).json()
        assert out == {"job_id": job["id"], "output": "hi\n", "truncated": False}
        other = client.post("/v1/tenants", json={"name": "b"}, headers=admin).json()["token"]
        r = client.get(f"/v1/jobs/{job['id']}/output", headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 404
