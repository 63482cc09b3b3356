"""A dashboard bed: a database seeded with tenants, datasets and jobs planned by the real
engine, a ``computenet serve`` process on it, and Chromium driven by Playwright.

Shared by the browser tests (one server and one browser per test session) and by
``bench/dashboard.py`` (which seeds 10,000 jobs).
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("COMPUTENET_CHROMIUM", "/usr/bin/chromium"))
ADMIN = "cn_dashboard_admin_token_0123456789abcdef"
ACCELERATORS = (1, 2, 4, 8, 16)


@dataclass
class Seeded:
    """What the seed made: tokens by tenant name, tenant ids, and the job ids by tenant."""

    db_url: str
    tokens: dict[str, str] = field(default_factory=dict)
    tenant_ids: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, list[str]] = field(default_factory=dict)
    provider_sites: tuple[str, ...] = ()


def seed(
    db_url: str,
    jobs_per_tenant: dict[str, int],
    *,
    network_name: str = "china",
    rng_seed: int = 7,
    provider_sites: tuple[str, ...] = ("ulanqab", "guian"),
) -> Seeded:
    """Tenants (one ``tenant`` each named in ``jobs_per_tenant``, plus a provider ``gridco``
    that owns ``provider_sites``), one personal dataset per tenant, and
    jobs submitted and planned by the real engine, as the live loop plans them."""
    from computenet.catalog import load_network
    from computenet.settings import Settings
    from computenet.store.repository import (
        DatasetSpec,
        JobSpec,
        Principal,
        Repository,
        migrate,
        now_s,
        open_engine,
    )

    engine = open_engine(db_url)
    migrate(engine)
    repo = Repository(engine)
    admin_id = repo.ensure_admin_token(ADMIN)
    out = Seeded(db_url, tokens={"admin": ADMIN}, tenant_ids={"admin": admin_id})
    network = load_network(network_name)
    rng = random.Random(rng_seed)
    site_ids = [s.id for s in network.sites]
    for name, count in jobs_per_tenant.items():
        tenant_id, token = repo.create_tenant(name, "tenant", admin_id)
        out.tokens[name], out.tenant_ids[name] = token, tenant_id
        who = Principal(tenant_id, "tenant")
        data = repo.create_dataset(
            who,
            DatasetSpec(
                name=f"{name}-records",
                size_gb=50.0,
                home_site=site_ids[1],
                classification="personal",
                individuals=250_000,
            ),
        )
        t = now_s()
        specs = []
        for k in range(count):
            hours = rng.choice((0.5, 1.0, 2.0, 4.0, 8.0))
            specs.append(
                (
                    who,
                    JobSpec(
                        name=f"{name}-train-{k:05d}",
                        accelerators=rng.choice(ACCELERATORS),
                        duration_h=hours,
                        deadline_s=t + int(hours * 3600) + rng.choice((6, 24, 48)) * 3600,
                        datasets=(data["id"],) if k % 10 == 0 else (),
                    ),
                    None,
                )
            )
        for start in range(0, len(specs), 500):
            repo.submit_batch(specs[start : start + 500])
        out.jobs[name] = []
    provider_id, provider_token = repo.create_tenant(
        "gridco", "provider", admin_id, sites=provider_sites
    )
    out.tokens["gridco"], out.tenant_ids["gridco"] = provider_token, provider_id
    out.provider_sites = provider_sites
    _plan_all(repo, Settings(db_url=db_url, network=network_name, run_loop=False), network)
    for name, tenant_id in out.tenant_ids.items():
        if name in jobs_per_tenant:
            items, _ = repo.list_jobs(Principal(tenant_id, "tenant"), limit=100_000)
            out.jobs[name] = [j["id"] for j in items]
    engine.dispose()
    return out


def _plan_all(repo: Any, settings: Any, network: Any, chunk: int = 2500) -> None:
    """Plan every submitted job as the live loop's planning step does (claim, plan, write
    each decision), in claims of ``chunk`` jobs rather than the loop's 200 per tick."""
    from computenet.control.loop import ControlLoop

    loop = ControlLoop(repo, settings, network)
    try:
        while rows := repo.claim(loop.owner, ["submitted"], settings.lease_s, limit=chunk):
            decisions = loop.planner.plan(rows, frozenset())
            for job_id, (new_state, fields) in decisions.items():
                if new_state is None:
                    repo.set_fields(job_id, **fields)
                else:
                    repo.transition(job_id, new_state, **fields)
            repo.release([r.id for r in rows], loop.owner)
            if not any(state is not None for state, _ in decisions.values()):
                break  # what is left waits for a later round
    finally:
        loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(db_url: str, home: Path, network_name: str = "china") -> Iterator[str]:
    """``computenet serve --no-loop`` on ``db_url``; yields the dashboard URL it prints."""
    import httpx

    port = free_port()
    env = dict(
        os.environ, COMPUTENET_HOME=str(home), COMPUTENET_ADMIN_TOKEN=ADMIN, PYTHONUNBUFFERED="1"
    )
    log = home / "server.log"
    cmd = [sys.executable, "-m", "computenet.cli.main", "serve", "--db", db_url]
    cmd += ["--port", str(port), "--no-loop", "--network", network_name]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
    try:
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"serve exited with {proc.returncode}: {log.read_text()[-2000:]}"
                )
            if time.monotonic() - t0 > 60:
                raise RuntimeError(f"serve did not answer in 60 s: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code < 600:
                    break
            time.sleep(0.1)
        yield dashboard_url(log.read_text(), port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def dashboard_url(printed: str, port: int) -> str:
    """The dashboard URL ``serve`` printed at start-up."""
    for line in reversed(printed.splitlines()):
        if line.startswith("dashboard: ") and f":{port}/" in line:
            return line.split()[1]
    raise AssertionError(f"serve printed no dashboard URL on port {port}: {printed[-1000:]}")


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless (Playwright downloads no browser)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
    )


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    page.fill("#token", token)
    page.click("#signin-button")
    page.wait_for_selector("#app:not([hidden])")


def drawn_fraction(png: bytes) -> float:
    """Share of a screenshot's pixels that differ from its most common colour (the
    background): near 0 for a blank canvas, well above for a drawn map."""
    import io

    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(img, axis=0, return_counts=True)
    background = colours[int(counts.argmax())]
    return float(np.any(np.abs(img.astype(int) - background) > 12, axis=1).mean())
