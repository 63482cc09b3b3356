"""``local``: runs a job's command on this machine, as an unprivileged uid, in a sandbox of
uid separation, rlimits and an enforced walltime (not a container).

Each run has a directory ``<home>/jobs/<request_id>/`` that only the server's user can
write (0711: the job may pass through it to its workspace, not list or read it) holding
the record: ``spec.json`` (what to run), ``started`` (the claim), ``supervisor.pid``,
``pid`` (the job's process group), ``output.log`` (stdout and stderr, 0600), ``waiting``,
``walltime_exceeded``, ``refused``, ``cancelled`` and, once it ends, ``exit_code``. The job
itself runs in ``work/`` below it (0700, owned by the run's uid; its HOME and TMPDIR). The
files are the record, so a restarted service still polls work started before it died, and
a repeated submit never runs the command twice.

A detached supervisor (``local_supervisor.py``, running as the server's user) owns each
run: it allocates the run's uid and devices, starts the job, enforces the walltime and
records the exit code, so the walltime holds even while the service is down.

Isolation, as the options set it (all in the site's ``executor`` table):

* ``uid_range = [lo, hi]``: each run gets its own uid from this range (no passwd entry is
  needed), handed out round-robin; runs cannot read each other's files or processes, and
  what a run leaves running is killed by uid when it ends. ``uid_range = []``: every run
  uses ``user``'s own uid (runs are then not isolated from each other).
* ``user`` (default ``computenet-run``, a system account the operator creates): the group
  of every run (so an operator can grant all jobs read access to shared data with it).
* The server must be root to switch users; otherwise the executor refuses to start unless
  ``allow_same_user = true`` (then jobs run as the server's own user and can read its
  database and environment: for a single-user machine only).
* The environment is an allow-list: ``PATH`` (option ``path``), ``HOME``/``TMPDIR`` (the
  workspace), the names in ``pass_env`` copied from the server's environment (default
  ``LANG``, ``LC_ALL``, ``TZ``), the fixed values of ``env``, ``COMPUTENET_JOB_ID``,
  ``COMPUTENET_REQUEST_ID``, ``COMPUTENET_TENANT_ID``, ``COMPUTENET_ACCELERATORS``,
  ``COMPUTENET_WALLTIME_S`` and ``CUDA_VISIBLE_DEVICES``. Never the server's secrets.
* Walltime: TERM to the job's process group at ``walltime_s + grace_s`` (default 10 s),
  KILL ``kill_after_s`` (default 10 s) later; the run is reported failed, saying so.
* rlimits: ``cpu_time_s`` (RLIMIT_CPU; default every CPU of the host for the whole
  walltime, a backstop should the supervisor die), ``memory_mb`` (RLIMIT_DATA; default
  three quarters of the host's memory), ``max_processes`` (RLIMIT_NPROC, per run uid;
  default 1024). They are per process, not per run; cgroups are not used.
* Devices: ``devices = ["0", "1", ...]`` (default: the GPUs ``nvidia-smi -L`` lists, none
  without it); each run gets its own through ``CUDA_VISIBLE_DEVICES`` (allocation files
  under ``<home>/jobs/.alloc``, so a restart keeps them), never two runs on one device. A
  gang larger than the inventory is refused; one larger than the free devices waits.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from computenet.errors import ExecutorRefused, InputError
from computenet.executors.base import Capabilities, Dispatch, ExecStatus, option
from computenet.executors.registry import register
from computenet.safetext import COMMAND_ALLOWED, refusal

SUPERVISOR = Path(__file__).with_name("local_supervisor.py")
DEFAULT_USER = "computenet-run"
DEFAULT_UID_RANGE = [3_000_000, 3_099_999]
"""Uids for runs: far above login accounts (Debian: 1000-59999), systemd's dynamic users
(61184-65519) and the usual /etc/subuid blocks; pick a range no account or container uses."""
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
STARTING = "starting: its supervisor is allocating a uid and devices"
PLACEHOLDER = "echo 'computenet: job has no command; nothing to run'"


@dataclass(frozen=True)
class Sandbox:
    """How runs of one site are confined (resolved from the site's options)."""

    switch_user: bool  # False only when the operator allowed running as the server's user
    gid: int | None
    uid: int | None  # the shared uid when ``uid_range`` is empty
    uid_range: tuple[int, int] | None
    grace_s: int
    kill_after_s: int
    cpu_time_s: int  # 0: every CPU for the whole walltime
    memory_mb: int  # 0: three quarters of the host's memory
    max_processes: int
    devices: tuple[str, ...]
    path: str
    pass_env: tuple[str, ...]
    env: Mapping[str, str]


@register("local")
class LocalExecutor:
    kind: ClassVar[str] = "local"
    capabilities: ClassVar[Capabilities] = Capabilities(
        runs_commands=True,
        cancel=True,
        checkpoint_signal=False,
        logs=True,
        survives_restart=True,
        # Each run gets its own devices of the site's inventory (none where it has none).
        binds_accelerators=True,
    )

    def __init__(self, site_id: str, options: Mapping[str, Any], home: Path) -> None:
        self.site_id = site_id
        self.home = Path(home)
        self.root = self.home / "jobs"
        self.sandbox = sandbox_from(site_id, options)
        _private_dirs(self.home, self.root)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def heartbeat(self) -> None:
        """This machine always answers while the service runs on it."""

    def _dir(self, request_id: str) -> Path:
        return self.root / request_id

    def submit(self, dispatch: Dispatch) -> str:
        """Hand the run to a detached supervisor, at most once however often this is called
        and wherever the caller died before: the supervisor claims the run with an atomic
        ``mkdir started`` before it runs anything, so of two launched for one request id
        (a restart repeating a dispatch) only one runs it."""
        self._check(dispatch)
        local_id = f"local:{self.site_id}:{dispatch.request_id}"
        d = self._dir(dispatch.request_id)
        d.mkdir(mode=0o711, exist_ok=True)
        os.chmod(d, 0o711)  # a directory an older server made keeps no looser mode
        if (d / "started").exists() or (d / "exit_code").exists():
            return local_id  # already claimed: nothing to launch
        _write_private(d / "spec.json", json.dumps(self._spec(dispatch, d)))
        with _open_private(d / "supervisor.log") as log:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(SUPERVISOR), str(d)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the server; never in its process group
                cwd=d,
                env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"},
            )
        self._procs[dispatch.request_id] = proc
        return local_id

    def _check(self, dispatch: Dispatch) -> None:
        """Refuse (this job only) what cannot run: control characters that slipped past the
        API, a gang larger than the site's device inventory."""
        name = dispatch.request_id
        if not name or name.startswith(".") or "/" in name or refusal(name):
            raise ExecutorRefused(f"local: request id {name!r} is not a plain file name")
        if dispatch.command is not None:
            reason = refusal(dispatch.command, COMMAND_ALLOWED)
            if reason is not None:
                raise ExecutorRefused(f"local: the command {reason}")
        for key, value in dispatch.env.items():
            if not key or "=" in key or refusal(key) or refusal(value):
                raise ExecutorRefused(f"local: environment variable {key!r} is not plain text")
        devices = self.sandbox.devices
        if devices and dispatch.accelerators > len(devices):
            raise ExecutorRefused(
                f"local: the job needs {dispatch.accelerators} devices and site "
                f"{self.site_id} has {len(devices)} ({', '.join(devices)}); ask for at most "
                f"{len(devices)} or list more in the site's executor devices option"
            )

    def _spec(self, dispatch: Dispatch, d: Path) -> dict[str, Any]:
        """What the supervisor needs, all decided here (it reads no configuration)."""
        box = self.sandbox
        work = d / "work"
        walltime_s = max(1, int(dispatch.walltime_s))
        return {
            "request_id": dispatch.request_id,
            "command": dispatch.command or PLACEHOLDER,
            "env": job_environment(dispatch, box, work, walltime_s),
            "walltime_s": walltime_s,
            "grace_s": box.grace_s,
            "kill_after_s": box.kill_after_s,
            "uid": box.uid,
            "gid": box.gid,
            "uid_range": list(box.uid_range) if box.uid_range else None,
            "devices": list(box.devices),
            "accelerators": dispatch.accelerators,
            "alloc_dir": str(self.root / ".alloc"),
            "limits": {
                "cpu_s": box.cpu_time_s
                or (walltime_s + box.grace_s + box.kill_after_s) * (os.cpu_count() or 1),
                "data_bytes": box.memory_mb * 2**20 or _memory_bytes() * 3 // 4,
                "nproc": box.max_processes,
            },
        }

    def cancel(self, request_id: str, local_id: str | None = None) -> None:
        """Mark the run cancelled, then kill its process group. In this order, a supervisor
        that has not yet written the job's pid sees the mark and never starts the job; one
        waiting for devices stops waiting. Escaped processes die in the supervisor's sweep."""
        d = self._dir(request_id)
        if not d.exists():
            return
        (d / "cancelled").touch()
        pid = _read_int(d / "pid")
        if pid is not None and not (d / "exit_code").exists():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        proc = self._procs.pop(request_id, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def poll(self, request_id: str, local_id: str | None = None) -> ExecStatus:
        d = self._dir(request_id)
        if not d.exists():
            return ExecStatus("unknown", message="never started here")
        if (d / "cancelled").exists():
            return ExecStatus("cancelled")
        proc = self._procs.get(request_id)
        if proc is not None and proc.poll() is not None:
            self._procs.pop(request_id, None)
        if (d / "exit_code").exists():
            return finished(d)
        supervisor = _read_int(d / "supervisor.pid")
        if supervisor is not None:
            if _supervising(supervisor, d):
                if (d / "pid").exists():
                    return ExecStatus("running")
                return ExecStatus("pending", message=_read_text(d / "waiting") or STARTING)
            if (d / "exit_code").exists():  # it may have recorded its code since we looked
                return finished(d)
            return ExecStatus(
                "failed", message=f"the run's supervisor (pid {supervisor}) ended without a code"
            )
        if (d / "started").exists() or (proc is not None and proc.returncode is None):
            return ExecStatus("pending", message=STARTING)
        if proc is not None:
            tail = _read_text(d / "supervisor.log")[-500:]
            return ExecStatus("failed", message=f"the supervisor exited before the job: {tail}")
        return ExecStatus("unknown", message="not started by this executor")

    def log_path(self, request_id: str) -> Path:
        return self._dir(request_id) / "output.log"

    def output(self, request_id: str, local_id: str | None, max_bytes: int) -> tuple[str, bool]:
        """The last ``max_bytes`` of the run's output (UTF-8, undecodable bytes replaced)
        and whether anything before them was cut."""
        return read_output(self.home, request_id, max_bytes)


def finished(d: Path) -> ExecStatus:
    """The status of a run whose supervisor recorded its exit code."""
    code = _read_int(d / "exit_code")
    code = 1 if code is None else code
    refused = _read_text(d / "refused")
    if refused:
        return ExecStatus("failed", exit_code=code, message=f"local: {refused}")
    overrun = _read_text(d / "walltime_exceeded")
    if overrun:
        note = json.loads(overrun)
        how = "it ended on TERM" if note["signal"] == "TERM" else "it ignored TERM and was killed"
        return ExecStatus(
            "failed",
            exit_code=code,
            message=(
                f"stopped: exceeded its walltime of {note['walltime_s']} s; TERM was sent "
                f"{note['grace_s']} s after it, KILL {note['kill_after_s']} s later if still "
                f"running; {how} (exit code {code})"
            ),
        )
    return ExecStatus("succeeded" if code == 0 else "failed", exit_code=code)


def read_output(home: Path, request_id: str, max_bytes: int) -> tuple[str, bool]:
    """The last ``max_bytes`` of what run ``request_id`` printed and whether anything
    before them was cut (read by the server: the file is 0600)."""
    path = Path(home) / "jobs" / request_id / "output.log"
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except FileNotFoundError:
        return "", False
    return data.decode("utf-8", errors="replace"), size > max_bytes


def job_environment(
    dispatch: Dispatch, box: Sandbox, work: Path, walltime_s: int
) -> dict[str, str]:
    """The job's whole environment, from the allow-list (never the server's)."""
    env = {"PATH": box.path, "LANG": "C.UTF-8"}
    env.update({k: os.environ[k] for k in box.pass_env if k in os.environ})
    env.update(box.env)
    env.update(dispatch.env)
    env.update(
        HOME=str(work),
        TMPDIR=str(work),
        COMPUTENET_JOB_ID=dispatch.job_id,
        COMPUTENET_REQUEST_ID=dispatch.request_id,
        COMPUTENET_TENANT_ID=dispatch.tenant_id,
        COMPUTENET_ACCELERATORS=str(dispatch.accelerators),
        COMPUTENET_WALLTIME_S=str(walltime_s),
    )
    return env


# -- options --------------------------------------------------------------------------------


def sandbox_from(site_id: str, options: Mapping[str, Any]) -> Sandbox:
    """The site's sandbox, or an ``InputError`` saying what to fix (a missing run user, a
    server that cannot switch users)."""
    where = f"sites.{site_id}.executor"

    def opt(key: str, default: Any) -> Any:
        return option(options, key, default, site_id)

    switch_user, gid, uid, uid_range = _identity(
        site_id,
        str(opt("user", DEFAULT_USER)),
        list(opt("uid_range", DEFAULT_UID_RANGE)),
        bool(opt("allow_same_user", False)),
    )
    numbers = {
        k: int(opt(k, d))
        for k, d in [
            ("grace_s", 10),
            ("kill_after_s", 10),
            ("cpu_time_s", 0),
            ("memory_mb", 0),
            ("max_processes", 1024),
        ]
    }
    for key, value in numbers.items():
        if value < 0:
            raise InputError(f"{key} must be >= 0", where=where, fix=f"write {key} = 0 or more")
    env = dict(opt("env", {}))
    for key, value in env.items():
        if not isinstance(value, str) or refusal(key) or refusal(value) or "=" in key:
            raise InputError(f"env value {key!r} must be plain text", where=where)
    return Sandbox(
        switch_user=switch_user,
        gid=gid,
        uid=uid,
        uid_range=uid_range,
        devices=_devices(site_id, options.get("devices")),
        path=str(opt("path", DEFAULT_PATH)),
        pass_env=tuple(str(k) for k in opt("pass_env", ["LANG", "LC_ALL", "TZ"])),
        env=env,
        **numbers,
    )


def _identity(
    site_id: str, user: str, uid_range: list[int], allow_same_user: bool
) -> tuple[bool, int | None, int | None, tuple[int, int] | None]:
    """(switch user?, gid, shared uid, uid range) of the runs."""
    where = f"sites.{site_id}.executor"
    if os.geteuid() != 0:
        if allow_same_user:
            return False, None, None, None
        raise InputError(
            f"the local executor must switch jobs to an unprivileged user, and this server "
            f"runs as uid {os.geteuid()}, not root, so it cannot; without that a job could "
            "read the service's database, its environment (the admin token) and other "
            "tenants' output",
            where=where,
            fix="run `computenet serve` as root (jobs then run as their own uids), or, on a "
            "single-user machine only, set allow_same_user = true in the site's executor table",
        )
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise InputError(
            f"the run user {user!r} does not exist",
            where=where,
            fix=f"create it: useradd --system --no-create-home --shell /usr/sbin/nologin {user}"
            " (or name another unprivileged account in the user option)",
        ) from None
    if account.pw_uid == 0:
        raise InputError(f"the run user {user!r} is root", where=where, fix="name another user")
    if not uid_range:
        return True, account.pw_gid, account.pw_uid, None
    if len(uid_range) != 2 or not 0 < uid_range[0] <= uid_range[1] < 2**31 - 1:
        raise InputError(
            f"uid_range must be [lo, hi] with 0 < lo <= hi, got {uid_range!r}",
            where=where,
            fix=f"write uid_range = {DEFAULT_UID_RANGE} (or [] for the user's own uid)",
        )
    return True, account.pw_gid, None, (int(uid_range[0]), int(uid_range[1]))


def _devices(site_id: str, configured: Any) -> tuple[str, ...]:
    """The site's device inventory: as configured, else the GPUs ``nvidia-smi -L`` lists."""
    if configured is not None:
        if not isinstance(configured, list) or not all(
            isinstance(d, str) and d and d.replace("-", "").isalnum() for d in configured
        ):
            raise InputError(
                f"devices must be a list of device ids, got {configured!r}",
                where=f"sites.{site_id}.executor",
                fix='write devices = ["0", "1"] (indices or GPU-... UUIDs)',
            )
        if len(set(configured)) != len(configured):
            raise InputError("devices lists a device twice", where=f"sites.{site_id}.executor")
        return tuple(configured)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    # "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)": the index is what CUDA numbers.
    return tuple(
        line.split(":", 1)[0].split()[1]
        for line in listing.stdout.splitlines()
        if line.startswith("GPU ")
    )


# -- files ----------------------------------------------------------------------------------


def _private_dirs(home: Path, root: Path) -> None:
    """The data directory and the run root: no job may list them or read what is in them.
    0711, not 0700: a job must reach its own workspace by its absolute path (Python puts a
    script's absolute directory on sys.path; HOME and TMPDIR are absolute), while the
    database (0600), outputs (0600) and other workspaces (0700, other uids) stay closed."""
    home.mkdir(parents=True, exist_ok=True)
    root.mkdir(exist_ok=True)
    for d in (home, root):
        if d.stat().st_uid == os.geteuid() and d.stat().st_mode & 0o077 != 0o011:
            os.chmod(d, 0o711)
    (root / ".alloc").mkdir(mode=0o700, exist_ok=True)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _open_private(path: Path) -> Any:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "ab")


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _supervising(pid: int, d: Path) -> bool:
    """Whether ``pid`` is alive and is the supervisor of run ``d`` (not a reused pid)."""
    if not _alive(pid):
        return False
    try:
        return str(d).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if sys.platform.startswith("linux"):
        # A zombie (ended, not yet reaped) counts as ended.
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True
