"""A real Ray head for the tests: one per test run, started by ``scripts/ray-head.sh``.

The head takes 6-20 s and 1.6 GB to start, so it is session-scoped and started only when
a test asks for ``ray_head``. Its ports are free ones picked here, so it does not collide
with a test bed a user runs on the defaults (6390/8265), and its state lives in a fresh
directory that is removed at the end. It is started with a canary secret in the environment
of the starting process, which the script must keep out of the head (and so out of jobs),
and declares one GPU (a resource only, no device) so GPU gangs are scheduled for real.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ray-head.sh"


@dataclass(frozen=True)
class RayHead:
    address: str  # the Jobs API URL, an executor's ``address``
    python: str  # this interpreter, by absolute path (the head's PATH differs)
    canary: str  # a secret the starting process had in its environment
    gpus: int = 1  # GPUs the head declares
    gcs: str = ""  # HOST:PORT of the head's GCS, what ``ray.init(address=...)`` joins


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _ray_bin() -> str | None:
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else shutil.which("ray")


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A Ray head on 127.0.0.1 (auth off), stopped at the end of the run."""
    ray_bin = _ray_bin()
    if importlib.util.find_spec("ray") is None or ray_bin is None:
        pytest.fail("the Ray tests need Ray: pip install -e '.[ray]'")
    head_port, dash_port, agent_port, client_port = _free_ports(4)
    state = tempfile.mkdtemp(prefix="cnray-", dir="/tmp")  # short: Ray's socket paths are long
    canary = "canary-" + uuid.uuid4().hex
    env = dict(
        os.environ,
        RAY_BIN=ray_bin,
        RAY_HEAD_PORT=str(head_port),
        RAY_DASHBOARD_PORT=str(dash_port),
        RAY_AGENT_PORT=str(agent_port),
        RAY_CLIENT_PORT=str(client_port),
        RAY_HEAD_DIR=state,
        RAY_HEAD_GPUS="1",  # a declared GPU resource (no device): Ray schedules and binds it
        COMPUTENET_ADMIN_TOKEN=canary,
        # A system PATH, as a head started by a service manager has: jobs find this venv's
        # python only through the executor's ``python`` option.
        PATH="/usr/local/bin:/usr/bin:/bin",
    )
    started = subprocess.run(
        [str(SCRIPT), "start"], env=env, capture_output=True, text=True, check=False
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"the Ray head did not start:\n{started.stdout}{started.stderr}")
        yield RayHead(
            started.stdout.strip().splitlines()[-1],
            sys.executable,
            canary,
            gcs=f"127.0.0.1:{head_port}",
        )
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(state, ignore_errors=True)
