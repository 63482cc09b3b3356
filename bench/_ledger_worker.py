"""A ledger client for bench/market.py's crash test: posts charges with keys
``PREFIX-<i>`` for i = START, START+1, ... in batches, and after each commit prints the
batch's keys (one line per key, flushed), so the parent knows what was acknowledged when it
kills this process with SIGKILL.

    python bench/_ledger_worker.py URL PREFIX START BATCH
"""

from __future__ import annotations

import sys

from computenet.market.ledger import charge, fee_fen
from computenet.store.ledger import LedgerStore
from computenet.store.repository import open_engine


def amount_of(i: int) -> int:
    """A deterministic amount per key, so a retried key has the same content."""
    return 100 + (i * 7919) % 100_000


def transaction(prefix: str, i: int):  # type: ignore[no-untyped-def]
    amount = amount_of(i)
    tenant, provider = f"t{i % 4}", f"p{i % 3}"
    return charge(f"{prefix}-{i}", i, tenant, provider, amount, fee_fen(amount, 500))


def main() -> None:
    url, prefix, start, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = LedgerStore(open_engine(url))
    i = start
    while True:
        txs = [transaction(prefix, k) for k in range(i, i + batch)]
        store.post_many(txs, actor="bench")
        sys.stdout.write("".join(f"{tx.key}\n" for tx in txs))
        sys.stdout.flush()
        i += batch


if __name__ == "__main__":
    main()
