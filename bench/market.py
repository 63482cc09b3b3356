"""The compute market's benchmark: orders matched per second with the engine in the loop,
ledger postings per second on PostgreSQL, and a kill -9 test during postings.

* **orders**: on the ``china`` network, one offer per pool of every site (prices 20 to 56
  fen per unit), tenants' orders of 1 to 8 accelerators for 2 to 6 units within 48 hours,
  carbon priced at the default: matched in rounds of ``--round`` orders (each round one
  engine request per group of orders that qualify for the same offers, as a call auction
  clears every few seconds); the baseline in the same run matches the same orders one at
  a time (one engine request each). Every quote is checked: window, price and no offer
  oversold.
* **postings**: charges (3 postings each: tenant, provider, platform fee) posted by 64
  concurrent callers (``--callers``) through ``GroupCommitWriter`` (each call returns once
  its transaction is committed; what arrives during a commit goes into the next one), on a fresh
  PostgreSQL database. In the same run, the baselines: one caller posting one transaction
  per commit through ``LedgerStore``, and the same rows inserted with plain psycopg, one
  commit per transaction and no idempotency check (the commit floor of this disk).
* **crash**: a worker process posts keyed charges in batches and prints each batch's keys
  after its commit; it is killed with SIGKILL at a random moment; a second worker retries
  every key from the start and is killed too. After each round: the trial balance must be
  0, no transaction unbalanced, every acknowledged key stored (``lost``), no key posted
  twice (``duplicated``), and balances equal to a replay of the postings.

Targets: ``orders_per_s`` >= 500; ``postings_per_s`` >= 2,000; crash: imbalance 0,
lost 0, duplicated 0.

    python bench/market.py --json
    python bench/market.py --rounds 10 --seed 7 --json
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _ledger_worker
from computenet.market.ledger import replay
from computenet.store.ledger import GroupCommitWriter, LedgerStore
from computenet.store.repository import migrate, open_engine

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_POSTINGS_PER_S = 2000
TARGET_ORDERS_PER_S = 500


def bench_orders(n: int, round_size: int) -> dict[str, Any]:
    from computenet.catalog import load_network
    from computenet.market.orders import Offer, Order, Quote, match, match_many
    from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T

    net = load_network("china")
    now = 1_700_000_000 // 3600 * 3600
    offers = [
        Offer(
            f"o{k}",
            f"p{k % 5}",
            s.id,
            pool.accelerator,
            pool.count,
            now,
            now + 72 * 3600,
            20 + 2 * k,
        )
        for k, (s, pool) in enumerate((s, p) for s in net.sites for p in s.pools)
    ]
    rng = random.Random(1)
    orders = [
        Order(
            f"r{i}",
            f"t{i % 7}",
            units=rng.uniform(2, 6),
            accelerators=rng.randint(1, 8),
            start_s=now,
            end_s=now + 48 * 3600,
            max_price_fen_per_unit=rng.choice([40, 60, 80]),
        )
        for i in range(n)
    ]
    kw = {"now_s": now, "carbon_price_cny_per_t": DEFAULT_CARBON_PRICE_CNY_PER_T}
    match_many(orders[:20], offers, net, **kw)  # compile the engine's kernels first
    t0 = time.perf_counter()
    results = []
    for k in range(0, n, round_size):
        results += match_many(orders[k : k + round_size], offers, net, **kw)
    batched_s = time.perf_counter() - t0
    one = orders[: max(50, n // 10)]
    t0 = time.perf_counter()
    for o in one:
        match(o, offers, net, **kw)
    single_s = time.perf_counter() - t0
    quotes = [r for r in results if isinstance(r, Quote)]
    by_offer = {o.id: o for o in offers}
    order_of = {o.id: o for o in orders}
    bad = sum(
        1
        for q in quotes
        if not (order_of[q.order_id].start_s <= q.start_s and q.end_s <= order_of[q.order_id].end_s)
        or by_offer[q.offer_id].price_fen_per_unit > order_of[q.order_id].max_price_fen_per_unit
    )
    return {
        "orders": n,
        "round": round_size,
        "orders_per_s": round(n / batched_s),
        "baseline_one_by_one_orders_per_s": round(len(one) / single_s),
        "quoted": len(quotes),
        "violations": bad,
    }


def fresh_database() -> str:
    import psycopg

    name = "cn_bench_market_" + uuid.uuid4().hex[:8]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    migrate(open_engine(url))
    return url


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def bench_postings(url: str, n: int, callers: int) -> dict[str, Any]:
    store = LedgerStore(open_engine(url))
    grouped = [_ledger_worker.transaction("group", i) for i in range(n * 5)]
    writer = GroupCommitWriter(store)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        assert all(pool.map(writer.post, grouped))
    grouped_s = time.perf_counter() - t0
    writer.close()
    txs = [_ledger_worker.transaction("one", i) for i in range(n)]
    t0 = time.perf_counter()
    for tx in txs:
        store.post(tx)
    single_s = time.perf_counter() - t0
    return {
        "transactions": len(grouped),
        "callers": callers,
        "postings_per_s": round(sum(len(tx.postings) for tx in grouped) / grouped_s),
        "baseline_one_commit_each_postings_per_s": round(
            sum(len(tx.postings) for tx in txs) / single_s
        ),
        "baseline_plain_psycopg_postings_per_s": baseline_postings(url, txs),
        "trial_balance": store.trial_balance(),
    }


def baseline_postings(url: str, txs: list[Any]) -> int:
    """The same rows with plain psycopg, one commit per transaction: the commit floor."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE base_tx (seq bigserial primary key, key text, at_s bigint)")
        conn.execute("CREATE TABLE base_posting (tx bigint, account text, amount bigint)")
        conn.commit()
        t0 = time.perf_counter()
        for tx in txs:
            with conn.transaction():
                row = conn.execute(
                    "INSERT INTO base_tx (key, at_s) VALUES (%s, %s) RETURNING seq",
                    (tx.key, tx.at_s),
                ).fetchone()
                assert row is not None
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO base_posting VALUES (%s, %s, %s)",
                        [(row[0], p.account, p.amount_fen) for p in tx.postings],
                    )
        elapsed = time.perf_counter() - t0
    return round(sum(len(tx.postings) for tx in txs) / elapsed)


