"""The leader lease on SQLite and PostgreSQL: one holder at a time, takeover only once the
lease lapsed, a fence that stops a deposed loop's dispatches, and a clean release."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from computenet.control.leader import Leadership
from computenet.control.loop import ControlLoop
from computenet.errors import InputError
from computenet.settings import Settings
from computenet.store.repository import (
    Holder,
    JobSpec,
    Principal,
    Repository,
    migrate,
    open_engine,
)

A = Holder("host-a:1:aaaa", "host-a", 1)
B = Holder("host-b:2:bbbb", "host-b", 2)
ADMIN = Principal("admin", "admin")


@pytest.fixture
def repo(db_url: str) -> Repository:
    engine = open_engine(db_url)
    migrate(engine)
    return Repository(engine)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def lapse(repo: Repository) -> None:
    """Wait (on the database's clock) until the current lease has lapsed."""
    for _ in range(200):
        lease = repo.leader_lease()
        if not lease.live:
            return
        time.sleep(max(0.01, lease.expires_s - lease.now_s))
    raise AssertionError("the lease never lapsed")


def placed_job(repo: Repository, name: str) -> str:
    job, _ = repo.submit_batch([(Principal("t_acme", "tenant"), JobSpec(name, 1, 0.01), None)])[0]
    repo.transition(job["id"], "placed", site_id="local", start_s=0, end_s=36)
    return str(job["id"])


def test_one_holder_until_its_lease_lapses(repo: Repository) -> None:
    first = repo.take_leadership(A, lease_s=0.3)
    assert first.holder == A and first.generation == 1 and first.live
    # While A's lease runs, B stays standby and renewals keep A's generation.
    assert repo.take_leadership(B, lease_s=0.3).holder == A
    assert repo.take_leadership(A, lease_s=0.3).generation == 1
    lapse(repo)
    taken = repo.take_leadership(B, lease_s=10.0)
    assert taken.holder == B and taken.generation == 2
    assert repo.take_leadership(A, lease_s=10.0).holder == B  # A cannot take it back
    audit = repo.audit(ADMIN, object_id=None, limit=10, offset=0)
    takeovers = [e for e in audit if e["action"] == "loop.leader"]
    assert [(e["object_id"], e["detail"]["previous"]) for e in takeovers] == [
        (B.id, A.id),
        (A.id, None),
    ]


def test_the_fence_stops_a_deposed_leaders_dispatch(repo: Repository) -> None:
    repo.take_leadership(A, lease_s=0.3)
    first, second = placed_job(repo, "one"), placed_job(repo, "two")
    assert repo.set_dispatch(first, "local", "d1", fence=(A.id, 1))
    lapse(repo)
    # A's lease lapsed: its fence no longer holds even before anyone takes over ...
    assert not repo.set_dispatch(second, "local", "d2", fence=(A.id, 1))
    repo.take_leadership(B, lease_s=10.0)
    # ... nor after, and the new generation dispatches.
    assert not repo.set_dispatch(second, "local", "d2", fence=(A.id, 1))
    assert repo.set_dispatch(second, "local", "d3", fence=(B.id, 2))
    generations = {j.id: (j.dispatch_id, j.dispatch_generation) for j in repo.jobs_in(["placed"])}
    assert generations == {first: ("d1", 1), second: ("d3", 2)}


def test_takeover_voids_the_claims_of_the_previous_holder(repo: Repository) -> None:
    repo.take_leadership(A, lease_s=0.3)
    job_id = placed_job(repo, "claimed")
    assert [r.id for r in repo.claim("loop-a", ["placed"], 30, 10)] == [job_id]
    lapse(repo)
    repo.take_leadership(B, lease_s=10.0)  # A died holding the claim for 30 s more
    assert [r.id for r in repo.claim("loop-b", ["placed"], 30, 10)] == [job_id]


def test_a_holder_stops_on_its_own_clock_before_the_lease_ends(repo: Repository) -> None:
    clock = Clock()
    lead = Leadership(repo, lease_s=10.0, renew_s=2.0, holder=A, clock=clock)
    assert lead.renew() and lead.leads() and lead.fence() == (A.id, 1)
    clock.t += 9.9
    assert lead.leads()
    clock.t += 0.1  # no renewal came through (say the database is unreachable): it stops
    assert not lead.leads() and lead.fence() is None


def test_release_hands_over_at_once(repo: Repository) -> None:
    a = Leadership(repo, lease_s=10.0, renew_s=2.0, holder=A)
    b = Leadership(repo, lease_s=10.0, renew_s=2.0, holder=B)
    assert a.renew() and not b.renew()
    a.release()
    assert not a.leads()
    assert b.renew() and b.fence() == (B.id, 2)


def test_only_the_leaders_loop_dispatches(repo: Repository, tmp_path: Path) -> None:
    settings = Settings(db_url="unused", home=tmp_path, run_loop=False)
    a = Leadership(repo, lease_s=10.0, renew_s=2.0, holder=A)
    b = Leadership(repo, lease_s=10.0, renew_s=2.0, holder=B)
    assert a.renew()
    assert not b.renew()
    loop_b = ControlLoop(repo, settings, network=None, leadership=b)
    job_id = placed_job(repo, "x")
    loop_b.dispatch_due()  # B is standby: its dispatch step stops before the first job
    assert repo.dispatch_of(job_id) is None
    loop_a = ControlLoop(repo, settings, network=None, leadership=a)
    loop_a.dispatch_due()
    assert repo.dispatch_of(job_id) is not None
    assert [j.dispatch_generation for j in repo.jobs_in(["running"])] == [1]


@pytest.mark.parametrize(
    ("lease_s", "renew_s", "flag"), [(1.0, 0.0, "--leader-renew"), (3.0, 2.0, "--leader-lease")]
)
def test_bad_timing_names_the_flag(lease_s: float, renew_s: float, flag: str) -> None:
    with pytest.raises(InputError, match=flag):
        Leadership(None, lease_s=lease_s, renew_s=renew_s)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_processes_starting_at_once_migrate_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Several serve processes started together against a fresh database: one migrates,
    the others wait for it and find the schema at head."""
    import threading
    import uuid

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        import psycopg

        admin: str = request.getfixturevalue("pg_server")
        name = "cn_test_mig_" + uuid.uuid4().hex[:8]
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        request.addfinalizer(lambda: _drop(admin, name))
        url = admin.rsplit("/", 1)[0] + "/" + name
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def one() -> None:
        try:
            engine = open_engine(url)
            start.wait()
            migrate(engine)
            engine.dispose()
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Repository(open_engine(url)).take_leadership(A, 1.0).holder == A


def _drop(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_api_only_process_shows_who_leads(repo: Repository, db_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from computenet.api.app import create_app

    repo.take_leadership(A, lease_s=30.0)
    app = create_app(Settings(db_url=db_url, home=tmp_path, run_loop=False))
    with TestClient(app) as client:
        leader = client.get("/healthz").json()["leader"]
        metrics = client.get("/metrics").text
    assert leader["holder"] == A.id and leader["host"] == A.host and leader["generation"] == 1
    assert leader["this_process"] is False and leader["candidate"] is False
    assert "computenet_loop_leader 0.0" in metrics
