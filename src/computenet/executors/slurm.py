"""``slurm``: runs each dispatch as a Slurm batch job through Slurm's command-line tools.

A site's network-file entry names its cluster by its ``slurm.conf``; every client command
runs with ``SLURM_CONF`` set to it, so one service drives any number of clusters::

    executor = { kind = "slurm", conf = "/etc/slurm/slurm.conf", partition = "gpu",
                 grace_s = 300, checkpoint_warning_s = 120 }

The options are listed in ``SlurmOptions`` (``slurm_options``); what Slurm answers is read
in ``slurm_records``. Each run gets a directory
``<output_dir>/<request_id>/`` holding the batch script, ``output.log`` (what the job
printed; slurmd writes it, so on a real cluster ``output_dir`` must be on a file system the
compute nodes share) and ``slurm_job_id`` (our record of the Slurm job). Every job is named
``computenet-<request_id>``: a submit repeated after a crash between ``sbatch`` and the
record finds the job by that name instead of submitting it twice, and a poll checks the name
so a job id that Slurm reused (ids restart at 1 when a cluster starts from empty state) is
never taken for ours. A finished job stays known after Slurm forgets it (``MinJobAge``)
through the cluster's job-completion file (``JobCompLoc`` with ``jobcomp/filetxt``).

A job's environment is built from an allow-list (``PATH``, ``HOME``, ``USER``, ``LANG``,
``SLURM_CONF``, ``COMPUTENET_*`` and the dispatch's own variables), never the service's. The
tenant's command is the batch script's body, so its own ``trap ... USR1`` receives the
checkpoint signal (``--signal=B:USR1@<checkpoint_warning_s>`` and ``checkpoint()``).
"""

from __future__ import annotations

import fcntl
import math
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from computenet.errors import ExecutorRefused, ExecutorUnavailable
from computenet.executors.base import Capabilities, Dispatch, ExecStatus, run_root
from computenet.executors.registry import register
from computenet.executors.slurm_options import SlurmOptions
from computenet.executors.slurm_records import (
    conf_settings,
    has_accounting,
    jobcomp_file,
    key_values,
    status_of,
)

JOB_NAME_PREFIX = "computenet-"
CHECKPOINT_SIGNAL = "USR1"
REQUEUE_SETTLE_S = 2.0  # a requeued job is released no sooner (see SlurmExecutor._release)
# Slurm's own words when a client cannot reach slurmctld; any of them means "retry later".
_UNREACHABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "zero bytes were transmitted",
    "communication connection failure",
    "slurm_persist_conn_open",
    "is down",
)
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SLURM_INPUT = ("SBATCH_", "SLURM_", "SALLOC_", "SRUN_")

# ----------------------------------------------------------------------------- executor


