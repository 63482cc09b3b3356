"""The local executor's sandbox with real processes (run as root, as CI does): a tenant's
job cannot read the admin token, the database or another tenant's output; a job past its
walltime is stopped and reported failed; bad bytes are refused at the API while the other
jobs run; commands need the 'commands' permission; devices are never shared by two runs."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import pytest
from fastapi.testclient import TestClient
from tests.service.conftest import ADMIN

from computenet.api.app import create_app
from computenet.control.loop import ControlLoop
from computenet.errors import ExecutorRefused
from computenet.executors.base import Dispatch
from computenet.executors.local import LocalExecutor
from computenet.settings import Settings
from computenet.store.repository import Repository

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching jobs to their own uids needs root (CI runs as root)"
)
T = TypeVar("T")
FAST = {"grace_s": 1, "kill_after_s": 1}  # TERM 1 s past the walltime, KILL 1 s later


@pytest.fixture
def open_home() -> Iterator[Path]:
    """A data directory whose parents anyone may pass through (pytest's own tmp root is
    0700, which would hide the data directory from jobs whatever its own mode)."""
    parent = Path(tempfile.mkdtemp(prefix="cn-isolation-", dir="/var/tmp"))
    parent.chmod(0o755)
    try:
        yield parent / "home"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@dataclass
class Service:
    client: TestClient
    loop: ControlLoop
    executor: LocalExecutor
    home: Path

    def tenant(self, name: str, *, commands: bool = True) -> dict[str, str]:
        body = {"name": name, "permissions": ["commands"] if commands else []}
        r = self.client.post("/v1/tenants", json=body, headers=auth(ADMIN))
        assert r.status_code == 201, r.text
        return auth(r.json()["token"])

    def submit(self, headers: dict[str, str], command: str, duration_h: float = 0.01) -> str:
        body = {"name": "j", "accelerators": 1, "duration_h": duration_h, "command": command}
        r = self.client.post("/v1/jobs", json=body, headers=headers)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def job(self, job_id: str) -> dict[str, object]:
        r = self.client.get(f"/v1/jobs/{job_id}", headers=auth(ADMIN))
        return dict(r.json())

    def run_dir(self, job_id: str) -> Path:
        return wait_for(lambda: next((self.home / "jobs").glob(f"{job_id}-*"), None))

    def drive(self, job_ids: list[str], until: set[str]) -> dict[str, dict[str, object]]:
        """Tick the loop until every job is in one of ``until`` (bounded)."""
        for _ in range(600):
            self.loop.tick()
            jobs = {j: self.job(j) for j in job_ids}
            if all(job["state"] in until for job in jobs.values()):
                return jobs
            time.sleep(0.05)
        raise AssertionError(f"stuck: { {j: self.job(j)['state'] for j in job_ids} }")


@pytest.fixture
def service(open_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    # The server's environment holds the admin token, as `computenet serve` has it.
    monkeypatch.setenv("COMPUTENET_ADMIN_TOKEN", ADMIN)
    settings = Settings(
        db_url=f"sqlite:///{open_home / 'computenet.db'}",
        home=open_home,
        admin_token=ADMIN,
        run_loop=False,
        executor="local",
    )
    executor = LocalExecutor("local", FAST, open_home)
    with TestClient(create_app(settings)) as client:
        st = client.app.state.service  # type: ignore[attr-defined]
        repo: Repository = st.repo
        # No network: the loop places every job on the fallback site "local", which the
        # API (output, cancel) must reach through the same executor.
        st.executors["local"] = executor
        loop = ControlLoop(repo, settings, network=None, executors={"local": executor})
        yield Service(client, loop, executor, open_home)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(found: Callable[[], T | Literal[False, ""] | None]) -> T:
    """What ``found`` answers once it answers something (bounded: 8 s)."""
    for _ in range(400):
        value = found()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("never appeared")


def test_a_job_cannot_read_the_token_the_database_or_another_tenants_files(
    service: Service,
) -> None:
    alice, bob = service.tenant("alice"), service.tenant("bob")
    secret = "bob-secret-" + os.urandom(6).hex()
    bobs = service.submit(bob, f"echo {secret}; echo {secret} > mine; sleep 30")
    service.drive([bobs], {"running"})
    bob_dir = service.run_dir(bobs)
    bob_pid = int(wait_for(lambda: (bob_dir / "pid").exists() and (bob_dir / "pid").read_text()))
    wait_for(lambda: (bob_dir / "work" / "mine").exists())
    db = service.home / "computenet.db"
    probes = [
        'echo "token=[$COMPUTENET_ADMIN_TOKEN]"',
        "env | grep -c ADMIN_TOKEN",
        f"cat {db}",
        f"ls {service.home}",
        f"ls {service.home / 'jobs'}",
        f"cat {bob_dir / 'output.log'}",
        f"cat {bob_dir / 'work' / 'mine'}",
        f"cat /proc/{bob_pid}/environ",
        f"ls /proc/{bob_pid}/cwd/",
        f"kill -9 {bob_pid}",
        'cd "$HOME" && echo "own workspace by its absolute path: ok"',
    ]
    alices = service.submit(alice, "\n".join(probes))
    done = service.drive([alices], {"succeeded", "failed"})[alices]
    out = service.client.get(f"/v1/jobs/{alices}/output", headers=alice).json()["output"]
    assert "token=[]" in out and ADMIN not in out
    assert secret not in out and "SQLite format" not in out
    # cat db, ls home, ls jobs, cat output, cat mine, /proc environ, /proc cwd: all refused
    assert out.count("Permission denied") == 7, out
    assert "Operation not permitted" in out  # the kill of bob's job
    assert "own workspace by its absolute path: ok" in out
    assert done["state"] == "succeeded"
    # The modes that do it: nobody may list the data directory or read the database.
    assert service.home.stat().st_mode & 0o777 == 0o711
    assert (service.home / "jobs").stat().st_mode & 0o777 == 0o711
    assert db.stat().st_mode & 0o777 == 0o600
    assert (bob_dir / "output.log").stat().st_mode & 0o777 == 0o600
    work = bob_dir / "work"
    assert work.stat().st_mode & 0o777 == 0o700 and work.stat().st_uid != 0
    assert service.job(bobs)["state"] == "running"  # untouched by alice's job
    service.client.post(f"/v1/jobs/{bobs}/cancel", headers=bob)
    service.drive([bobs], {"cancelled"})


def test_a_job_past_its_walltime_is_stopped_and_reported_failed(service: Service) -> None:
    """Declared for about a second, as the issue's user did with sleep 25: TERM one second
    past it; a job that traps TERM gets KILL a second later; a quick job is untouched."""
    tenant = service.tenant("t")
    short_h = 1.5 / 3600  # the loop's walltime: int(1.5) = 1 s
    sleeper = service.submit(tenant, "sleep 25", short_h)
    stubborn = service.submit(
        tenant, "trap 'echo got TERM' TERM\nwhile true; do sleep 0.2; done", short_h
    )
    quick = service.submit(tenant, "echo fine", short_h)
    started = time.monotonic()
    jobs = service.drive([sleeper, stubborn, quick], {"succeeded", "failed"})
    assert time.monotonic() - started < 20  # far below the 25 s the command asked for
    assert jobs[sleeper]["state"] == "failed" and jobs[sleeper]["exit_code"] == 143
    assert "exceeded its walltime of 1 s" in str(jobs[sleeper]["message"])
    assert "ended on TERM" in str(jobs[sleeper]["message"])
    assert jobs[stubborn]["state"] == "failed" and jobs[stubborn]["exit_code"] == 137
    assert "ignored TERM and was killed" in str(jobs[stubborn]["message"])
    out = service.client.get(f"/v1/jobs/{stubborn}/output", headers=tenant).json()["output"]
    assert "got TERM" in out
    assert jobs[quick]["state"] == "succeeded" and jobs[quick]["exit_code"] == 0


def test_control_characters_are_422_naming_the_field_while_other_jobs_run(
    service: Service,
) -> None:
    tenant = service.tenant("t")
    good = [service.submit(tenant, f"echo good {i}") for i in range(2)]
    bad = [
        ({"command": "echo a\x00b"}, "command", "a NUL byte at position 6"),
        ({"name": "evil\x1b[2J"}, "name", "U+001B"),
        ({"command": "echo\r"}, "command", "U+000D"),
        ({"datasets": ["d\x00"]}, "datasets.0", "NUL"),
    ]
    for patch, field, words in bad:
        body = {"name": "j", "accelerators": 1, "duration_h": 0.01} | patch
        r = service.client.post("/v1/jobs", json=body, headers=tenant)
        assert r.status_code == 422, r.text
        assert [f["field"] for f in r.json()["fields"]] == [field]
        assert words in r.json()["detail"]
    good.append(service.submit(tenant, "printf 'tab\\there\\n'\necho second line"))
    dataset = {"name": "x\x00", "size_gb": 1.0, "home_site": "local"}
    r = service.client.post("/v1/datasets", json=dataset, headers=tenant)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "name"
    jobs = service.drive(good, {"succeeded", "failed"})
    assert {j["state"] for j in jobs.values()} == {"succeeded"}
    out = service.client.get(f"/v1/jobs/{good[-1]}/output", headers=tenant).json()["output"]
    assert out == "tab\there\nsecond line\n"


def test_the_cli_refuses_control_characters_naming_the_flag() -> None:
    from typer.testing import CliRunner

    from computenet.cli.app import app
    from computenet.cli.main import main as _register  # noqa: F401 (registers the commands)
    from computenet.errors import InputError

    result = CliRunner().invoke(app, ["submit", "j", "--command", "echo \x00"], env={})
    assert isinstance(result.exception, InputError)
    assert "--command" in str(result.exception) and "NUL" in str(result.exception)


def test_the_executor_refuses_what_it_cannot_run(open_home: Path) -> None:
    ex = LocalExecutor("local", {"devices": ["0", "1"]}, open_home)
    with pytest.raises(ExecutorRefused, match="NUL byte"):
        ex.submit(Dispatch("r1", "j", "t", "echo \x00", 1, None, walltime_s=10))
    with pytest.raises(ExecutorRefused, match="needs 3 devices and site local has 2"):
        ex.submit(Dispatch("r2", "j", "t", "true", 3, None, walltime_s=10))
    assert not (open_home / "jobs" / "r1").exists()


def test_commands_need_the_permission_an_admin_grants(service: Service) -> None:
    c = service.client
    tenant = service.tenant("plain", commands=False)
    job = {"name": "j", "accelerators": 1, "duration_h": 0.01}
    r = c.post("/v1/jobs", json=job | {"command": "id"}, headers=tenant)
    assert r.status_code == 403
    detail = r.json()["detail"]
    assert "'commands' permission" in detail and "/permissions" in detail
    assert c.post("/v1/jobs", json=job, headers=tenant).status_code == 201  # no command: fine
    (row,) = [t for t in c.get("/v1/tenants", headers=auth(ADMIN)).json() if t["name"] == "plain"]
    assert row["permissions"] == []
    put = f"/v1/tenants/{row['id']}/permissions"
    assert c.put(put, json={"commands": True}, headers=tenant).status_code == 403  # admin only
    assert c.put(put, json={"sudo": True}, headers=auth(ADMIN)).status_code == 422
    assert c.put("/v1/tenants/t_nope/permissions", json={}, headers=auth(ADMIN)).status_code == 404
    granted = c.put(put, json={"commands": True}, headers=auth(ADMIN))
    assert granted.status_code == 200 and granted.json()["permissions"] == ["commands"]
    assert c.post("/v1/jobs", json=job | {"command": "id"}, headers=tenant).status_code == 201
    c.put(put, json={"commands": False}, headers=auth(ADMIN))
    assert c.post("/v1/jobs", json=job | {"command": "id"}, headers=tenant).status_code == 403
    log = c.get(f"/v1/audit?object_id={row['id']}", headers=auth(ADMIN)).json()
    changes = [(e["action"], e["detail"].get("granted"), e["detail"].get("revoked")) for e in log]
    assert changes == [
        ("tenant.permissions", [], ["commands"]),
        ("tenant.permissions", ["commands"], []),
        ("tenant.create", None, None),
    ]


def test_devices_are_never_shared_by_two_runs(open_home: Path) -> None:
    """Three fake devices, gangs of 2 and 1: runs that overlap in time hold disjoint
    devices, a gang waits (pending) while too few are free, and a second executor on the
    same data directory (a restarted server) sees the first one's allocations."""
    options = FAST | {"devices": ["0", "1", "2"]}
    executors = [LocalExecutor("local", options, open_home) for _ in range(2)]
    gangs = [2, 1, 2, 1, 2, 2]
    stamp = 'echo "$CUDA_VISIBLE_DEVICES"; date +%s.%N; sleep 0.4; date +%s.%N'
    runs = []
    for i, (gang, ex) in enumerate(zip(gangs, itertools.cycle(executors), strict=False)):
        ex.submit(Dispatch(f"r{i}", f"j{i}", "t", stamp, gang, None, walltime_s=30))
        runs.append((f"r{i}", gang, ex))
    seen_pending = False
    for _ in range(600):
        statuses = [ex.poll(r, None) for r, _, ex in runs]
        seen_pending |= any(s.message.startswith("waiting: ") for s in statuses)
        if all(s.status == "succeeded" for s in statuses):
            break
        time.sleep(0.02)
    else:
        raise AssertionError([ex.poll(r, None) for r, _, ex in runs])
    held = []
    for request_id, gang, ex in runs:
        devices, start, end = ex.output(request_id, None, 1000)[0].split()
        assert len(set(devices.split(","))) == gang
        held.append((set(devices.split(",")), float(start), float(end)))
    for (d1, s1, e1), (d2, s2, e2) in itertools.combinations(held, 2):
        if s1 < e2 and s2 < e1:  # overlapping in time
            assert not d1 & d2, (d1, d2)
    assert seen_pending
    assert list((open_home / "jobs" / ".alloc" / "devices").iterdir()) == []  # all released


