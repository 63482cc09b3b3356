"""The two-cluster Slurm test bed, started once per test run through ``scripts/testbed.sh``.

It runs in its own directory under /tmp on free ports, so it never meets a test bed a user
started by hand (7817/7918 by default). ``MinJobAge`` is 2 s, so the tests also see what
happens after Slurm forgets a finished job (it purges them about every 10 s here). Both
clusters report to accounting (a private MariaDB and slurmdbd), so ``sacct`` answers too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "testbed.sh"
SITES = ("sitea", "siteb")


@dataclass(frozen=True)
class SlurmBed:
    """The running test bed: its directory, each site's slurm.conf, and the script's verbs."""

    base: Path
    env: dict[str, str]

    def conf(self, site: str) -> Path:
        return self.base / site / "slurm.conf"

    @property
    def network_file(self) -> Path:
        return self.base / "testbed.toml"

    def script(self, *args: str) -> str:
        proc = subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise RuntimeError(f"testbed.sh {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def slurm(self, site: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client command against one site, as a user would."""
        env = {"PATH": os.environ["PATH"], "SLURM_CONF": str(self.conf(site))}
        return subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=60)


def _free_port_pair(avoid: set[int]) -> int:
    """A port p with p and p + 1 free (slurmctld and slurmd of one site)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 1 > 65535 or {port, port + 1} & avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free consecutive ports for the Slurm test bed")


@pytest.fixture(scope="session")
def slurm_bed() -> Iterator[SlurmBed]:
    """Both Slurm clusters, up for the whole test run, stopped at its end."""
    tools = ("slurmctld", "slurmd", "sbatch", "slurmdbd", "mariadbd")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: the Slurm executor tests run against two real "
            "Slurm clusters with accounting. Fix: apt-get install slurm-wlm slurmdbd "
            "mariadb-server (.ci/run installs them)"
        )
    if os.geteuid() != 0:
        pytest.fail("the Slurm test bed needs root (slurmd starts jobs as their users)")
    # A short path: slurmd puts its sockets under the base directory (108-byte limit).
    base = Path(tempfile.mkdtemp(prefix="cn-slurm-", dir="/tmp"))
    base.chmod(0o755)  # jobs run as other users in some tests
    port_a = _free_port_pair(set())
    port_b = _free_port_pair({port_a, port_a + 1})
    port_db = _free_port_pair({port_a, port_a + 1, port_b, port_b + 1})
    env = {
        **os.environ,
        "COMPUTENET_TESTBED": str(base),
        "COMPUTENET_TESTBED_PORT_A": str(port_a),
        "COMPUTENET_TESTBED_PORT_B": str(port_b),
        "COMPUTENET_TESTBED_PORT_DB": str(port_db),
        "COMPUTENET_TESTBED_MIN_JOB_AGE": "2",
        "COMPUTENET_TESTBED_ACCOUNTING": "1",
    }
    bed = SlurmBed(base, env)
    try:
        bed.script("up")
        yield bed
    finally:
        bed.script("down")
        shutil.rmtree(base, ignore_errors=True)