@register("slurm")
class SlurmExecutor:
    kind: ClassVar[str] = "slurm"
    capabilities: ClassVar[Capabilities] = Capabilities(
        runs_commands=True,
        cancel=True,
        checkpoint_signal=True,
        logs=True,
        survives_restart=True,
        binds_accelerators=True,  # Slurm gives each job its own GRES devices
    )

    def __init__(self, site_id: str, options: Mapping[str, Any], home: Path) -> None:
        self.site_id = site_id
        self.options = SlurmOptions.parse(site_id, options)
        # Absolute: slurmd reads --output and --chdir on the compute node.
        self.root = (self.options.output_dir or run_root(Path(home), site_id)).resolve()
        settings = conf_settings(self.options.conf)
        # Where finished jobs stay known after MinJobAge: accounting (sacct), else the
        # job-completion file, at the path the conf names unless an option says otherwise.
        self._accounting = (
            has_accounting(settings) if self.options.accounting is None else self.options.accounting
        )
        if self.options.jobcomp_file is None:
            self._jobcomp = jobcomp_file(settings)
        else:
            self._jobcomp = Path(self.options.jobcomp_file) if self.options.jobcomp_file else None
        # Client commands see only what they need: never the service's own environment
        # (its secrets, or SBATCH_* variables that would change what sbatch does).
        self._client_env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "SLURM_CONF": str(self.options.conf),
            "LC_ALL": "C",
        }

    # -- the interface

    def submit(self, dispatch: Dispatch) -> str:
        """Submit the job once per ``request_id``. Under a lock on the run directory: our
        record answers a repeat; without one (a crash between ``sbatch`` and the record, or
        a record lost with its disk), the job is looked up by its name first: in Slurm's
        queue always, and in accounting and the completion file too when an earlier attempt
        here got as far as ``sbatch`` (those lookups cost about 90 ms with sacct)."""
        run = self._run_dir(dispatch.request_id)
        with _locked(run):
            attempted = (run / "submitting").exists()
            job = self._recorded(run) or self._find_by_name(dispatch.request_id, finished=attempted)
            if job is None:
                (run / "submitting").touch()
                (run / "job.sh").write_text(_batch_script(dispatch), encoding="utf-8")
                self._make_writable_for_user(run)
                job = self._sbatch(dispatch, run)
            self._record(run, job)
        return self._local_id(job)

    def poll(self, request_id: str, local_id: str | None) -> ExecStatus:
        """Slurm's view of the job: ``scontrol show job`` while Slurm holds it, then
        accounting (``sacct``) and the cluster's job-completion file."""
        job = self._job_of(request_id, local_id)
        if job is None:
            return ExecStatus("unknown", message=f"Slurm has no job named {_name(request_id)}")
        fields = (
            self._show_job(job, request_id)
            or self._accounted_job(job, request_id)
            or self._completed_job(job, request_id)
        )
        if fields is None:
            return ExecStatus(
                "unknown",
                message=f"Slurm no longer knows job {job}, and neither accounting nor the "
                "job-completion file has a record of it (lost with its cluster's state?)",
                local_id=self._local_id(job),
            )
        self._release(request_id, job, fields)
        return status_of(fields, self._local_id(job))

    def _release(self, request_id: str, job: str, fields: Mapping[str, str]) -> None:
        """Start a job we requeued soon, not after Slurm's hold of about two minutes.

        Not at once: a job started again within the second of its requeue was killed with
        "Job credential revoked" and ended FAILED (seen on the test bed), since slurmd
        refuses credentials not newer than the revocation. Nor with a start time in the
        future: nothing wakes the scheduler when it comes (it ran again 4-30 s later). So
        the first poll at least ``REQUEUE_SETTLE_S`` after the requeue releases it at once.
        """
        marker = self._run_dir(request_id, create=False) / "requeued"
        held = fields.get("JobState") == "PENDING" and fields.get("Reason") == "BeginTime"
        if held and marker.exists() and time.time() - marker.stat().st_mtime >= REQUEUE_SETTLE_S:
            self._client(["scontrol", "update", f"jobid={job}", "StartTime=now"], refuse=True)
            marker.unlink(missing_ok=True)

    def cancel(self, request_id: str, local_id: str | None) -> None:
        """``scancel``; a job that already ended (or never started) is left as it is."""
        job = self._job_of(request_id, local_id)
        if job is not None and self._show_job(job, request_id) is not None:
            self._client(["scancel", job])

    def checkpoint(self, request_id: str, local_id: str | None) -> None:
        """Send SIGUSR1 to the job's batch shell now, as ``--signal`` does before the end:
        a checkpointable job traps it and saves."""
        job = self._require_job(request_id, local_id)
        self._client(["scancel", f"--signal={CHECKPOINT_SIGNAL}", "--batch", job], refuse=True)

    def requeue(self, request_id: str, local_id: str | None) -> None:
        """Stop the job and queue it again as the same Slurm job (it resumes from its own
        checkpoint). Jobs are submitted ``--no-requeue`` so that Slurm never restarts one on
        its own; this allows it for this one job first. Slurm then holds the job for about
        two minutes (Reason=BeginTime); the next ``poll`` releases it (see ``_release``)."""
        job = self._require_job(request_id, local_id)
        self._client(["scontrol", "update", f"jobid={job}", "Requeue=1"], refuse=True)
        self._client(["scontrol", "requeue", job], refuse=True)
        (self._run_dir(request_id) / "requeued").touch()

    def output(self, request_id: str, local_id: str | None, max_bytes: int) -> tuple[str, bool]:
        """The last ``max_bytes`` of the job's output file (UTF-8, undecodable bytes
        replaced) and whether anything before them was cut."""
        try:
            with (self._run_dir(request_id, create=False) / "output.log").open("rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except FileNotFoundError:
            return "", False
        return data.decode("utf-8", errors="replace"), size > max_bytes

    def heartbeat(self) -> None:
        """``scontrol ping``: returns if this cluster's slurmctld answers."""
        proc = self._client(["scontrol", "ping"], timeout_s=self.options.heartbeat_timeout_s)
        if proc.returncode != 0 or "is UP" not in proc.stdout:
            raise self._unavailable("scontrol ping", (proc.stdout + proc.stderr).strip())

    # -- submission

    def _sbatch(self, dispatch: Dispatch, run: Path) -> str:
        proc = self._client(
            ["sbatch", *self._sbatch_args(dispatch, run), str(run / "job.sh")],
            refuse=True,
            env=self._job_env(dispatch),
        )
        # --parsable prints "<id>" or "<id>;<cluster>"
        job = proc.stdout.strip().split(";", 1)[0]
        if not job.isdigit():
            raise ExecutorRefused(f"sbatch answered {proc.stdout.strip()!r}, not a job id")
        return job

    def _sbatch_args(self, dispatch: Dispatch, run: Path) -> list[str]:
        """The job's request to Slurm, with what ``_job_env`` gives sbatch as the job's
        whole environment (``--export=ALL`` of an environment built from an allow-list)."""
        opts = self.options
        args = [
            "--parsable",
            f"--job-name={_name(dispatch.request_id)}",
            f"--comment=computenet:job:{dispatch.job_id}:tenant:{dispatch.tenant_id}",
            f"--output={run / 'output.log'}",
            "--open-mode=append",  # a requeued run adds to what the first run printed
            f"--chdir={run}",
            "--export=ALL",
            f"--time={_minutes(dispatch.walltime_s + opts.grace_s)}",
            # Slurm never restarts a job on its own: computenet decides where work runs again.
            "--no-requeue",
        ]
        if dispatch.accelerators > 0:
            args.append(f"--gres={self._gres(dispatch)}")
        if dispatch.checkpointable:
            args.append(f"--signal=B:{CHECKPOINT_SIGNAL}@{opts.checkpoint_warning_s}")
        args += [f"--{k}={v}" for k, v in self._placement_args().items()]
        return args

    def _job_env(self, dispatch: Dispatch) -> dict[str, str]:
        """The job's environment: an allow-list, never the service's own variables.

        Built here and handed to sbatch rather than ``--export=NONE``: NONE makes slurmd
        rebuild the user's login environment (``su - user -c env``) at every start, which
        took 3-5 s per job on the test bed and delayed the jobs behind it.
        """
        user = pwd.getpwnam(self.options.user) if self.options.user else pwd.getpwuid(os.getuid())
        env = {
            "PATH": self.options.job_path,
            "HOME": user.pw_dir,
            "USER": user.pw_name,
            "LOGNAME": user.pw_name,
            "LANG": "C.UTF-8",
            "SLURM_CONF": str(self.options.conf),
            "COMPUTENET_JOB_ID": dispatch.job_id,
            "COMPUTENET_REQUEST_ID": dispatch.request_id,
            "COMPUTENET_TENANT_ID": dispatch.tenant_id,
            "COMPUTENET_SITE_ID": self.site_id,
            "COMPUTENET_CHECKPOINTABLE": "1" if dispatch.checkpointable else "0",
        }
        for key, value in dispatch.env.items():
            # SBATCH_*/SLURM_* would change the request itself (SBATCH_GRES, SLURM_CONF).
            if not _ENV_NAME.fullmatch(key) or key.startswith(_SLURM_INPUT) or "\0" in value:
                raise ExecutorRefused(
                    f"job variable {key!r} is refused: names are letters, digits and '_', "
                    f"not starting with {', '.join(_SLURM_INPUT)}, and values hold no NUL"
                )
            env[key] = value
        return env

    def _placement_args(self) -> dict[str, str]:
        opts = self.options
        found = {"partition": opts.partition, "account": opts.account, "qos": opts.qos}
        args = {k: v for k, v in found.items() if v}
        if opts.user is not None:
            user = pwd.getpwnam(opts.user)
            args |= {"uid": str(user.pw_uid), "gid": str(user.pw_gid)}
        return args

    def _gres(self, dispatch: Dispatch) -> str:
        kind = self.options.gres_type(dispatch.accelerator)
        typed = f"{self.options.gres_name}:{kind}" if kind else self.options.gres_name
        return f"{typed}:{dispatch.accelerators}"

    def _make_writable_for_user(self, run: Path) -> None:
        # The job (and slurmd writing its output) runs as ``user``: give it the run directory.
        if self.options.user is not None:
            user = pwd.getpwnam(self.options.user)
            os.chown(run, user.pw_uid, user.pw_gid)
            os.chown(run / "job.sh", user.pw_uid, user.pw_gid)

    # -- finding our job

    def _run_dir(self, request_id: str, *, create: bool = True) -> Path:
        if not _REQUEST_ID.fullmatch(request_id):
            raise ExecutorRefused(
                f"request id {request_id!r} is not usable as a Slurm job name and directory "
                "(letters, digits, '.', '_' and '-' only)"
            )
        run = self.root / request_id
        if create:
            run.mkdir(parents=True, exist_ok=True)
        return run

    def _local_id(self, job: str) -> str:
        return f"slurm:{self.site_id}:{job}"

    def _recorded(self, run: Path) -> str | None:
        try:
            job = (run / "slurm_job_id").read_text().strip()
        except FileNotFoundError:
            return None
        return job if job.isdigit() else None

    def _record(self, run: Path, job: str) -> None:
        tmp = run / "slurm_job_id.tmp"
        tmp.write_text(job + "\n")
        tmp.replace(run / "slurm_job_id")

    def _job_of(self, request_id: str, local_id: str | None) -> str | None:
        """The Slurm job id of ``request_id``: from the site-local id, our record, or by name."""
        prefix = f"slurm:{self.site_id}:"
        if local_id and local_id.startswith(prefix) and local_id[len(prefix) :].isdigit():
            return local_id[len(prefix) :]
        run = self._run_dir(request_id, create=False)
        job = self._recorded(run) or self._find_by_name(request_id)
        if job is not None and run.is_dir():
            self._record(run, job)
        return job

    def _require_job(self, request_id: str, local_id: str | None) -> str:
        job = self._job_of(request_id, local_id)
        if job is None:
            raise ExecutorRefused(f"Slurm has no job named {_name(request_id)}")
        return job

    def _find_by_name(self, request_id: str, *, finished: bool = True) -> str | None:
        """The newest job named for ``request_id``: in Slurm's memory (any state), else,
        with ``finished``, in accounting or the completion file (jobs Slurm forgot)."""
        name = _name(request_id)
        proc = self._client(["squeue", "--noheader", "--states=all", f"--name={name}", "-o", "%i"])
        if proc.returncode != 0:
            # Not knowing whether the job exists, submitting could run it twice: retry later.
            raise self._unavailable("squeue", proc.stderr.strip())
        ids = [line.strip() for line in proc.stdout.splitlines() if line.strip().isdigit()]
        if ids:
            return max(ids, key=int)
        if not finished:
            return None
        accounted = [f["JobId"] for f in self._sacct([f"--name={name}"]) if f["JobName"] == name]
        if accounted:
            return accounted[-1]
        done = [
            f["JobId"] for f in self._completion_lines(f" Name={name} ") if f.get("Name") == name
        ]
        return done[-1] if done else None

    def _show_job(self, job: str, request_id: str) -> dict[str, str] | None:
        """``scontrol show job`` fields of ``job`` if Slurm still holds it and it is ours."""
        proc = self._client(["scontrol", "show", "job", "--oneliner", job])
        if proc.returncode != 0:
            if "invalid job id" in proc.stderr.lower():
                return None
            raise self._unavailable("scontrol show job", proc.stderr.strip())
        fields = key_values(proc.stdout)
        return fields if fields.get("JobName") == _name(request_id) else None

    def _accounted_job(self, job: str, request_id: str) -> dict[str, str] | None:
        """The job's last record in Slurm's accounting, if the cluster keeps one."""
        mine = [f for f in self._sacct([f"--jobs={job}"]) if f["JobName"] == _name(request_id)]
        return mine[-1] if mine else None

    def _sacct(self, select: list[str]) -> list[dict[str, str]]:
        """Job records from ``sacct`` (one line per job, not per step), oldest first. The
        text form, not ``--json``: Slurm 22.05's JSON gave return code 0 for a job that
        exited 3 (measured), where the text form says ``3:0``. Empty when the cluster has
        no accounting or its database does not answer (the completion file is next)."""
        if not self._accounting:
            return []
        columns = ("JobId", "JobName", "JobState", "ExitCode", "Reason")
        proc = self._client(
            [
                "sacct",
                "--noheader",
                "--parsable2",
                "--allocations",
                "--starttime=1970-01-01",
                "--format=JobID,JobName,State,ExitCode,Reason",
                *select,
            ]
        )
        if proc.returncode != 0:
            return []
        rows = []
        for line in proc.stdout.splitlines():
            values = line.split("|")
            if len(values) == len(columns) and values[0].isdigit():
                rows.append(dict(zip(columns, values, strict=True)))
        return rows

    def _completed_job(self, job: str, request_id: str) -> dict[str, str] | None:
        name = _name(request_id)
        found = None
        for fields in self._completion_lines(f" Name={name} "):
            if fields.get("JobId") == job and fields.get("Name") == name:
                found = fields  # the last line wins: a requeued job ends more than once
        return found

    def _completion_lines(self, needle: str) -> Iterator[dict[str, str]]:
        """Each line of the cluster's job-completion file (``JobCompLoc``), as fields. The
        file is read where the service runs: on a real cluster it must be shared with the
        controller's host, or finished jobs are known only until ``MinJobAge``."""
        path = self._jobcomp
        if path is None:
            return
        try:
            with path.open(encoding="utf-8", errors="replace") as f:
                for line in f:
                    if needle in line:  # parse only the lines that can match
                        yield key_values(line)
        except FileNotFoundError:
            return

    # -- running client commands

    def _client(
        self,
        args: list[str],
        *,
        refuse: bool = False,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run one Slurm client command against this site's cluster. A controller that
        does not answer raises ``ExecutorUnavailable``; with ``refuse``, any other failure
        raises ``ExecutorRefused`` with Slurm's own message."""
        timeout = timeout_s or self.options.command_timeout_s
        try:
            proc = subprocess.run(
                [shutil.which(args[0], path=self._client_env["PATH"]) or args[0], *args[1:]],
                env=self._client_env if env is None else {**env, "LC_ALL": "C"},
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise ExecutorUnavailable(
                f"site {self.site_id}: {args[0]} not found. Fix: install the Slurm client "
                "tools (apt-get install slurm-client) on the service's machine"
            ) from None
        except subprocess.TimeoutExpired:
            raise self._unavailable(args[0], f"no answer within {timeout:g} s") from None
        if proc.returncode != 0:
            said = proc.stderr.strip() or proc.stdout.strip()
            if any(marker in said.lower() for marker in _UNREACHABLE):
                raise self._unavailable(args[0], said)
            if refuse:
                raise ExecutorRefused(f"Slurm ({self.site_id}) refused: {said}")
        return proc

    def _unavailable(self, command: str, said: str) -> ExecutorUnavailable:
        return ExecutorUnavailable(
            f"site {self.site_id}: Slurm controller does not answer ({command}: {said}); "
            f"SLURM_CONF={self.options.conf}"
        )


# ----------------------------------------------------------------------------- helpers


def _name(request_id: str) -> str:
    return JOB_NAME_PREFIX + request_id


def _minutes(seconds: int) -> int:
    """Slurm time limits are whole minutes: round up, at least one."""
    return max(1, math.ceil(seconds / 60))


def _batch_script(dispatch: Dispatch) -> str:
    """The batch script: the tenant's command as written, after one line that is a command,
    so ``#SBATCH`` lines in the tenant's command are never read as options (sbatch stops
    reading them at the first command)."""
    command = dispatch.command or "echo 'computenet: job has no command; nothing to run'"
    if "\0" in command:
        raise ExecutorRefused("the command holds a NUL byte, which no shell can run")
    return f"#!/bin/bash\n: computenet request {dispatch.request_id}\n{command}\n"


@contextmanager
def _locked(run: Path) -> Iterator[None]:
    """An exclusive lock on one run directory, so two submits of one request on this host
    cannot both reach ``sbatch``."""
    with (run / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