def test_what_a_run_leaves_behind_is_killed_with_it(open_home: Path) -> None:
    """A process that left the job's process group (setsid) still dies when the run ends:
    the supervisor kills every process of the run's own uid."""
    from computenet.executors.local import _alive

    ex = LocalExecutor("local", FAST, open_home)
    ex.submit(Dispatch("r", "j", "t", "setsid sleep 300 & echo $!", 1, None, walltime_s=30))
    assert wait_for(lambda: ex.poll("r", None).status == "succeeded")
    escaped = int(ex.output("r", None, 100)[0])
    assert wait_for(lambda: not _alive(escaped))


def test_the_executor_says_what_to_fix_when_it_cannot_sandbox(
    open_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from computenet.errors import InputError

    with pytest.raises(InputError, match="useradd --system"):
        LocalExecutor("local", {"user": "no-such-run-user"}, open_home)
    with pytest.raises(InputError, match="uid_range"):
        LocalExecutor("local", {"uid_range": [5, 1]}, open_home)
    # A non-root server cannot switch users (Python lives under /root here, so no non-root
    # process can run it: the effective uid is what the check reads).
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(InputError, match="allow_same_user = true"):
        LocalExecutor("local", {}, open_home)
    same = LocalExecutor("local", {"allow_same_user": True}, open_home)
    assert not same.sandbox.switch_user and same.sandbox.uid is None


def test_a_run_cancelled_while_waiting_for_devices_never_starts(open_home: Path) -> None:
    ex = LocalExecutor("local", FAST | {"devices": ["7"]}, open_home)
    ex.submit(Dispatch("holder", "j1", "t", "sleep 2", 1, None, walltime_s=30))
    assert wait_for(lambda: ex.poll("holder", None).status == "running")  # it holds "7"
    ex.submit(Dispatch("waiter", "j2", "t", "echo ran", 1, None, walltime_s=30))
    waiting = wait_for(lambda: (s := ex.poll("waiter", None)).message.startswith("wait") and s)
    assert waiting.status == "pending"
    assert waiting.message == "waiting: 0 of the 1 devices it needs are free"
    ex.cancel("waiter", None)
    assert ex.poll("waiter", None).status == "cancelled"
    assert wait_for(lambda: ex.poll("holder", None).status == "succeeded")
    assert ex.output("waiter", None, 100) == ("", False)  # it never ran
    assert list((open_home / "jobs" / ".alloc" / "devices").iterdir()) == []
