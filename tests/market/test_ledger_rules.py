"""The ledger's rules, by property: every transaction balances, the trial balance is always
0, a replay equals the live balances, and a retry never posts twice."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from computenet.errors import ConflictError, InputError
from computenet.market.ledger import (
    Ledger,
    Posting,
    Transaction,
    charge,
    check,
    fee_fen,
    refund,
    replay,
    statement_rows,
)

ACCOUNTS = ["tenant:a", "tenant:b", "provider:p", "provider:q", "platform:fees", "platform:cash"]


@st.composite
def transactions(draw: st.DrawFn, key: str | None = None) -> Transaction:
    """A balanced transaction over random accounts: n-1 random amounts and one that
    balances them."""
    n = draw(st.integers(2, 5))
    accounts = draw(st.lists(st.sampled_from(ACCOUNTS), min_size=n, max_size=n))
    amounts = draw(
        st.lists(st.integers(-(10**9), 10**9).filter(bool), min_size=n - 1, max_size=n - 1)
    )
    last = -sum(amounts)
    if last == 0:
        amounts[0] += 1
        last = -sum(amounts)
    postings = tuple(Posting(a, x) for a, x in zip(accounts, [*amounts, last], strict=True))
    k = key or draw(st.text("abcdefgh0123456789", min_size=1, max_size=6))
    return Transaction(k, draw(st.integers(0, 2**40)), "adjustment", postings)


@settings(max_examples=200)
@given(st.lists(transactions(), max_size=40), st.randoms(use_true_random=False))
def test_trial_balance_is_zero_replay_equals_live_and_retries_do_not_post_twice(
    txs: list[Transaction], rnd
) -> None:
    ledger = Ledger()
    posted: dict[str, Transaction] = {}
    for tx in txs:
        if tx.key in posted and posted[tx.key].content_hash != tx.content_hash:
            with pytest.raises(ConflictError):
                ledger.post(tx)
        else:
            assert ledger.post(tx) is (tx.key not in posted)
            posted.setdefault(tx.key, tx)
        assert ledger.trial_balance() == 0
    # A retry storm: every accepted transaction posted again, in any order.
    again = list(posted.values())
    rnd.shuffle(again)
    assert not any(ledger.post(tx) for tx in again)
    assert ledger.balances() == replay(ledger.transactions()) == replay(posted.values())
    assert all(sum(p.amount_fen for p in tx.postings) == 0 for tx in ledger.transactions())


@given(st.integers(1, 10**12), st.integers(0, 10_000))
def test_a_charge_balances_and_the_fee_is_what_was_asked(amount: int, bp: int) -> None:
    fee = fee_fen(amount, bp)
    tx = charge("k", 0, "a", "p", amount, fee)
    ledger = Ledger()
    ledger.post(tx)
    assert ledger.balances().get("tenant:a") == -amount
    assert ledger.balances().get("provider:p", 0) == amount - fee
    assert ledger.balances().get("platform:fees", 0) == fee
    ledger.post(refund(tx, "k-refund", 1))
    assert ledger.balances() == {} and ledger.trial_balance() == 0


@pytest.mark.parametrize(
    ("postings", "field"),
    [
        ((Posting("tenant:a", -100), Posting("provider:p", 99)), "postings"),
        ((Posting("tenant:a", -100),), "postings"),
        ((Posting("tenant:a", 0), Posting("provider:p", 0)), r"postings\[0\].amount_fen"),
        ((Posting("bank:x", -1), Posting("provider:p", 1)), r"postings\[0\].account"),
        ((Posting("tenant:a", -1.5), Posting("provider:p", 1.5)), r"postings\[0\].amount_fen"),  # type: ignore[arg-type]
    ],
)
def test_broken_transactions_are_refused_naming_the_field(postings, field: str) -> None:
    with pytest.raises(InputError, match=field):
        check(Transaction("k", 0, "adjustment", postings))


def test_statement_runs_the_balance() -> None:
    ledger = Ledger()
    ledger.post(
        Transaction(
            "d1", 0, "deposit", (Posting("platform:cash", -5000), Posting("tenant:a", 5000))
        )
    )
    ledger.post(charge("c1", 10, "a", "p", 3000, 150, memo="job j1"))
    rows = statement_rows(ledger.transactions(), "tenant:a")
    assert [r["balance_fen"] for r in rows] == [5000, 2000]
    assert rows[1]["memo"] == "job j1"