class Worker:
    """One ``_ledger_worker.py`` process and the keys it acknowledged."""

    def __init__(self, url: str, prefix: str, start: int, batch: int) -> None:
        cmd = [sys.executable, str(Path(__file__).parent / "_ledger_worker.py")]
        self.proc = subprocess.Popen(
            [*cmd, url, prefix, str(start), str(batch)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.acked: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.endswith("\n"):
                self.acked.append(line.strip())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join()
        if self.proc.returncode not in (-signal.SIGKILL, 0):
            raise RuntimeError(self.proc.stderr.read() if self.proc.stderr else "worker failed")


def crash_round(url: str, r: int, rng: random.Random) -> dict[str, Any]:
    prefix, batch = f"r{r}", rng.randint(1, 50)
    first = Worker(url, prefix, 0, batch)
    time.sleep(rng.uniform(0.8, 2.5))
    first.kill()
    acked = set(first.acked)
    # The retry: every key again from the start (same content), killed once it has gone
    # past what the first worker acknowledged.
    retry = Worker(url, prefix, 0, batch)
    deadline = time.time() + 60
    while len(retry.acked) <= len(acked) + batch and time.time() < deadline:
        if retry.proc.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.3))
    retry.kill()
    acked |= set(retry.acked)
    return check_round(url, prefix, acked)


def check_round(url: str, prefix: str, acked: set[str]) -> dict[str, Any]:
    import psycopg

    store = LedgerStore(open_engine(url))
    txs = [tx for tx in store.transactions() if tx.key.startswith(prefix + "-")]
    stored = [tx.key for tx in txs]
    with psycopg.connect(url) as conn:
        per_tx = conn.execute(
            "SELECT t.key, count(p.id) FROM ledger_transactions t "
            "JOIN ledger_postings p ON p.tx_seq = t.seq WHERE t.key LIKE %s GROUP BY t.key",
            (prefix + "-%",),
        ).fetchall()
    expected = {tx.key: len(tx.postings) for tx in map(_tx_of, stored)}
    duplicated = (len(stored) - len(set(stored))) + sum(
        1 for key, n in per_tx if n != expected.get(key)
    )
    return {
        "acknowledged": len(acked),
        "stored": len(stored),
        "lost": len(acked - set(stored)),
        "duplicated": duplicated,
        "imbalance": abs(store.trial_balance()) + len(store.unbalanced()),
        "replay_equals_live": store.balances() == replay(store.transactions()),
    }


def _tx_of(key: str) -> Any:
    prefix, i = key.rsplit("-", 1)
    return _ledger_worker.transaction(prefix, int(i))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--transactions", type=int, default=2000, help="for the postings rate")
    ap.add_argument("--rounds", type=int, default=10, help="kill -9 rounds")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--orders", type=int, default=5000, help="orders to match")
    ap.add_argument("--round", type=int, default=200, help="orders per matching round")
    ap.add_argument("--callers", type=int, default=64, help="concurrent posters of charges")
    args = ap.parse_args()
    orders = bench_orders(args.orders, args.round)
    url = fresh_database()
    try:
        postings = bench_postings(url, args.transactions, args.callers)
        rng = random.Random(args.seed)
        rounds = [crash_round(url, r, rng) for r in range(args.rounds)]
    finally:
        drop_database(url)
    crash = {
        "rounds": len(rounds),
        "acknowledged": sum(r["acknowledged"] for r in rounds),
        "imbalance": sum(r["imbalance"] for r in rounds),
        "lost": sum(r["lost"] for r in rounds),
        "duplicated": sum(r["duplicated"] for r in rounds),
        "replay_equals_live": all(r["replay_equals_live"] for r in rounds),
    }
    out = {
        "orders_per_s": orders["orders_per_s"],
        "orders": orders,
        "postings_per_s": postings["postings_per_s"],
        "postings": postings,
        "crash": crash,
        "targets": {"orders_per_s": TARGET_ORDERS_PER_S, "postings_per_s": TARGET_POSTINGS_PER_S},
        "targets_met": orders["orders_per_s"] >= TARGET_ORDERS_PER_S
        and orders["violations"] == 0
        and postings["postings_per_s"] >= TARGET_POSTINGS_PER_S
        and crash["imbalance"] == crash["lost"] == crash["duplicated"] == 0
        and crash["replay_equals_live"],
    }
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
