"""Executors on real Slurm clusters: how fast computenet dispatches, and how it fails over.

Starts the two-cluster test bed (``scripts/testbed.sh``, on free ports in a temporary
directory), a ``computenet serve`` whose network file puts its two sites on those clusters,
and measures two things:

* **Dispatch**: ``--jobs`` jobs submitted through the REST API (one accelerator each,
  placed to start now), from the first submission to each job's first command in Slurm
  (each job writes ``date +%s.%N`` as it starts); site A fills up, the rest start at site
  B. Baseline in the same run: the same
  number of jobs handed straight to the Slurm executor (no API, no database, no planner),
  which is also the engines' own submission latency.
* **Failover**: ``--failover-jobs`` jobs (half checkpointable, one checkpoint a minute)
  run at site A (the sites are alike and ``carbon-now`` breaks ties by the network's
  order, so every job that can start now at A goes there); once every checkpointable job
  has saved at least one checkpoint, site A's daemons and job processes are killed with
  SIGKILL. Every job writes a beat line (time, cluster) each second, so we measure when
  each job runs again at site B, how much work was lost (time run at A minus the work the
  service credits from checkpoints), and whether any job ever ran at both sites at once.

Targets (issue "Operate real clusters"): every job running again within 120 s of the kill,
heartbeat included; a checkpointed job loses no more than its checkpoint interval plus one
heartbeat interval (the service credits the checkpoints written before the site's last
answered heartbeat); no double runs.

    python bench/executors.py --json      # needs root and `apt-get install slurm-wlm`
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ADMIN, free_port, start

ROOT = Path(__file__).resolve().parents[1]
TESTBED = ROOT / "scripts" / "testbed.sh"
CHECKPOINT_INTERVAL_S = 60
HEARTBEAT_S = 10.0  # the service's default heartbeat interval (serve --heartbeat-interval)
SITE_DOWN_AFTER_S = 30.0  # the service's default (serve --site-down-after)
FAILOVER_TARGET_S = 120.0


def main() -> None:
    args = parse_args()
    result: dict[str, Any] = {"jobs": args.jobs, "failover_jobs": args.failover_jobs}
    with testbed(args.gpus) as bed, service(bed) as api:
        log(f"test bed up at {bed['base']}; service at {api.base}")
        result["baseline"] = baseline_dispatch(bed, args.jobs)
        result.update(dispatch_through_service(api, bed, args.jobs))
        if args.failover_jobs > 0:
            result.update(failover(api, bed, args.failover_jobs))
    result["targets_met"] = targets_met(result)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for key, value in sorted(result.items()):
            print(f"{key:>28}: {value}")
    sys.exit(0 if result["targets_met"] else 1)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--jobs", type=int, default=200, help="jobs for the dispatch measurement")
    p.add_argument("--failover-jobs", type=int, default=20, help="jobs at the killed site")
    p.add_argument(
        "--gpus",
        type=int,
        default=104,
        help="fake accelerators per site (site A fills up, then jobs start at site B; a "
        "job holds its accelerator for its planned slot, so all --jobs must fit at once)",
    )
    args = p.parse_args()
    if args.jobs < 1 or args.failover_jobs < 0 or args.gpus < max(1, args.failover_jobs):
        p.error("--jobs must be >= 1, and --gpus at least --failover-jobs")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the test bed and the service -------------------------------------------------------


@contextmanager
def testbed(gpus: int) -> Iterator[dict[str, Any]]:
    """Both clusters up on free ports in a temporary directory; torn down at the end."""
    if shutil.which("slurmctld") is None:
        sys.exit("slurmctld not found. Fix: apt-get install slurm-wlm")
    base = Path(tempfile.mkdtemp(prefix="cnbench-bed-"))
    env = dict(
        os.environ,
        COMPUTENET_TESTBED=str(base),
        COMPUTENET_TESTBED_PORT_A=str(free_port_pair()),
        COMPUTENET_TESTBED_PORT_B=str(free_port_pair()),
        COMPUTENET_TESTBED_GPUS=str(gpus),
        COMPUTENET_TESTBED_CPUS=str(4 * gpus),
    )
    marks = base / "marks"  # where jobs write their start times and beats
    marks.mkdir()
    marks.chmod(0o1777)
    subprocess.run(["bash", str(TESTBED), "up"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        yield {"base": base, "env": env, "marks": marks, "network": base / "testbed.toml"}
    finally:
        subprocess.run(["bash", str(TESTBED), "down"], env=env, check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def free_port_pair() -> int:
    """A port whose successor is free too (slurmctld takes P, slurmd P + 1)."""
    for _ in range(100):
        port = free_port()
        if port < 65000 and _port_free(port + 1):
            return port
    raise RuntimeError("no two free ports in a row")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )

    def submit(self, body: dict[str, Any]) -> str:
        r = self.client.post("/v1/jobs", json=body)
        r.raise_for_status()
        return str(r.json()["id"])

    def jobs(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {i: self.client.get(f"/v1/jobs/{i}").json() for i in ids}

    def cancel(self, ids: list[str]) -> None:
        for i in ids:
            self.client.post(f"/v1/jobs/{i}/cancel")


@contextmanager
def service(bed: dict[str, Any]) -> Iterator[Api]:
    """``computenet serve`` on the test bed's network (SQLite, the default heartbeat and
    failover settings, ``carbon-now``: each job starts as soon as it can, at the first site
    in the network's order among equals)."""
    home = bed["base"] / "home"
    home.mkdir()
    port = free_port()
    extra = ["--network", str(bed["network"]), "--policy", "carbon-now"]
    extra += ["--heartbeat-interval", str(HEARTBEAT_S), "--site-down-after", str(SITE_DOWN_AFTER_S)]
    proc = start(f"sqlite:///{home / 'bench.db'}", home, port, extra)
    try:
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(
            base + "/v1/tenants",
            json={"name": "bench", "permissions": ["commands"]},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        r.raise_for_status()
        yield Api(base, r.json()["token"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- dispatch -----------------------------------------------------------------------------


def baseline_dispatch(bed: dict[str, Any], jobs: int) -> dict[str, float]:
    """The same jobs handed straight to the Slurm executor of each site (no computenet
    service): the engines' own submission latency and start rate."""
    sys.path.insert(0, str(ROOT / "src"))
    from _slurm import dispatch_timing
    from computenet.catalog import load_network
    from computenet.executors.registry import make_executor

    network = load_network(str(bed["network"]))
    home = bed["base"] / "baseline"
    executors = [make_executor(s.executor, s.id, s.executor_options, home) for s in network.sites]
    log(f"baseline: {jobs} jobs straight to sbatch")
    timing = dispatch_timing(executors, jobs, accelerators=1, run_s=2.0)
    return {k: round(v, 4) for k, v in timing.items()}


def dispatch_through_service(api: Api, bed: dict[str, Any], jobs: int) -> dict[str, Any]:
    """Submit ``jobs`` one-accelerator jobs through the API and time each to its start."""
    marks: Path = bed["marks"]
    now = int(time.time())
    log(f"dispatch: {jobs} jobs through the API")
    first_submit = time.time()
    submitted: dict[str, float] = {}
    for i in range(jobs):
        job_id = api.submit(
            {
                "name": f"dispatch-{i}",
                "accelerators": 1,
                "duration_h": 0.002,
                "deadline_s": now + 3600,
                "command": f"date +%s.%N > {marks}/$COMPUTENET_JOB_ID.start; sleep 2",
            }
        )
        submitted[job_id] = time.time()
    starts = wait_for_files(marks, list(submitted), ".start", timeout_s=180)
    latencies = sorted(starts[j] - submitted[j] for j in starts)
    states = api.jobs(list(submitted))
    at = {s["site_id"] for s in states.values() if s.get("site_id")}
    span = max(starts.values()) - first_submit if starts else float("nan")
    return {
        "dispatch_jobs_per_s": round(len(starts) / span, 3) if starts else 0.0,
        "dispatch_started": len(starts),
        "dispatch_submit_api_s": round(max(submitted.values()) - first_submit, 3),
        "dispatch_to_running_s_median": round(statistics.median(latencies), 3),
        "dispatch_to_running_s_p90": round(latencies[int(0.9 * (len(latencies) - 1))], 3),
        "dispatch_sites": sorted(at),
    }


def wait_for_files(
    marks: Path, job_ids: list[str], suffix: str, timeout_s: float
) -> dict[str, float]:
    """The first timestamp each job wrote into ``marks/<job id><suffix>``."""
    found: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(found) < len(job_ids) and time.monotonic() < deadline:
        for j in job_ids:
            if j not in found:
                path = marks / f"{j}{suffix}"
                text = path.read_text().split() if path.exists() else []
                if text:
                    found[j] = float(text[0])
        time.sleep(0.2)
    return found


# -- failover -----------------------------------------------------------------------------


def failover(api: Api, bed: dict[str, Any], n: int) -> dict[str, Any]:
    marks: Path = bed["marks"]
    jobs = start_failover_jobs(api, marks, n)
    checkpointable = {j for j, c in jobs.items() if c}
    states = wait_until(
        "all failover jobs running at site A",
        lambda: (
            (s := api.jobs(list(jobs)))
            and all(v["state"] == "running" and v["site_id"] == "sitea" for v in s.values())
            and s
        ),
        timeout_s=300,
    )
    first_beats = wait_for_files(marks, list(jobs), ".beat", timeout_s=120)
    # Every checkpointable job has saved a checkpoint, and the site has answered a heartbeat
    # since: the service can credit it.
    settle = CHECKPOINT_INTERVAL_S + HEARTBEAT_S + 5 - (time.time() - max(first_beats.values()))
    log(f"failover: {n} jobs running at sitea; killing it in {max(0, settle):.0f} s")
    time.sleep(max(0.0, settle))
    killed_s = time.time()
    subprocess.run(
        ["bash", str(TESTBED), "kill", "sitea"], env=bed["env"], check=True, capture_output=True
    )
    log("failover: sitea killed; waiting for every job to run at siteb")
    beats = wait_until(
        "every job running again at site B",
        lambda: (
            (b := read_beats(marks, list(jobs)))
            and all(any(c == "siteb" for _, c in b[j]) for j in jobs)
            and b
        ),
        timeout_s=600,
    )
    after = api.jobs(list(jobs))
    api.cancel(list(jobs))
    return failover_figures(jobs, checkpointable, states, after, beats, killed_s)


def start_failover_jobs(api: Api, marks: Path, n: int) -> dict[str, bool]:
    """``n`` long jobs (half checkpointable) that write a beat each second: job id ->
    checkpointable."""
    now = int(time.time())
    beat = (
        f'while :; do echo "$(date +%s.%N) $SLURM_CLUSTER_NAME" >> {marks}/$COMPUTENET_JOB_ID.beat;'
        " sleep 1; done"
    )
    jobs: dict[str, bool] = {}
    for i in range(n):
        body: dict[str, Any] = {
            "name": f"failover-{i}",
            "accelerators": 1,
            "duration_h": 1.0,
            "deadline_s": now + 6 * 3600,
            "command": beat,
        }
        if i % 2 == 0:
            body |= {"checkpointable": True, "checkpoint_interval_s": CHECKPOINT_INTERVAL_S}
        jobs[api.submit(body)] = i % 2 == 0
    return jobs


def read_beats(marks: Path, job_ids: list[str]) -> dict[str, list[tuple[float, str]]]:
    out: dict[str, list[tuple[float, str]]] = {}
    for j in job_ids:
        path = marks / f"{j}.beat"
        lines = path.read_text().splitlines() if path.exists() else []
        out[j] = [(float(t), c) for t, c in (ln.split() for ln in lines if len(ln.split()) == 2)]
    return out


def failover_figures(
    jobs: dict[str, bool],
    checkpointable: set[str],
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    beats: dict[str, list[tuple[float, str]]],
    killed_s: float,
) -> dict[str, Any]:
    """Time to run again, work lost and double runs, from the jobs' own beats."""
    again_s, lost_s, double = [], {}, 0
    for j in jobs:
        at_a = [t for t, c in beats[j] if c == "sitea"]
        at_b = [t for t, c in beats[j] if c == "siteb"]
        again_s.append(min(at_b) - killed_s)
        if at_a and max(at_a) > min(at_b):
            double += 1  # a beat from A after the job had started at B: it ran twice at once
        ran_at_a = killed_s - min(at_a) if at_a else 0.0
        # The service resumes the job after the checkpoints it credits (wall seconds at A).
        credited = int(after[j].get("checkpoints") or 0) * CHECKPOINT_INTERVAL_S
        lost_s[j] = max(0.0, ran_at_a - credited)
    ckpt_lost = [lost_s[j] for j in checkpointable]
    plain_lost = [lost_s[j] for j in jobs if j not in checkpointable]
    accelerators = {j: int(before[j]["accelerators"]) for j in jobs}
    return {
        "failover_s": round(max(again_s), 2),
        "failover_s_median": round(statistics.median(again_s), 2),
        "lost_accelerator_h": round(sum(lost_s[j] * accelerators[j] for j in jobs) / 3600, 4),
        "lost_s_checkpointed_max": round(max(ckpt_lost), 1) if ckpt_lost else 0.0,
        "lost_s_restarted_max": round(max(plain_lost), 1) if plain_lost else 0.0,
        "checkpoint_interval_s": CHECKPOINT_INTERVAL_S,
        "heartbeat_interval_s": HEARTBEAT_S,
        "site_down_after_s": SITE_DOWN_AFTER_S,
        "double_runs": double,
        "moved_to": sorted({str(a["site_id"]) for a in after.values()}),
        "checkpoints_credited": sum(int(after[j].get("checkpoints") or 0) for j in jobs),
    }


def wait_until(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"gave up after {timeout_s:.0f} s waiting for {what}")


def targets_met(r: dict[str, Any]) -> bool:
    ok = r["dispatch_started"] == r["jobs"]
    if r["failover_jobs"] > 0:
        ok = ok and r["failover_s"] <= FAILOVER_TARGET_S and r["double_runs"] == 0
        ok = ok and r["lost_s_checkpointed_max"] <= CHECKPOINT_INTERVAL_S + HEARTBEAT_S
    return bool(ok)


if __name__ == "__main__":
    main()
