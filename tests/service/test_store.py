"""The store on SQLite and PostgreSQL: migrations match the models, the lifecycle table is
enforced, and state changes are written to the audit log in the same transaction."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from computenet.control.lifecycle import STATES, TERMINAL, TRANSITIONS, check_transition
from computenet.errors import ConflictError
from computenet.store.models import Base
from computenet.store.repository import JobSpec, Principal, Repository, migrate, open_engine


def test_migrations_build_exactly_the_models(db_url: str) -> None:
    engine = open_engine(db_url)
    migrate(engine)
    migrate(engine)  # applying twice is a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_lifecycle_table_is_closed_and_final_states_are_final() -> None:
    assert {a for a, _ in TRANSITIONS} | {b for _, b in TRANSITIONS} <= set(STATES)
    assert not [edge for edge in TRANSITIONS if edge[0] in TERMINAL]
    for old in STATES:
        for new in STATES:
            if (old, new) in TRANSITIONS:
                check_transition("j", old, new)
            else:
                with pytest.raises(ConflictError, match="cannot go from"):
                    check_transition("j", old, new)


def test_repository_refuses_an_edge_not_in_the_table(db_url: str) -> None:
    engine = open_engine(db_url)
    migrate(engine)
    repo = Repository(engine)
    who = Principal("t_a", "tenant")
    job, _ = repo.submit_batch([(who, JobSpec("x", 1, 1.0), None)])[0]
    assert repo.transition(job["id"], "running") is False  # submitted -> running: no edge
    assert repo.transition(job["id"], "placed") is True
    assert repo.transition(job["id"], "placed") is False  # already there: nothing to do
    repo.cancel_job(who, job["id"])
    assert repo.transition(job["id"], "succeeded") is False  # cancelled is final
    assert repo.get_job(who, job["id"])["state"] == "cancelled"
    done, _ = repo.submit_batch([(who, JobSpec("y", 1, 1.0), None)])[0]
    for step in ("placed", "running", "succeeded"):
        assert repo.transition(done["id"], step)
    with pytest.raises(ConflictError, match="it is final"):
        repo.cancel_job(who, done["id"])  # the API answers 409
    log = repo.audit(Principal("admin", "admin"), object_id=job["id"], limit=10, offset=0)
    assert [(e["actor"], e["detail"].get("new")) for e in reversed(log)] == [
        ("t_a", None),
        ("system", "placed"),
        ("t_a", "cancelled"),
    ]


def test_same_key_in_one_batch_and_in_racing_batches_is_one_job(db_url: str) -> None:
    import threading

    engine = open_engine(db_url)
    migrate(engine)
    repo = Repository(engine)
    who = Principal("t_a", "tenant")
    spec = JobSpec("x", 1, 1.0)
    out = repo.submit_batch([(who, spec, "k1"), (who, spec, "k1"), (who, spec, None)])
    assert [created for _, created in out] == [True, False, True]
    assert out[0][0]["id"] == out[1][0]["id"]
    # Many writers at once with one key (as two servers would): exactly one job.
    results: list[tuple[dict, bool]] = []
    lock = threading.Lock()

    def submit() -> None:
        got = repo.submit_batch([(who, spec, "k2"), (who, spec, None)])
        with lock:
            results.append(got[0])

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({job["id"] for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    items, total = repo.list_jobs(who, limit=100)
    assert total == 2 + 8 + 1 and sum(1 for j in items if j["idempotency_key"] == "k2") == 1
