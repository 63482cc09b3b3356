"""Crash safety: SIGKILL the server at random moments while clients submit jobs.

Each client submits jobs with a fresh ``Idempotency-Key`` and, on any failure (refused
connection, reset, timeout, 5xx), retries the SAME key until the server acknowledges it.
The server (API and live loop with the engine; each job's deadline is ten minutes out, so
it is placed to start now and the loop dispatches it to the local executor during the run)
is killed with SIGKILL after a random time and restarted at once, ``--rounds`` times per
database. After the last round the clients finish the key they are on, the loop runs every
job to its end, and the database is read directly:

* ``lost``: acknowledged jobs that are not in the database under their key and id;
* ``duplicated``: keys with more than one job, plus jobs the clients never asked for;
* ``dispatched_twice``: jobs whose command ran more than once (each run of the placeholder
  command prints one line into the run directory's output);
* ``unfinished``: jobs not succeeded, failed or cancelled once the loop had two minutes
  to run everything (a job stuck after a crash shows here).

Target: 0 lost, 0 duplicated, 0 dispatched twice, 0 unfinished.

    python bench/crash.py --json
    python bench/crash.py --backends postgres --rounds 10 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _server

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
BODY = {"name": "crash", "accelerators": 1, "duration_h": 0.01}
DRAIN_TIMEOUT_S = 120.0


class Clients:
    """Concurrent submitters that retry each key until it is acknowledged."""

    def __init__(self, port: int, token: str, n: int, pause_s: float) -> None:
        self.url = f"http://127.0.0.1:{port}/v1/jobs"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.n = n
        self.pause_s = pause_s
        self.acked: dict[str, str] = {}  # key -> job id
        self.retries = 0
        self.client_errors: list[str] = []
        self.stop = asyncio.Event()

    async def one(self, http: Any, key: str) -> None:
        import httpx

        while True:
            try:
                # A deadline ten minutes out: the engine must start the job now (not in a
                # cheaper hour), so the loop dispatches it during the run.
                body = BODY | {"deadline_s": int(time.time()) + 600}
                r = await http.post(
                    self.url, json=body, headers=self.headers | {"Idempotency-Key": key}
                )
            except httpx.HTTPError:
                r = None
            if r is not None and r.status_code in (200, 201):
                self.acked[key] = r.json()["id"]
                return
            if r is not None and r.status_code < 500 and r.status_code != 429:
                self.client_errors.append(f"{r.status_code} {r.text[:200]}")
                return
            self.retries += 1
            await asyncio.sleep(0.05)  # server down or restarting: try the same key again

    async def worker(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=5.0) as http:
            while not self.stop.is_set():
                await self.one(http, uuid.uuid4().hex)
                await asyncio.sleep(self.pause_s)


async def run_backend(
    backend: str, rounds: int, clients: int, pause_s: float, rng: random.Random, pg_admin: str
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        _server.database(backend, Path(tmp), pg_admin) as db,
    ):
        home = Path(tmp)
        port = _server.free_port()
        extra = ["--executor", "local"]  # each run prints a line in its run directory
        proc = await asyncio.to_thread(_server.start, db, home, port, extra)
        token = _server.create_tenant(port, "crash")
        subs = Clients(port, token, clients, pause_s)
        tasks = [asyncio.create_task(subs.worker()) for _ in range(clients)]
        kills = []
        for _ in range(rounds):
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
            kills.append(len(subs.acked))
            proc = await asyncio.to_thread(_server.start, db, home, port, extra)
        # Let every client finish the key it is on, then let the loop run every job
        # (leases of killed loops expire after 30 s), then stop the server for good.
        subs.stop.set()
        await asyncio.gather(*tasks)
        states = await asyncio.to_thread(drain, port, DRAIN_TIMEOUT_S)
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        out = verify(db, subs.acked, home / "jobs")
    return {
        "backend": backend,
        "rounds": rounds,
        **out,
        "final_states": states,
        "unfinished": sum(
            n for k, n in states.items() if k not in ("succeeded", "failed", "cancelled")
        ),
        "retries": subs.retries,
        "client_errors": len(subs.client_errors),
        "acknowledged_before_each_kill": kills,
    }


def job_states(port: int) -> dict[str, int]:
    """Jobs by state, from the server's Prometheus metrics."""
    import httpx

    resp = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    resp.raise_for_status()
    text = resp.text
    out = {}
    for line in text.splitlines():
        if line.startswith('computenet_jobs{state="'):
            name = line.split('"')[1]
            out[name] = int(float(line.rsplit(" ", 1)[1]))
    return out


