"""The supervisor of one ``local`` run: ``python -I -S local_supervisor.py <run directory>``.

Started (detached, as the server's user) by ``LocalExecutor.submit``; standard library only,
because it runs isolated from the server's environment and import path. It

1. claims the run with an atomic ``mkdir started`` (of two supervisors for one request id,
   only one goes on), records its own pid in ``supervisor.pid``;
2. allocates, under one lock in the allocation directory, a uid of the configured range and
   the run's devices (one file per uid and per device naming the request id; a file whose
   holder is gone is free again), waiting while too few devices are free;
3. makes the workspace ``work/`` (0700, owned by the run's uid), opens ``output.log``
   (0600, the server's) and hands it to the job as stdout and stderr;
4. forks the job into its own session: rlimits, umask 077, no supplementary groups, the
   run's gid and uid, an environment from the spec (an allow-list built by the server),
   then ``/bin/sh -c COMMAND``; the job's pid (= its process group) goes to ``pid``;
5. enforces the walltime: TERM to the job's process group at walltime + grace, KILL after
   a further ``kill_after_s`` (``walltime_exceeded`` records it);
6. when the job's shell has ended, kills what it left behind (its process group, and every
   process of the run's uid when the uid is the run's own), frees the uid and the devices,
   and records the exit code as a shell reports it (128 + signal) in ``exit_code``.

Every file it writes is in the run directory, which only the server's user can write, so
the job can neither forge its exit code nor point ``pid`` at another process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

WAIT_POLL_S = 0.25  # how often a run waiting for devices looks again


def main(argv: list[str]) -> int:
    run_dir = Path(argv[1])
    os.chdir(run_dir)
    try:
        os.mkdir("started", 0o700)
    except FileExistsError:
        return 0  # another supervisor claimed this request id
    write_atomic("supervisor.pid", str(os.getpid()))
    spec: dict[str, Any] = json.loads(Path("spec.json").read_text())
    if Path("cancelled").exists():
        return 0
    try:
        grant = allocate(spec, run_dir)
    except Exception as exc:
        return _refuse(f"could not allocate a uid and devices: {exc}")
    if grant is None:
        return 0  # cancelled while waiting
    code = 125
    try:
        if grant["own_uid"]:
            # A uid whose last holder's supervisor died may still have that job running:
            # the uid is this run's now, and nothing else may run under it.
            sweep(grant["uid"], grant["gid"])
        code = run(spec, grant, run_dir)
    except Exception as exc:
        write_atomic("refused", f"the supervisor could not run the job: {exc}")
    finally:
        try:
            if grant["own_uid"]:
                sweep(grant["uid"], grant["gid"])
        finally:
            release(spec, grant)
            write_atomic("exit_code", str(code))
    return 0


def _refuse(message: str) -> int:
    write_atomic("refused", message)
    write_atomic("exit_code", "125")
    return 0


# -- allocation ---------------------------------------------------------------------------


def allocate(spec: dict[str, Any], run_dir: Path) -> dict[str, Any] | None:
    """The run's uid and devices, waiting until enough devices are free; None if the run
    was cancelled meanwhile."""
    alloc = Path(spec["alloc_dir"])
    for sub in ("uids", "devices"):
        (alloc / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    request_id, runs = spec["request_id"], run_dir.parent
    while True:
        if Path("cancelled").exists():
            return None
        with (alloc / "lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            devices = _free(alloc / "devices", spec["devices"], runs)
            wanted = spec["accelerators"] if spec["devices"] else 0
            uid = spec["uid"]
            if len(devices) < wanted:
                why = f"{len(devices)} of the {wanted} devices it needs are free"
            elif spec["uid_range"] and (uid := _free_uid(alloc, spec["uid_range"], runs)) is None:
                why = f"every uid of {spec['uid_range']} is in use"
            else:
                taken = devices[:wanted]
                for dev in taken:
                    (alloc / "devices" / dev).write_text(request_id)
                if spec["uid_range"]:
                    (alloc / "uids" / str(uid)).write_text(request_id)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink("waiting")
                return {
                    "uid": uid,
                    "gid": spec["gid"],
                    "devices": taken,
                    "own_uid": bool(spec["uid_range"]),
                }
        write_atomic("waiting", f"waiting: {why}")
        time.sleep(WAIT_POLL_S)


def _free(folder: Path, inventory: list[str], runs: Path) -> list[str]:
    """Devices of ``inventory`` (in its order) that no live run holds."""
    return [dev for dev in inventory if not _held(folder / dev, runs)]


def _free_uid(alloc: Path, uid_range: list[int], runs: Path) -> int | None:
    """The next uid of the range after the last one handed out that no live run holds.
    Handing uids out round-robin keeps a uid unused as long as possible after its run."""
    lo, hi = uid_range
    try:
        start = int((alloc / "uid_next").read_text())
    except (FileNotFoundError, ValueError):
        start = lo
    held = {int(p.name) for p in (alloc / "uids").iterdir() if p.name.isdigit()}
    size = hi - lo + 1
    for step in range(size):
        uid = lo + (start - lo + step) % size
        if uid not in held or not _held(alloc / "uids" / str(uid), runs):
            (alloc / "uid_next").write_text(str(lo + (uid - lo + 1) % size))
            return uid
    return None


def _held(path: Path, runs: Path) -> bool:
    """Whether the run named in ``path`` still holds it: its supervisor is alive (its
    command line names the run directory) and has not recorded an exit code."""
    try:
        request_id = path.read_text().strip()
    except FileNotFoundError:
        return False
    holder = runs / request_id
    if not request_id or (holder / "exit_code").exists():
        return False
    try:
        pid = int((holder / "supervisor.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    return str(holder).encode() in cmdline


def release(spec: dict[str, Any], grant: dict[str, Any]) -> None:
    alloc = Path(spec["alloc_dir"])
    names = [alloc / "devices" / d for d in grant["devices"]]
    if grant["own_uid"]:
        names.append(alloc / "uids" / str(grant["uid"]))
    with (alloc / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for path in names:
            with contextlib.suppress(FileNotFoundError):
                if path.read_text().strip() == spec["request_id"]:
                    path.unlink()


# -- the job --------------------------------------------------------------------------------


def run(spec: dict[str, Any], grant: dict[str, Any], run_dir: Path) -> int:
    """Run the job to its end (or its walltime); its exit code as a shell reports it."""
    work = run_dir / "work"
    work.mkdir(mode=0o700, exist_ok=True)
    uid, gid = grant["uid"], grant["gid"]
    if uid is not None:
        os.chown(work, uid, gid)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open("output.log", flags, 0o600)
    env = dict(spec["env"], CUDA_VISIBLE_DEVICES=",".join(grant["devices"]))
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the job
        _exec_job(spec, grant, work, out, go_read, go_write, env)
    os.close(go_read)
    os.close(out)
    write_atomic("pid", str(pid))
    # Written before looking for the mark, as cancel marks before it reads the pid: a
    # cancel either finds this pid or is seen here.
    if Path("cancelled").exists():
        os.close(go_write)  # the job exits without running anything
    else:
        os.write(go_write, b"g")
        os.close(go_write)
    status = wait_with_walltime(pid, spec)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # what the shell left running in its group
    return shell_code(status)


def _exec_job(
    spec: dict[str, Any],
    grant: dict[str, Any],
    work: Path,
    out: int,
    go_read: int,
    go_write: int,
    env: dict[str, str],
) -> None:
    """In the forked child: wait for the go, drop to the run's identity, exec the shell."""
    try:
        os.close(go_write)
        os.setsid()
        if os.read(go_read, 1) != b"g":
            os._exit(0)  # cancelled before it started
        os.close(go_read)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.chdir(work)
        os.umask(0o077)
        limits = spec["limits"]
        _limit(resource.RLIMIT_CPU, limits["cpu_s"], grace=10)
        _limit(resource.RLIMIT_DATA, limits["data_bytes"])
        if grant["own_uid"]:  # counted per uid: only a run's own uid makes it per run
            _limit(resource.RLIMIT_NPROC, limits["nproc"])
        if grant["uid"] is not None:
            os.setgroups([])
            os.setgid(grant["gid"])
            os.setuid(grant["uid"])
        os.execve("/bin/sh", ["sh", "-c", spec["command"]], env)
    except BaseException as exc:  # nothing may return into the supervisor's code
        with contextlib.suppress(OSError):
            os.write(2, f"computenet: could not start the job: {exc}\n".encode())
        os._exit(127)


