"""Start and stop a ``computenet serve`` subprocess for the benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ADMIN = "cn_bench_admin_" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_pg_db(admin_url: str) -> str:
    """Create an empty database on the PostgreSQL at ``admin_url``; returns its URL."""
    import psycopg

    name = "cn_bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_db(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def database(backend: str, home: Path, pg_admin: str) -> Iterator[str]:
    """The URL of an empty database for one run: a SQLite file in ``home``, or a fresh
    database on the PostgreSQL at ``pg_admin``, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{home / 'bench.db'}"
        return
    url = fresh_pg_db(pg_admin)
    try:
        yield url
    finally:
        drop_pg_db(pg_admin, url)


def start(
    db: str, home: Path, port: int, extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``computenet serve`` and wait until /healthz answers. Its output goes to
    ``home/server.log`` (a pipe nobody reads could fill up and stall the server)."""
    env = dict(os.environ, COMPUTENET_HOME=str(home), COMPUTENET_ADMIN_TOKEN=ADMIN)
    cmd = [sys.executable, "-m", "computenet.cli.main", "serve", "--db", db, "--port", str(port)]
    with (home / "server.log").open("ab") as log:
        proc = subprocess.Popen(cmd + (extra or []), env=env, stdout=log, stderr=log)
    wait_ready(port, proc, home / "server.log")
    return proc


def wait_ready(
    port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0
) -> None:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not become ready")


def create_tenant(port: int, name: str) -> str:
    import httpx

    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/tenants",
        json={"name": name},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    r.raise_for_status()
    return str(r.json()["token"])