def drain(port: int, timeout_s: float) -> dict[str, int]:
    """Wait until no job is queued, placed or running (or the time is up)."""
    t0 = time.monotonic()
    while True:
        states = job_states(port)
        busy = sum(states.get(k, 0) for k in ("submitted", "placed", "transferring", "running"))
        if busy == 0 or time.monotonic() - t0 > timeout_s:
            return states
        time.sleep(0.5)


def verify(db: str, acked: dict[str, str], runs_dir: Path) -> dict[str, int]:
    """Compare what the clients were told with what the database holds."""
    from sqlalchemy import text

    from computenet.store.repository import open_engine

    engine = open_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, idempotency_key FROM jobs")).all()
    engine.dispose()
    by_key: dict[str, list[str]] = collections.defaultdict(list)
    for job_id, key in rows:
        by_key[key].append(job_id)
    lost = sum(1 for key, job_id in acked.items() if by_key.get(key) != [job_id])
    duplicated = sum(len(ids) - 1 for ids in by_key.values() if len(ids) > 1)
    # A job under a key no client was acknowledged for is fine only if a client was still
    # retrying that key when it stopped; clients always finish their key, so none may exist.
    unasked = sum(len(ids) for key, ids in by_key.items() if key not in acked)
    # Every run of a job's (placeholder) command prints one line into its run directory's
    # output.log; a job with two run directories was dispatched twice, one with two lines
    # in one directory had its command run twice.
    starts: collections.Counter[str] = collections.Counter()
    for run in runs_dir.glob("j_*-*"):
        log = run / "output.log"
        lines = log.read_text().count("\n") if log.exists() else 0
        starts[run.name.rsplit("-", 1)[0]] += lines
    return {
        "acknowledged": len(acked),
        "in_database": len(rows),
        "lost": lost,
        "duplicated": duplicated + unasked,
        "dispatched": sum(1 for n in starts.values() if n > 0),
        "dispatched_twice": sum(1 for n in starts.values() if n > 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--rounds", type=int, default=10, help="kills per database")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--pause-ms", type=float, default=20.0, help="pause between a client's jobs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pg", default=PG_ADMIN, help="admin URL of the PostgreSQL server")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    results = [
        asyncio.run(
            run_backend(b.strip(), args.rounds, args.clients, args.pause_ms / 1000, rng, args.pg)
        )
        for b in args.backends.split(",")
        if b.strip()
    ]
    report = {
        "benchmark": "crash",
        "rounds": args.rounds,
        "acknowledged": sum(r["acknowledged"] for r in results),
        "lost": sum(r["lost"] for r in results),
        "duplicated": sum(r["duplicated"] for r in results),
        "dispatched_twice": sum(r["dispatched_twice"] for r in results),
        "unfinished": sum(r["unfinished"] for r in results),
        "results": results,
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    report["target_met"] = all(
        report[k] == 0 for k in ("lost", "duplicated", "dispatched_twice", "unfinished")
    )
    if args.json:
        print(json.dumps(report))
    else:
        for r in results:
            print(
                f"{r['backend']:9s} rounds {r['rounds']}  acknowledged {r['acknowledged']}  "
                f"lost {r['lost']}  duplicated {r['duplicated']}  dispatched {r['dispatched']} "
                f"(twice: {r['dispatched_twice']})  retries {r['retries']}"
            )
        print("target met" if report["target_met"] else "target NOT met")
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
