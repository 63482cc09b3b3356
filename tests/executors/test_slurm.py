"""The Slurm executor against two real Slurm clusters (the test bed of scripts/testbed.sh).

Jobs wait on files the tests create, so each state is seen for sure however fast Slurm is.
Two checks need Slurm's own clocks (a one-minute time limit, checked every 30 s; the purge of
finished jobs after MinJobAge): their jobs start when this module starts and are checked at
its end, so the waits overlap with the other tests.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.beds.slurm import SlurmBed

from computenet.catalog import load_network
from computenet.errors import ExecutorRefused, ExecutorUnavailable, InputError
from computenet.executors.base import Dispatch, ExecStatus
from computenet.executors.registry import make_executor
from computenet.executors.slurm import SlurmExecutor

WAIT_S = 120.0  # how long a test waits for Slurm before it fails (never reached when green)


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    # Readable by every user: one test runs its job as ``nobody``.
    path = Path(tempfile.mkdtemp(prefix="cn-slurm-home-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def sites(slurm_bed: SlurmBed, home: Path) -> dict[str, SlurmExecutor]:
    """One executor per test-bed site, built from the network file the test bed wrote."""
    network = load_network(str(slurm_bed.network_file))
    return {s.id: make_executor(s.executor, s.id, s.executor_options, home) for s in network.sites}


def dispatch(request_id: str, command: str, **changes: object) -> Dispatch:
    base = Dispatch(
        request_id=request_id,
        job_id=f"job-{request_id}",
        tenant_id="tenant-1",
        command=command,
        accelerators=1,
        accelerator="H100",
        walltime_s=600,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def wait_until(
    check: Callable[[], ExecStatus], done: Callable[[ExecStatus], bool], what: str
) -> ExecStatus:
    deadline = time.monotonic() + WAIT_S
    while True:
        status = check()
        if done(status):
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {status} after {WAIT_S:g} s")
        time.sleep(0.2)


def wait_status(ex: SlurmExecutor, request_id: str, *wanted: str) -> ExecStatus:
    return wait_until(
        lambda: ex.poll(request_id, None),
        lambda s: s.status in wanted,
        f"job {request_id} never reached {'/'.join(wanted)}",
    )


def wait_file(path: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path} never appeared")
        time.sleep(0.2)


def wait_forgotten(bed: SlurmBed, site: str, local_id: str) -> None:
    """Wait until the cluster's controller no longer holds the job (after MinJobAge)."""
    job = local_id.rsplit(":", 1)[1]
    deadline = time.monotonic() + WAIT_S
    while "Invalid job id" not in bed.slurm(site, "scontrol", "show", "job", job).stderr:
        if time.monotonic() > deadline:
            pytest.fail(f"Slurm still holds job {job} after {WAIT_S:g} s")
        time.sleep(0.5)


def run_dir(home: Path, site: str, request_id: str) -> Path:
    return home / "jobs" / site / request_id


# A job that says it started, then waits for the test to create ``go`` in its run directory.
WAIT_FOR_GO = "echo started; while [ ! -e go ]; do sleep 0.2; done; echo finished"


def executor(bed: SlurmBed, home: Path, site: str, **options: object) -> SlurmExecutor:
    """A fresh executor of ``site`` (as after a restart of computenet), options changed."""
    conf = {"conf": str(bed.conf(site)), "partition": "main", **options}
    return SlurmExecutor(site, conf, home)


# ------------------------------------------------------------------ started first, checked last


@pytest.fixture(scope="module", autouse=True)
def timed_job(slurm_bed: SlurmBed, home: Path) -> SlurmExecutor:
    """A job that would run forever, submitted before every other test of this module.

    Planned for 60 s with no grace: ``--time=1`` (Slurm counts minutes and checks limits
    about every 30 s, so it ends 60-90 s after it starts). It is checkpointable, so
    ``--signal=B:USR1@20`` warns it before the end; its trap notes the warning and goes on.
    """
    ex = executor(slurm_bed, home, "sitea", grace_s=0, checkpoint_warning_s=20)
    command = "trap 'echo warned >> checkpoint' USR1; while :; do sleep 0.2; done"
    ex.submit(dispatch("timed", command, walltime_s=60, checkpointable=True))
    return ex


