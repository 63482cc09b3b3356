"""Per-site executors and failover with real ``local`` executors on two sites of a network
file: each site runs its own jobs under their site-local ids, a refused job fails alone,
and a site whose engine stops answering has its jobs planned at the other site (data rules
honoured, checkpointable jobs resume with less work), is used again when it answers, and
never leaves a job running twice once it answers. A restart in the middle ends consistent."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.netkit import network_file
from tests.service import engines

from computenet.catalog import load_network
from computenet.control.loop import ControlLoop
from computenet.executors.local import _alive
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
ADMIN = Principal("admin", "admin")
SLEEP = "sleep 600"


@pytest.fixture
def repo(db_url: str) -> Repository:
    engine = open_engine(db_url)
    migrate(engine)
    return Repository(engine)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """The data directory; every process a test started there is killed at its end."""
    yield tmp_path
    for pid_file in (tmp_path / "jobs").glob("*/pid"):
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def settings(home: Path, **kw: Any) -> Settings:
    """Heartbeat every tick; one silent heartbeat marks a site down (the loop's decisions,
    not the clock, are under test here)."""
    base: dict[str, Any] = dict(
        heartbeat_interval_s=0.0, heartbeat_timeout_s=2.0, site_down_after_s=0.0
    )
    return Settings(db_url="unused", home=home, run_loop=False, **(base | kw))


def two_sites(home: Path, a100_at_a: int = 4) -> tuple[Any, Path]:
    """Site ``a`` (cheaper; its engine can be killed by removing the ``alive`` file) and
    site ``b``, both running jobs as local processes."""
    alive = home / "a.alive"
    alive.touch()
    killable = f'{{ kind = "test-killable", alive = "{alive}" }}'
    path = network_file(
        home / "net.toml",
        {
            "a": {"executor": killable, "price": 0.3, "a100": a100_at_a},
            "b": {"executor": '"local"', "price": 0.6},
        },
    )
    return load_network(path), alive


def submit(
    repo: Repository, name: str, command: str | None = SLEEP, deadline_h: float = 3.0, **kw: Any
) -> str:
    deadline_s = now_s() + int(deadline_h * 3600)
    spec = JobSpec(name, 1, 1.0, deadline_s=deadline_s, command=command, **kw)
    job, created = repo.submit_batch([(ACME, spec, None)])[0]
    assert created
    return str(job["id"])


def job(repo: Repository, job_id: str) -> dict[str, Any]:
    return repo.get_job(ADMIN, job_id)


def wait_for(what: Callable[[], bool], label: str) -> None:
    for _ in range(200):
        if what():
            return
        time.sleep(0.05)
    raise AssertionError(f"never true: {label}")


def live_runs(home: Path, job_id: str) -> list[str]:
    """Run directories of ``job_id`` whose process is alive (its runs at any site)."""
    out = []
    for pid_file in (home / "jobs").glob(f"{job_id}-*/pid"):
        if _alive(int(pid_file.read_text())):
            out.append(pid_file.parent.name)
    return out


def started(home: Path, job_id: str, runs: int) -> bool:
    return len(list((home / "jobs").glob(f"{job_id}-*/pid"))) >= runs


def actions(repo: Repository, object_id: str) -> list[str]:
    entries = repo.audit(ADMIN, object_id=object_id, limit=100, offset=0)
    return [e["action"] for e in reversed(entries)]


# -- one executor per site -------------------------------------------------------------


def test_each_site_runs_its_jobs_under_their_site_local_ids(repo: Repository, home: Path) -> None:
    network, _ = two_sites(home, a100_at_a=1)  # room for one job at a: the other goes to b
    loop = ControlLoop(repo, settings(home), network)
    ids = [submit(repo, "one", deadline_h=1.1), submit(repo, "two", deadline_h=1.1)]
    loop.tick()
    jobs = [job(repo, i) for i in ids]
    assert sorted(j["site_id"] for j in jobs) == ["a", "b"]
    for j in jobs:
        assert j["state"] == "running" and j["executor"] == j["site_id"]
        run = repo.dispatch_of(j["id"])
        assert run is not None and j["local_id"] == f"local:{j['site_id']}:{run[1]}"
        assert repo.get_explanation(ACME, j["id"])["local_id"] == j["local_id"]
        wait_for(lambda j=j: live_runs(home, j["id"]) != [], "the process started")
    assert loop.metrics.dispatches.labels("a")._value.get() == 1
    for i in ids:  # cancel goes through each job's own site executor
        repo.cancel_job(ACME, i)
    loop.tick()
    assert all(live_runs(home, i) == [] for i in ids)


def test_a_refused_job_fails_alone(repo: Repository, home: Path) -> None:
    """The engine refuses one job and the executor crashes on another: both fail with the
    reason, and the job beside them runs to the end."""
    refusing = engines.RefusingLocal("local", {}, home)
    loop = ControlLoop(repo, settings(home), network=None, executors={"local": refusing})
    refused = submit(repo, "refused", "echo REFUSE")
    crashed = submit(repo, "crashed", "echo CRASH")
    fine = submit(repo, "fine", "echo fine")
    for _ in range(200):
        loop.tick()
        if job(repo, fine)["state"] == "succeeded":
            break
        time.sleep(0.05)
    assert job(repo, fine)["state"] == "succeeded"
    r = job(repo, refused)
    assert r["state"] == "failed" and "Invalid generic resource" in r["message"]
    x = repo.get_explanation(ACME, refused)["explanation"]
    assert "Invalid generic resource" in x["executor"]
    c = job(repo, crashed)
    assert c["state"] == "failed" and "ValueError: embedded null byte" in c["message"]
    assert loop.metrics.dispatch_failures.labels("local", "refused")._value.get() == 1
    assert loop.metrics.dispatch_failures.labels("local", "error")._value.get() == 1


def test_commands_go_only_to_sites_that_run_commands(repo: Repository, home: Path) -> None:
    """Site a is simulated (the default executor), b runs commands: the engine is told, so
    a command goes to b although a is cheaper, and a job without one goes to a."""
    path = network_file(
        home / "net.toml",
        {"a": {"price": 0.3}, "b": {"executor": '"local"', "price": 0.6}},
    )
    loop = ControlLoop(repo, settings(home), load_network(path))
    with_command, without = submit(repo, "cmd", "echo hi"), submit(repo, "bare", None)
    loop.tick()
    assert job(repo, with_command)["site_id"] == "b"
    bare = job(repo, without)
    assert bare["site_id"] == "a" and bare["local_id"].startswith("simulated:a:")
    simulated = loop.executors["a"]
    out, _ = simulated.output(str(bare["local_id"]).split(":")[2], bare["local_id"], 4096)
    assert "nothing ran: site a is simulated" in out


def test_with_no_site_that_runs_commands_a_command_fails_saying_how(
    repo: Repository, home: Path
) -> None:
    path = network_file(home / "net.toml", {"a": {}, "b": {}})
    loop = ControlLoop(repo, settings(home), load_network(path))
    job_id = submit(repo, "cmd", "echo hi")
    loop.tick()
    j = job(repo, job_id)
    assert j["state"] == "failed" and "serve --executor local" in j["message"]


def test_an_engine_that_does_not_answer_keeps_the_job_placed_then_starts_it_once(
    repo: Repository, home: Path
) -> None:
    """``ExecutorUnavailable`` at submit: the job stays placed (same request id), the site
    is not called again until a heartbeat answers, then the job starts, once."""
    network, alive = two_sites(home)
    loop = ControlLoop(repo, settings(home, site_down_after_s=3600.0), network)
    job_id = submit(repo, "x")
    loop.health.beat()
    loop.plan_queued()
    alive.unlink()  # dies between its heartbeat and the dispatch
    loop.dispatch_due()
    j = job(repo, job_id)
    assert (j["state"], j["site_id"]) == ("placed", "a") and "did not answer" in j["message"]
    assert loop.metrics.dispatch_failures.labels("a", "unavailable")._value.get() == 1
    assert not loop.health.usable("a") and not loop.health.down_sites()
    request_id = repo.dispatch_of(job_id)
    loop.tick()  # still silent, not yet down: nothing moves, nothing is called
    assert job(repo, job_id)["state"] == "placed" and repo.dispatch_of(job_id) == request_id
    alive.touch()
    loop.tick()
    j = job(repo, job_id)
    assert (j["state"], j["site_id"]) == ("running", "a")
    assert repo.dispatch_of(job_id)[1] == request_id[1]  # type: ignore[index]
    wait_for(lambda: len(live_runs(home, job_id)) == 1, "runs once")


# -- failover --------------------------------------------------------------------------


def test_a_dead_site_s_jobs_move_and_the_site_is_used_again(repo: Repository, home: Path) -> None:
    network, alive = two_sites(home)
    loop = ControlLoop(repo, settings(home), network)
    records = repo.create_dataset(ACME, DatasetSpec("records", 1.0, "a", classification="core"))
    pinned = submit(repo, "pinned", datasets=(records["id"],))
    plain = submit(repo, "plain")
    resumable = submit(
        repo,
        "resumable",
        "echo resume=${COMPUTENET_RESUME:-0} checkpoints=${COMPUTENET_CHECKPOINTS:-0}; " + SLEEP,
        checkpointable=True,
        checkpoint_interval_s=60,
    )
    loop.tick()
    running = [pinned, plain, resumable]
    assert {job(repo, i)["site_id"] for i in running} == {"a"}
    for i in running:
        wait_for(lambda i=i: started(home, i, 1), "started at a")
    planned_s = job(repo, plain)["end_s"] - job(repo, plain)["start_s"]
    # The checkpointable job has run 130 s at a: two checkpoints of 60 s are saved.
    repo.set_fields(resumable, run_started_s=now_s() - 130)
    waiting = submit(repo, "waiting")
    loop.plan_queued()  # placed at a, not yet started when a dies
    assert job(repo, waiting)["state"] == "placed" and job(repo, waiting)["site_id"] == "a"
    assert job(repo, waiting)["reasons"][0]["role"] == "placed"

    alive.unlink()  # a's engine stops answering
    loop.tick()
    assert actions(repo, "a") == ["site.down"]
    assert loop.health.down_sites() == {"a"}
    for i in (plain, resumable, waiting):
        j = job(repo, i)
        assert (j["state"], j["site_id"]) == ("running", "b"), j
        # Planned again at b: its reasons are b's placement, and a is named as down.
        assert j["reasons"][0]["site_id"] == "b", j["reasons"]
        assert {"code": "site_down", "role": "rejected", "site_id": "a"}.items() <= (
            j["reasons"][-1].items()
        ), j["reasons"]
    # Its data may not leave a: it waits for a instead of moving.
    p = job(repo, pinned)
    assert p["state"] == "submitted" and "down (a)" in p["message"]
    assert [(x["code"], x["role"], x["sites"]) for x in p["reasons"]] == [
        ("site_down", "deferred", ["a"])
    ]
    r = job(repo, resumable)
    assert r["checkpoints"] == 2 and r["work_done_h"] == pytest.approx(120 / planned_s)
    assert r["end_s"] - r["start_s"] < planned_s
    assert job(repo, plain)["checkpoints"] == 0
    states = [
        e["detail"].get("new")
        for e in reversed(repo.audit(ADMIN, object_id=resumable, limit=100, offset=0))
    ]
    assert states[-4:] == ["checkpointed", "submitted", "placed", "running"]
    b = loop.executors["b"]
    resumed = str(repo.dispatch_of(resumable)[1])  # type: ignore[index]
    wait_for(lambda: "resume=1" in b.output(resumed, None, 4096)[0], "resumed output")
    assert b.output(resumed, None, 4096)[0].startswith("resume=1 checkpoints=2")
    # a's processes are out of reach until a answers: each is a recorded stale run.
    assert sorted(s.job_id for s in repo.stale_runs("a")) == sorted([pinned, plain, resumable])

    alive.touch()  # a answers again
    loop.tick()
    assert actions(repo, "a") == ["site.down", "site.up"] and not loop.health.down_sites()
    assert repo.stale_runs("a") == []
    for i in (plain, resumable):  # the old run at a is gone: never twice at once
        wait_for(lambda i=i: len(live_runs(home, i)) == 1, f"{i} runs once")
        assert "job.stale_run" in actions(repo, i)
    assert (job(repo, pinned)["state"], job(repo, pinned)["site_id"]) == ("running", "a")
    later = submit(repo, "later")
    loop.tick()
    assert job(repo, later)["site_id"] == "a"  # the cheaper site is used again
    assert loop.metrics.failovers.labels("a")._value.get() == 4


def test_a_restart_in_the_middle_of_failover_ends_consistent(
    repo: Repository, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    network, alive = two_sites(home)
    first = ControlLoop(repo, settings(home), network)
    ids = [submit(repo, f"j{i}") for i in range(3)]
    first.tick()
    for i in ids:
        wait_for(lambda i=i: started(home, i, 1), "started at a")
    alive.unlink()
    moved: list[str] = []
    real = repo.replan_from_down_site

    def killed_after_one(job_id: str, *args: Any, **kw: Any) -> bool:
        if moved:
            raise SystemExit("killed")  # the service dies mid-failover (kill -9)
        moved.append(job_id)
        return real(job_id, *args, **kw)

    monkeypatch.setattr(repo, "replan_from_down_site", killed_after_one)
    with pytest.raises(SystemExit):
        first.tick()
    monkeypatch.undo()
    assert sorted(j["state"] for j in map(lambda i: job(repo, i), ids)) == [
        "running",
        "running",
        "submitted",
    ]
    second = ControlLoop(repo, settings(home), load_network(str(home / "net.toml")))
    assert second.health.down_sites() == {"a"}  # persisted: still down after the restart
    second.tick()
    for i in ids:
        assert (job(repo, i)["state"], job(repo, i)["site_id"]) == ("running", "b")
    alive.touch()
    second.tick()
    for i in ids:
        wait_for(lambda i=i: len(live_runs(home, i)) == 1, f"{i} runs once")
        assert len(list((home / "jobs").glob(f"{i}-*"))) == 2  # one run at a, one at b
    assert actions(repo, "a") == ["site.down", "site.up"] and repo.stale_runs("a") == []