def _limit(which: int, value: int, grace: int = 0) -> None:
    if value > 0:
        resource.setrlimit(which, (value, value + grace))


def wait_with_walltime(pid: int, spec: dict[str, Any]) -> int:
    """Wait for the job; TERM its group at walltime + grace, KILL it ``kill_after_s`` later.
    Returns the wait status."""
    limit_s = spec["walltime_s"] + spec["grace_s"]
    pidfd = os.pidfd_open(pid)
    try:
        if not _wait_fd(pidfd, limit_s):
            _record_overrun(spec, "TERM")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            if not _wait_fd(pidfd, spec["kill_after_s"]):
                _record_overrun(spec, "KILL")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
    finally:
        os.close(pidfd)
    return os.waitpid(pid, 0)[1]


def _wait_fd(pidfd: int, timeout_s: float) -> bool:
    """True if the process ended within ``timeout_s``."""
    end = time.monotonic() + timeout_s
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        if poller.poll(left * 1000):
            return True


def _record_overrun(spec: dict[str, Any], signal_name: str) -> None:
    note = {
        "walltime_s": spec["walltime_s"],
        "grace_s": spec["grace_s"],
        "kill_after_s": spec["kill_after_s"],
        "signal": signal_name,
    }
    write_atomic("walltime_exceeded", json.dumps(note))


def shell_code(status: int) -> int:
    """The exit code as ``sh`` reports it: the code, or 128 + the signal that ended it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def sweep(uid: int, gid: int) -> None:
    """Kill every process of the run's own uid (a job may escape its process group with
    ``setsid``): a child drops to that uid and sends KILL to all it may signal."""
    for _ in range(3):  # a process forking while the kill goes round is caught next pass
        child = os.fork()
        if child == 0:
            try:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)  # never the caller itself
            except BaseException:
                pass
            os._exit(0)
        os.waitpid(child, 0)


def write_atomic(name: str, text: str) -> None:
    """Write a record file whole or not at all (readers never see half of one), 0600."""
    tmp = f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, name)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