# ------------------------------------------------------------------ the tests


def test_the_test_bed_network_file_loads(slurm_bed: SlurmBed) -> None:
    network = load_network(str(slurm_bed.network_file))
    assert [s.id for s in network.sites] == ["sitea", "siteb"]
    for site in network.sites:
        assert site.executor == "slurm"
        assert site.executor_options["conf"] == str(slurm_bed.conf(site.id))
        assert [(p.accelerator, p.count) for p in site.pools] == [("H100", 4)]
    assert network.sites[0].jurisdiction == network.sites[1].jurisdiction


def test_a_job_runs_and_its_output_is_read_back(
    sites: dict[str, SlurmExecutor], home: Path
) -> None:
    ex = sites["sitea"]
    local_id = ex.submit(dispatch("run-1", WAIT_FOR_GO + "; echo job=$COMPUTENET_JOB_ID"))
    assert local_id.startswith("slurm:sitea:")
    assert ex.submit(dispatch("run-1", "echo a second run")) == local_id  # a repeat: same job
    wait_status(ex, "run-1", "running")
    (run_dir(home, "sitea", "run-1") / "go").touch()
    final = wait_status(ex, "run-1", "succeeded", "failed")
    assert (final.status, final.exit_code, final.local_id) == ("succeeded", 0, local_id)
    text, cut = ex.output("run-1", local_id, 10_000)
    assert text == "started\nfinished\njob=job-run-1\n" and not cut
    assert ex.output("run-1", local_id, 4) == ("n-1\n", True)


def test_a_failing_command_fails_with_its_exit_code(sites: dict[str, SlurmExecutor]) -> None:
    ex = sites["sitea"]
    ex.submit(dispatch("fail-1", "echo about to fail; exit 3"))
    final = wait_status(ex, "fail-1", "succeeded", "failed")
    assert (final.status, final.exit_code) == ("failed", 3)
    assert "FAILED" in final.message


