"""The ledger's persistence: append-only transactions and postings in the service database.

The rules live in ``computenet.market.ledger``; this module only stores what they accept.
A batch of transactions is written in one database transaction, so it is acknowledged
whole or not at all; a key already stored with the same content is skipped (a retry), with
other content refused. Nothing here updates or deletes a ledger row.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from computenet.errors import ConflictError
from computenet.market.ledger import Posting, Transaction, check
from computenet.store.models import LedgerPostingRow, LedgerTransactionRow


class LedgerStore:
    """Post and read ledger transactions. Safe to share between threads and processes."""

    def __init__(self, engine: Engine) -> None:
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.writes = sessionmaker(
            engine.execution_options(sqlite_write=True), expire_on_commit=False
        )

    def post(self, tx: Transaction, actor: str = "system") -> bool:
        """Post one transaction; False when its key was already posted (same content)."""
        return self.post_many([tx], actor)[0]

    def post_many(self, txs: Sequence[Transaction], actor: str = "system") -> list[bool]:
        """Post a batch in one database transaction; per transaction, whether it was new.
        A concurrent writer posting one of the same keys makes this retry once."""
        try:
            return self._post_many(txs, actor)
        except IntegrityError:  # another process posted one of these keys in between
            return self._post_many(txs, actor)

    def _post_many(self, txs: Sequence[Transaction], actor: str) -> list[bool]:
        with self.writes.begin() as s:
            return self.post_in(s, txs, actor)

    def post_in(self, s: Session, txs: Sequence[Transaction], actor: str) -> list[bool]:
        """Post inside the caller's database transaction (an order's commit and its charge
        are one transaction); per transaction, whether it was new."""
        for tx in txs:
            check(tx)
        stored = self._stored_hashes(s, [tx.key for tx in txs])
        new: dict[str, Transaction] = {}
        for tx in txs:
            seen = stored.get(tx.key) or (new[tx.key].content_hash if tx.key in new else None)
            if seen is not None and seen != tx.content_hash:
                raise ConflictError(
                    f"transaction key {tx.key!r} was already posted with other postings"
                )
            if seen is None:
                new[tx.key] = tx
        if new:
            self._insert(s, list(new.values()), actor)
        fresh = set(new)
        out = []
        for tx in txs:  # the first occurrence of a new key counts as posted
            out.append(tx.key in fresh)
            fresh.discard(tx.key)
        return out

    @staticmethod
    def _stored_hashes(s: Session, keys: list[str]) -> dict[str, str]:
        q = select(LedgerTransactionRow.key, LedgerTransactionRow.content_hash).where(
            LedgerTransactionRow.key.in_(keys)
        )
        return {k: h for k, h in s.execute(q)}

    @staticmethod
    def _insert(s: Session, txs: list[Transaction], actor: str) -> None:
        rows = [
            {
                "key": tx.key,
                "at_s": tx.at_s,
                "kind": tx.kind,
                "memo": tx.memo,
                "refs": dict(tx.refs),
                "content_hash": tx.content_hash,
                "recorded_by": actor,
            }
            for tx in txs
        ]
        returned = s.execute(
            insert(LedgerTransactionRow).returning(
                LedgerTransactionRow.seq, LedgerTransactionRow.key, sort_by_parameter_order=True
            ),
            rows,
        )
        seq_of = {key: seq for seq, key in returned}
        postings = [
            {"tx_seq": seq_of[tx.key], "account": p.account, "amount_fen": p.amount_fen}
            for tx in txs
            for p in tx.postings
        ]
        s.execute(insert(LedgerPostingRow), postings)

    # -- reading ------------------------------------------------------------------------

    def balances(self, accounts: Sequence[str] | None = None) -> dict[str, int]:
        """Each account's balance in fen (accounts at 0 left out)."""
        q = select(LedgerPostingRow.account, func.sum(LedgerPostingRow.amount_fen)).group_by(
            LedgerPostingRow.account
        )
        if accounts is not None:
            q = q.where(LedgerPostingRow.account.in_(list(accounts)))
        with self.sessions() as s:
            return {a: int(b) for a, b in sorted(s.execute(q)) if int(b) != 0}

    def trial_balance(self) -> int:
        """The sum of every posting: 0 in a sound ledger."""
        with self.sessions() as s:
            return int(
                s.scalar(select(func.coalesce(func.sum(LedgerPostingRow.amount_fen), 0))) or 0
            )

    def unbalanced(self) -> list[str]:
        """Keys of stored transactions whose postings do not sum to 0 (none, ever)."""
        q = (
            select(LedgerTransactionRow.key)
            .join(LedgerPostingRow, LedgerPostingRow.tx_seq == LedgerTransactionRow.seq)
            .group_by(LedgerTransactionRow.key)
            .having(func.sum(LedgerPostingRow.amount_fen) != 0)
        )
        with self.sessions() as s:
            return list(s.scalars(q))

    def transactions(
        self,
        *,
        account: str | None = None,
        since_s: int | None = None,
        until_s: int | None = None,
    ) -> list[Transaction]:
        """Stored transactions in posting order, each with all of its postings; only those
        touching ``account`` and within ``[since_s, until_s)`` when given."""
        q = select(LedgerTransactionRow).order_by(LedgerTransactionRow.seq)
        if account is not None:
            touching = select(LedgerPostingRow.tx_seq).where(LedgerPostingRow.account == account)
            q = q.where(LedgerTransactionRow.seq.in_(touching))
        if since_s is not None:
            q = q.where(LedgerTransactionRow.at_s >= since_s)
        if until_s is not None:
            q = q.where(LedgerTransactionRow.at_s < until_s)
        with self.sessions() as s:
            rows = list(s.scalars(q))
            postings: dict[int, list[Posting]] = {}
            seqs = [r.seq for r in rows]
            for start in range(0, len(seqs), 5000):
                chunk = seqs[start : start + 5000]
                pq = (
                    select(LedgerPostingRow)
                    .where(LedgerPostingRow.tx_seq.in_(chunk))
                    .order_by(LedgerPostingRow.id)
                )
                for p in s.scalars(pq):
                    postings.setdefault(p.tx_seq, []).append(Posting(p.account, p.amount_fen))
        return [_transaction(r, postings.get(r.seq, [])) for r in rows]

    def transactions_in(self, s: Session, keys: Sequence[str]) -> list[Transaction]:
        """The stored transactions with these keys, read inside the caller's transaction."""
        rows = list(
            s.scalars(select(LedgerTransactionRow).where(LedgerTransactionRow.key.in_(list(keys))))
        )
        postings: dict[int, list[Posting]] = {}
        q = select(LedgerPostingRow).where(LedgerPostingRow.tx_seq.in_([r.seq for r in rows]))
        for p in s.scalars(q.order_by(LedgerPostingRow.id)):
            postings.setdefault(p.tx_seq, []).append(Posting(p.account, p.amount_fen))
        return [_transaction(r, postings.get(r.seq, [])) for r in rows]

    def counts(self) -> dict[str, Any]:
        with self.sessions() as s:
            return {
                "transactions": int(s.scalar(select(func.count(LedgerTransactionRow.seq))) or 0),
                "postings": int(s.scalar(select(func.count(LedgerPostingRow.id))) or 0),
            }


