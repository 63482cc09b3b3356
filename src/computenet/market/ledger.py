"""The double-entry ledger's rules: accounts, transactions and their invariants.

Money is integer **fen** (0.01 CNY) everywhere in the ledger, so sums are exact. A
transaction is a set of postings to accounts whose amounts sum to zero; it carries an
idempotency ``key``: posting the same key again is a no-op when the content is the same
and an error when it differs (a retry never posts twice, a bug never posts silently).
Balances are the sums of the postings per account, so a replay of the postings always
equals the live balances, and the trial balance (the sum of every balance) is always zero.

Accounts are named ``kind:owner``:

* ``tenant:<id>`` — what a tenant owes (negative: charges) or has prepaid (positive);
* ``provider:<id>`` — what the platform owes a provider for compute it delivered;
* ``platform:fees`` — the platform's fee income;
* ``platform:cash`` — money that came in from or went out to the outside world (deposits,
  payouts), so that every transaction stays inside the ledger and balances.

Sign convention: a posting's amount is credited to its account when positive and debited
when negative. A charge of 100 CNY for compute with a 5 % fee posts
``tenant:t −10000, provider:p +9500, platform:fees +500``.

Pure: no I/O, no clock (times come in).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from computenet.errors import ConflictError, InputError

ACCOUNT_KINDS = ("tenant", "provider", "platform")
PLATFORM_ACCOUNTS = ("platform:fees", "platform:cash")
TRANSACTION_KINDS = ("deposit", "charge", "refund", "payout", "adjustment")
_ACCOUNT = re.compile(r"^(tenant|provider):[A-Za-z0-9_.-]{1,40}$")
MAX_FEN = 10**15  # 10 trillion CNY: far beyond any one posting, inside a 64-bit integer


@dataclass(frozen=True)
class Posting:
    account: str
    amount_fen: int


@dataclass(frozen=True)
class Transaction:
    """A balanced set of postings with its idempotency key."""

    key: str
    at_s: int
    kind: str
    postings: tuple[Posting, ...]
    memo: str = ""
    refs: Mapping[str, str] = field(default_factory=dict)  # job, order, provider ...

    @cached_property
    def content_hash(self) -> str:
        """What makes two posts of one key the same transaction."""
        body = {
            "kind": self.kind,
            "postings": sorted((p.account, p.amount_fen) for p in self.postings),
            "memo": self.memo,
            "refs": dict(sorted(self.refs.items())),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def check_account(account: str, where: str = "account") -> None:
    if account in PLATFORM_ACCOUNTS or _ACCOUNT.match(account):
        return
    raise InputError(
        f"{account!r} is not a ledger account",
        where=where,
        fix="use tenant:<id>, provider:<id>, platform:fees or platform:cash",
    )


def check(tx: Transaction) -> Transaction:
    """Refuse a transaction that breaks a rule; the error names the posting."""
    if not tx.key or len(tx.key) > 200:
        raise InputError("a transaction needs a key of 1 to 200 characters", where="key")
    if tx.kind not in TRANSACTION_KINDS:
        raise InputError(
            f"unknown transaction kind {tx.kind!r}",
            where="kind",
            fix=f"use one of: {', '.join(TRANSACTION_KINDS)}",
        )
    if len(tx.postings) < 2:
        raise InputError("a transaction needs at least two postings", where="postings")
    for k, p in enumerate(tx.postings):
        check_account(p.account, f"postings[{k}].account")
        if isinstance(p.amount_fen, bool) or not isinstance(p.amount_fen, int):
            raise InputError(
                f"{p.amount_fen!r} is not a whole number of fen",
                where=f"postings[{k}].amount_fen",
                fix="post integer fen (0.01 CNY)",
            )
        if p.amount_fen == 0 or abs(p.amount_fen) > MAX_FEN:
            raise InputError(
                f"{p.amount_fen} fen",
                where=f"postings[{k}].amount_fen",
                fix=f"post a non-zero amount of at most {MAX_FEN} fen",
            )
    total = sum(p.amount_fen for p in tx.postings)
    if total != 0:
        raise InputError(
            f"the postings sum to {total} fen, not 0",
            where="postings",
            fix="every transaction must balance",
        )
    return tx


def charge(
    key: str,
    at_s: int,
    tenant_id: str,
    provider_id: str,
    amount_fen: int,
    fee_fen: int,
    memo: str = "",
    refs: Mapping[str, str] | None = None,
) -> Transaction:
    """A tenant pays ``amount_fen`` for compute: the provider gets it less the fee."""
    if fee_fen < 0 or fee_fen > amount_fen:
        raise InputError(f"a fee of {fee_fen} fen on {amount_fen}", where="fee_fen")
    amounts = {
        f"tenant:{tenant_id}": -amount_fen,
        f"provider:{provider_id}": amount_fen - fee_fen,
        "platform:fees": fee_fen,
    }
    postings = [Posting(account, x) for account, x in amounts.items() if x]
    return check(Transaction(key, at_s, "charge", tuple(postings), memo, dict(refs or {})))


def refund(original: Transaction, key: str, at_s: int, memo: str = "") -> Transaction:
    """The exact reverse of ``original`` (a provider broke its commitment)."""
    postings = tuple(Posting(p.account, -p.amount_fen) for p in original.postings)
    refs = dict(original.refs) | {"refunds": original.key}
    return check(Transaction(key, at_s, "refund", postings, memo, refs))


def fee_fen(amount_fen: int, fee_bp: int) -> int:
    """The platform's fee in basis points of an amount, rounded half up to whole fen."""
    return (amount_fen * fee_bp + 5_000) // 10_000


class Ledger:
    """An in-memory ledger with the same rules as the stored one: the reference the stored
    ledger is checked against, and the simulator's ledger."""

    def __init__(self) -> None:
        self._by_key: dict[str, Transaction] = {}
        self._order: list[str] = []
        self._balances: dict[str, int] = defaultdict(int)

    def post(self, tx: Transaction) -> bool:
        """Post ``tx``; False when this key was already posted with the same content."""
        check(tx)
        seen = self._by_key.get(tx.key)
        if seen is not None:
            if seen.content_hash != tx.content_hash:
                raise ConflictError(
                    f"transaction key {tx.key!r} was already posted with other postings"
                )
            return False
        self._by_key[tx.key] = tx
        self._order.append(tx.key)
        for p in tx.postings:
            self._balances[p.account] += p.amount_fen
        return True

    def balances(self) -> dict[str, int]:
        return {a: b for a, b in sorted(self._balances.items()) if b != 0}

    def transactions(self) -> list[Transaction]:
        return [self._by_key[k] for k in self._order]

    def trial_balance(self) -> int:
        return sum(self._balances.values())


def replay(transactions: Iterable[Transaction]) -> dict[str, int]:
    """Balances recomputed from the postings alone."""
    out: dict[str, int] = defaultdict(int)
    for tx in transactions:
        for p in tx.postings:
            out[p.account] += p.amount_fen
    return {a: b for a, b in sorted(out.items()) if b != 0}


def statement_rows(transactions: Sequence[Transaction], account: str) -> list[dict[str, object]]:
    """One account's postings in order with a running balance: a statement or a payout."""
    rows: list[dict[str, object]] = []
    balance = 0
    for tx in transactions:
        for p in tx.postings:
            if p.account == account:
                balance += p.amount_fen
                rows.append(
                    {
                        "at_s": tx.at_s,
                        "key": tx.key,
                        "kind": tx.kind,
                        "memo": tx.memo,
                        "amount_fen": p.amount_fen,
                        "balance_fen": balance,
                    }
                )
    return rows