def test_the_job_sees_allow_listed_variables_and_no_server_secret(
    sites: dict[str, SlurmExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPUTENET_ADMIN_TOKEN", "s3cret-admin-token")
    monkeypatch.setenv("SBATCH_GRES", "gpu:h100:4")  # would change what sbatch asks for
    ex = sites["sitea"]
    # A tenant's #SBATCH line is not read as an option: the job keeps its one GPU.
    command = "#SBATCH --gres=gpu:h100:4\nenv; echo gpus=$SLURM_GPUS_ON_NODE"
    ex.submit(dispatch("env-1", command, env={"COMPUTENET_DATASET": "a b'c"}))
    wait_status(ex, "env-1", "succeeded")
    text, _ = ex.output("env-1", None, 100_000)
    assert "s3cret" not in text
    lines = set(text.splitlines())
    assert {"COMPUTENET_JOB_ID=job-env-1", "COMPUTENET_REQUEST_ID=env-1"} <= lines
    assert {"COMPUTENET_DATASET=a b'c", "gpus=1"} <= lines


def test_the_two_sites_are_independent_clusters(
    sites: dict[str, SlurmExecutor], slurm_bed: SlurmBed, home: Path
) -> None:
    a, b = sites["sitea"], sites["siteb"]
    id_b = b.submit(dispatch("indep-b", WAIT_FOR_GO))
    assert id_b.startswith("slurm:siteb:")
    wait_status(b, "indep-b", "running")
    # Site A's cluster knows nothing of it, even when handed site B's id for it.
    assert a.poll("indep-b", None).status == "unknown"
    assert a.poll("indep-b", id_b).status == "unknown"
    names_a = slurm_bed.slurm("sitea", "squeue", "-h", "-t", "all", "-o", "%j").stdout.split()
    assert "computenet-indep-b" not in names_a
    (run_dir(home, "siteb", "indep-b") / "go").touch()
    assert wait_status(b, "indep-b", "succeeded", "failed").status == "succeeded"


def test_cancel_stops_a_running_job(sites: dict[str, SlurmExecutor]) -> None:
    ex = sites["siteb"]
    local_id = ex.submit(dispatch("cancel-1", WAIT_FOR_GO))
    wait_status(ex, "cancel-1", "running")
    ex.cancel("cancel-1", local_id)
    final = wait_status(ex, "cancel-1", "cancelled", "succeeded", "failed")
    assert final.status == "cancelled"
    ex.cancel("cancel-1", local_id)  # again, on a finished job: nothing happens
    ex.cancel("never-submitted", None)
    assert ex.poll("cancel-1", local_id).status == "cancelled"


def test_the_checkpoint_signal_reaches_the_jobs_trap(
    sites: dict[str, SlurmExecutor], home: Path
) -> None:
    ex = sites["sitea"]
    command = "trap 'echo saved > checkpoint; exit 0' USR1; echo ready; while :; do sleep 0.2; done"
    local_id = ex.submit(dispatch("ckpt-1", command, checkpointable=True))
    wait_until(
        lambda: ex.poll("ckpt-1", local_id),
        lambda s: ex.output("ckpt-1", local_id, 100)[0] == "ready\n",
        "the job never installed its trap",
    )
    ex.checkpoint("ckpt-1", local_id)
    wait_file(run_dir(home, "sitea", "ckpt-1") / "checkpoint")
    assert wait_status(ex, "ckpt-1", "succeeded", "failed").status == "succeeded"


def test_requeue_runs_the_same_job_again(sites: dict[str, SlurmExecutor], home: Path) -> None:
    ex = sites["siteb"]
    command = "echo run >> runs; echo run; " + WAIT_FOR_GO
    local_id = ex.submit(dispatch("requeue-1", command, checkpointable=True))
    runs = run_dir(home, "siteb", "requeue-1") / "runs"
    wait_file(runs)
    ex.requeue("requeue-1", local_id)
    # Running again as the same Slurm job: without the release it would wait ~2 minutes.
    wait_until(
        lambda: ex.poll("requeue-1", local_id),
        lambda s: s.status == "running" and runs.read_text() == "run\nrun\n",
        "the requeued job never ran again",
    )
    (runs.parent / "go").touch()
    final = wait_status(ex, "requeue-1", "succeeded", "failed")
    assert (final.status, final.local_id) == ("succeeded", local_id)
    assert ex.output("requeue-1", local_id, 10_000)[0].count("run\n") == 2


def test_slurm_refusals_raise_executor_refused_with_slurms_words(
    sites: dict[str, SlurmExecutor], slurm_bed: SlurmBed, home: Path
) -> None:
    wrong = executor(slurm_bed, home, "sitea", partition="nonexistent")
    with pytest.raises(ExecutorRefused, match=r"(?i)invalid partition"):
        wrong.submit(dispatch("refused-1", "true"))
    with pytest.raises(ExecutorRefused, match="Requested node configuration is not available"):
        sites["sitea"].submit(dispatch("refused-2", "true", accelerators=5))
    with pytest.raises(ExecutorRefused, match="NUL"):
        sites["sitea"].submit(dispatch("refused-3", "echo a\0b"))
    with pytest.raises(ExecutorRefused, match="SBATCH_"):
        sites["sitea"].submit(dispatch("refused-4", "true", env={"SBATCH_GRES": "gpu:h100:4"}))


def test_jobs_can_run_as_an_unprivileged_user(slurm_bed: SlurmBed, home: Path) -> None:
    ex = executor(slurm_bed, home, "siteb", user="nobody")
    ex.submit(dispatch("user-1", "id -un"))
    assert wait_status(ex, "user-1", "succeeded", "failed").status == "succeeded"
    assert ex.output("user-1", None, 100)[0] == "nobody\n"


def test_a_restarted_service_finds_its_job_and_its_end_after_slurm_forgot_it(
    slurm_bed: SlurmBed, home: Path
) -> None:
    before = executor(slurm_bed, home, "sitea")
    local_id = before.submit(dispatch("restart-1", WAIT_FOR_GO))
    wait_status(before, "restart-1", "running")
    # Restarted computenet: a new executor. Even with the record lost (a crash between
    # sbatch and writing it), the repeated submit finds the job by its name.
    (run_dir(home, "sitea", "restart-1") / "slurm_job_id").unlink()
    after = executor(slurm_bed, home, "sitea")
    assert after.submit(dispatch("restart-1", WAIT_FOR_GO)) == local_id
    names = slurm_bed.slurm("sitea", "squeue", "-h", "-t", "all", "-o", "%j").stdout.split()
    assert names.count("computenet-restart-1") == 1
    (run_dir(home, "sitea", "restart-1") / "go").touch()
    assert wait_status(after, "restart-1", "succeeded", "failed").status == "succeeded"
    # MinJobAge is 2 s on the test bed: wait until Slurm itself no longer knows the job ...
    wait_forgotten(slurm_bed, "sitea", local_id)
    # ... and yet another restart still reports how it ended (from the completion file).
    final = executor(slurm_bed, home, "sitea", accounting=False).poll("restart-1", None)
    assert (final.status, final.exit_code, final.local_id) == ("succeeded", 0, local_id)


def test_accounting_knows_a_finished_job_after_slurm_forgot_it(
    slurm_bed: SlurmBed, home: Path
) -> None:
    # No completion file: only sacct can answer once MinJobAge has passed.
    ex = executor(slurm_bed, home, "siteb", jobcomp_file="")
    local_id = ex.submit(dispatch("acct-1", "echo bye; exit 3"))
    wait_status(ex, "acct-1", "failed", "succeeded")
    wait_forgotten(slurm_bed, "siteb", local_id)
    (run_dir(home, "siteb", "acct-1") / "slurm_job_id").unlink()  # the record lost as well
    again = executor(slurm_bed, home, "siteb", jobcomp_file="")
    final = again.poll("acct-1", None)
    assert (final.status, final.exit_code, final.local_id) == ("failed", 3, local_id)
    assert again.submit(dispatch("acct-1", "echo bye; exit 3")) == local_id  # not run again


def test_a_killed_controller_makes_the_site_unavailable(
    slurm_bed: SlurmBed, sites: dict[str, SlurmExecutor]
) -> None:
    ex = sites["siteb"]
    ex.heartbeat()
    slurm_bed.script("kill", "siteb")
    try:
        with pytest.raises(ExecutorUnavailable, match="siteb"):
            ex.heartbeat()
        with pytest.raises(ExecutorUnavailable):
            ex.submit(dispatch("down-1", "true"))
        sites["sitea"].heartbeat()  # the other site carries on
    finally:
        slurm_bed.script("up")
    ex.heartbeat()


def test_slurm_enforces_the_time_limit_and_warns_before_it(
    timed_job: SlurmExecutor, home: Path
) -> None:
    final = wait_status(timed_job, "timed", "succeeded", "failed", "cancelled")
    assert final.status == "failed" and "TIMEOUT" in final.message
    assert "warned" in (run_dir(home, "sitea", "timed") / "checkpoint").read_text()


# ------------------------------------------------------------------ options (no cluster)


@pytest.mark.parametrize(
    ("options", "where", "fix"),
    [
        ({}, "sites.x.executor.conf", "conf ="),
        ({"conf": "/nonexistent/slurm.conf"}, "sites.x.executor.conf", "slurm.conf"),
        ({"grace_s": -1}, "sites.x.executor.grace_s", "grace_s = 300"),
        ({"checkpoint_warning_s": 1.5}, "sites.x.executor.checkpoint_warning_s", "= 120"),
        ({"partiton": "gpu"}, "sites.x.executor.partiton", "partition"),
        ({"gres_types": {"H100": 1}}, "sites.x.executor.gres_types", "h100"),
        ({"user": "no-such-user-here"}, "sites.x.executor.user", "create it"),
        ({"accounting": "yes"}, "sites.x.executor.accounting", "accounting = true"),
    ],
)
def test_bad_options_name_the_key_and_the_fix(
    tmp_path: Path, options: dict[str, object], where: str, fix: str
) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=x\n")
    full = {"conf": str(conf), **options} if "conf" not in options and options else options
    with pytest.raises(InputError) as err:
        SlurmExecutor("x", full, tmp_path)
    assert err.value.where == where and fix in str(err.value)