class GroupCommitWriter:
    """Posts from many threads, committed together: each ``post`` waits until its
    transaction is durable, and the disk waits once per group, not once per transaction.

    One writer thread takes whatever is queued when it is free (no added delay: a group is
    what arrived during the previous commit, up to ``max_items``). A group that fails as a
    whole (a key clash inside it) is retried one transaction at a time, so only the
    offending post fails."""

    def __init__(self, store: LedgerStore, max_items: int = 500, actor: str = "system") -> None:
        self.store = store
        self.max_items = max_items
        self.actor = actor
        self._queue: queue.Queue[tuple[Transaction, Future[bool]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def post(self, tx: Transaction, timeout_s: float | None = 30.0) -> bool:
        """Post and wait for the commit; False when the key was already posted."""
        check(tx)
        done: Future[bool] = Future()
        self._queue.put((tx, done))
        return done.result(timeout=timeout_s)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self.max_items:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(item)
            self._commit(group)

    def _commit(self, group: list[tuple[Transaction, Future[bool]]]) -> None:
        try:
            results = self.store.post_many([tx for tx, _ in group], self.actor)
        except Exception:  # one bad post must not fail the others: post each alone
            for tx, done in group:
                try:
                    done.set_result(self.store.post(tx, self.actor))
                except Exception as exc:
                    done.set_exception(exc)
            return
        for (_, done), new in zip(group, results, strict=True):
            done.set_result(new)


def _transaction(row: LedgerTransactionRow, postings: list[Posting]) -> Transaction:
    return Transaction(
        key=row.key,
        at_s=row.at_s,
        kind=row.kind,
        postings=tuple(postings),
        memo=row.memo,
        refs=dict(row.refs or {}),
    )
