"""Submissions per second and latency of ``POST /v1/jobs`` over loopback.

Starts ``computenet serve`` for each database backend, then runs N concurrent clients
(asyncio, raw HTTP/1.1 keep-alive, so the generator stays light: it shares the 2 cores
with the server) for a fixed time. Target (PostgreSQL, 32 clients): >= 1,000 submissions/s
with p99 < 100 ms. The server runs with ``--no-loop``: this measures the API and its
group commit; with the loop on, every job would also be planned and started as a local
process, which measures process spawning instead. Baseline in the same run: each backend
is measured again with ``--no-group-commit`` (one transaction per submission, as concurrent
as the server's thread pool allows), and the report gives the speed-up of group commit.
The report carries the 1-minute load average at the start, since other work on this 2-core
machine moves the figures.

    python bench/api_load.py --json
    python bench/api_load.py --backends postgres --clients 32 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _server

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_PER_S = 1000.0
TARGET_P99_MS = 100.0


async def client(
    port: int, token: str, stop_at: float, lat_ms: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"name": "bench", "accelerators": 1, "duration_h": 2.0}'
    head = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    loop = asyncio.get_running_loop()
    while loop.time() < stop_at:
        t0 = time.perf_counter()
        writer.write(request)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        lat_ms.append((time.perf_counter() - t0) * 1000.0)
        code = int(status_line.split()[1]) if status_line else 0
        if code != 201:
            errors.append(code)
    writer.close()


async def load(port: int, token: str, clients: int, seconds: float) -> dict[str, float]:
    lat: list[float] = []
    errors: list[int] = []
    # A short warm-up so connection set-up and first-call costs are not measured.
    await asyncio.gather(
        *(
            client(port, token, asyncio.get_running_loop().time() + 1.0, [], [])
            for _ in range(clients)
        )
    )
    t0 = time.perf_counter()
    stop_at = asyncio.get_running_loop().time() + seconds
    await asyncio.gather(*(client(port, token, stop_at, lat, errors) for _ in range(clients)))
    wall = time.perf_counter() - t0
    lat.sort()

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    return {
        "requests": len(lat),
        "errors": len(errors),
        "submissions_per_s": round((len(lat) - len(errors)) / wall, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
    }


def run_backend(
    backend: str, clients: int, seconds: float, pg_admin: str, group_commit: bool = True
) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        _server.database(backend, Path(tmp), pg_admin) as db,
    ):
        home = Path(tmp)
        port = _server.free_port()
        extra = ["--no-loop"] + ([] if group_commit else ["--no-group-commit"])
        proc = _server.start(db, home, port, extra)
        try:
            token = _server.create_tenant(port, "bench")
            out = asyncio.run(load(port, token, clients, seconds))
        finally:
            proc.kill()
            proc.wait()
    return {
        "backend": backend,
        "clients": clients,
        "seconds": seconds,
        "loop": False,
        "group_commit": group_commit,
        **out,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pg", default=PG_ADMIN, help="admin URL of the PostgreSQL server")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    load_1m = os.getloadavg()[0]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results = [run_backend(b, args.clients, args.seconds, args.pg) for b in backends]
    baseline = [run_backend(b, args.clients, args.seconds, args.pg, False) for b in backends]
    for r, b in zip(results, baseline, strict=True):
        r["speedup_vs_one_transaction_each"] = round(
            float(r["submissions_per_s"]) / max(float(b["submissions_per_s"]), 1e-9), 2
        )
    pg = [r for r in results if r["backend"] == "postgres"]
    met = (
        all(
            float(r["submissions_per_s"]) >= TARGET_PER_S and float(r["p99_ms"]) < TARGET_P99_MS
            for r in pg
        )
        if pg
        else None
    )
    report = {
        "benchmark": "api_load",
        "results": results,
        "baseline": baseline,
        "target": {
            "backend": "postgres",
            "clients": 32,
            "submissions_per_s": TARGET_PER_S,
            "p99_ms": TARGET_P99_MS,
        },
        "target_met": met,
        "load_avg_1m_at_start": round(load_1m, 2),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for r in results + baseline:
            how = "group commit" if r["group_commit"] else "one transaction each"
            print(
                f"{r['backend']:9s} {how:21s} {r['submissions_per_s']:8.1f}/s  "
                f"p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}"
            )
        print("target met" if met else "target NOT met" if met is False else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
