"""The stored ledger on SQLite and PostgreSQL: the same rules as the in-memory one,
append-only, idempotent under retry, balances equal to a replay."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.market.test_ledger_rules import transactions

from computenet.errors import ConflictError
from computenet.market.ledger import Ledger, Posting, Transaction, charge, replay
from computenet.store.ledger import LedgerStore
from computenet.store.repository import migrate, open_engine

EXAMPLES = itertools.count()


@pytest.fixture
def store(db_url: str) -> LedgerStore:
    engine = open_engine(db_url)
    migrate(engine)
    return LedgerStore(engine)


def test_post_read_back_and_retry(store: LedgerStore) -> None:
    tx = charge("job:j1:run:1", 100, "a", "p", 12_345, 617, memo="job j1", refs={"job": "j1"})
    assert store.post(tx) is True
    assert store.post(tx) is False  # the retry
    assert store.counts() == {"transactions": 1, "postings": 3}
    assert store.balances() == {"platform:fees": 617, "provider:p": 11_728, "tenant:a": -12_345}
    assert store.trial_balance() == 0 and store.unbalanced() == []
    (back,) = store.transactions(account="tenant:a")
    assert back.content_hash == tx.content_hash and back.refs == {"job": "j1"}
    other = charge("job:j1:run:1", 100, "a", "p", 99_999, 0)
    with pytest.raises(ConflictError, match="already posted"):
        store.post(other)
    assert store.counts()["transactions"] == 1


def test_a_batch_is_all_or_nothing(store: LedgerStore) -> None:
    good = charge("g1", 0, "a", "p", 100, 0)
    clash = charge("g1", 0, "a", "p", 200, 0)
    with pytest.raises(ConflictError):
        store.post_many([good, clash])
    assert store.counts() == {"transactions": 0, "postings": 0}
    assert store.post_many([good, good, charge("g2", 0, "b", "p", 5, 0)]) == [True, False, True]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(transactions(), max_size=12))
def test_stored_balances_equal_the_reference_and_a_replay(
    store: LedgerStore, txs: list[Transaction]
) -> None:
    """The store outlives hypothesis's examples: each example's keys are its own, and what
    it adds to the balances is what the in-memory reference says."""
    reference = Ledger()
    run = next(EXAMPLES)
    for tx in txs:
        mine = Transaction(f"{run}:{tx.key}", tx.at_s, tx.kind, tx.postings)
        try:
            reference.post(mine)
        except ConflictError:
            continue
    before = store.balances()
    store.post_many(reference.transactions())
    store.post_many(reference.transactions())  # the whole batch retried: nothing more
    after = store.balances()
    added = {a: after.get(a, 0) - before.get(a, 0) for a in set(after) | set(before)}
    assert {a: x for a, x in added.items() if x} == replay(reference.transactions())
    assert after == replay(store.transactions())
    assert store.trial_balance() == 0 and store.unbalanced() == []


def test_postings_sum_to_zero_per_transaction_in_sql(store: LedgerStore) -> None:
    store.post(
        Transaction("d", 0, "deposit", (Posting("platform:cash", -700), Posting("tenant:a", 700)))
    )
    assert store.unbalanced() == []


def test_group_commit_acknowledges_each_post_and_isolates_a_bad_one(store: LedgerStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from computenet.store.ledger import GroupCommitWriter

    writer = GroupCommitWriter(store)
    txs = [charge(f"gc{i}", i, "a", "p", 100 + i, 5) for i in range(200)]
    clash = charge("gc7", 7, "a", "p", 1, 0)  # key gc7 with other content
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(writer.post, txs))
            failed = pool.submit(writer.post, clash)
            assert all(results)
            with pytest.raises(ConflictError):
                failed.result()
        assert writer.post(txs[0]) is False  # a retry after the commit
    finally:
        writer.close()
    assert store.counts()["transactions"] >= 200 and store.trial_balance() == 0
