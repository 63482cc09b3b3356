"""``local``: runs a job's command as a process on this machine.

Each run gets a directory ``<home>/jobs/<request_id>/`` (also the command's working
directory) holding ``output.log`` (stdout and stderr), ``started`` (the claim), ``pid`` and,
once it ends, ``exit_code``. The files are the record, so a restarted service can still
poll work started before it died, and a repeated submit never runs the command twice. The
process runs in its own session so cancel kills the whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from computenet.executors.base import Capabilities, Dispatch, ExecStatus
from computenet.executors.registry import register


@register("local")
class LocalExecutor:
    kind: ClassVar[str] = "local"
    capabilities: ClassVar[Capabilities] = Capabilities(
        runs_commands=True,
        cancel=True,
        checkpoint_signal=False,
        logs=True,
        survives_restart=True,
        binds_accelerators=False,
    )

    def __init__(self, site_id: str, options: Mapping[str, Any], home: Path) -> None:
        self.site_id = site_id
        self.options = dict(options)
        self.root = Path(home) / "jobs"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def heartbeat(self) -> None:
        """This machine always answers while the service runs on it."""

    def _dir(self, request_id: str) -> Path:
        return self.root / request_id

    def submit(self, dispatch: Dispatch) -> str:
        """Start the command under ``request_id``, at most once however often this is
        called and wherever the caller died before: the wrapper shell itself claims the
        run with an atomic ``mkdir started`` before it runs anything, so of two wrappers
        launched for one request id (a restart repeating a dispatch) only one runs it."""
        request_id, command = dispatch.request_id, dispatch.command
        local_id = f"local:{self.site_id}:{request_id}"
        d = self._dir(request_id)
        d.mkdir(parents=True, exist_ok=True)
        if (d / "started").exists() or (d / "exit_code").exists():
            return local_id  # already claimed: nothing to launch
        # No command: a placeholder that succeeds, so a bare submission still runs end to end.
        cmd = command or "echo 'computenet: job has no command; nothing to run'"
        # The wrapper claims the run, records its pid (the process group cancel kills),
        # honours a cancel that came first, runs the command in a subshell (so its own
        # ``exit`` cannot skip the recording) and records the exit code in a file, so the
        # result survives our restart. Paths are relative to the run directory (cwd).
        wrapper = (
            "mkdir started 2>/dev/null || exit 0\n"
            "echo $$ > pid.tmp && mv pid.tmp pid\n"
            "[ -e cancelled ] && exit 0\n"
            f"(\n{cmd}\n)\n"
            "rc=$?\n"
            "echo $rc > exit_code.tmp && mv exit_code.tmp exit_code\n"
        )
        env = dict(os.environ, **dispatch.env, COMPUTENET_JOB_ID=dispatch.job_id)
        with (d / "output.log").open("ab") as out:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", wrapper],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=d,
                env=env,
            )
        self._procs[request_id] = proc
        return local_id

    def cancel(self, request_id: str, local_id: str | None = None) -> None:
        """Mark the run cancelled, then kill its process group. In this order, a wrapper
        that has not yet written its pid sees the mark and never runs the command."""
        d = self._dir(request_id)
        if not d.exists():
            return
        (d / "cancelled").touch()
        pid = _read_pid(d)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        proc = self._procs.pop(request_id, None)
        if proc is not None:
            proc.wait()

    def poll(self, request_id: str, local_id: str | None = None) -> ExecStatus:
        d = self._dir(request_id)
        if not d.exists():
            return ExecStatus("unknown", message="never started here")
        if (d / "cancelled").exists():
            return ExecStatus("cancelled")
        proc = self._procs.get(request_id)
        if proc is not None:
            proc.poll()  # reap the child if it ended
        code_file = d / "exit_code"
        if code_file.exists():
            self._procs.pop(request_id, None)
            code = int(code_file.read_text().strip() or "1")
            return ExecStatus("succeeded" if code == 0 else "failed", exit_code=code)
        pid = _read_pid(d)
        if pid is not None:
            if _alive(pid):
                return ExecStatus("running")
            if not code_file.exists():  # it may have recorded its code since we looked
                return ExecStatus("failed", message="process vanished without an exit code")
            return self.poll(request_id, local_id)
        if (d / "started").exists() or (proc is not None and proc.returncode is None):
            return ExecStatus("running")  # the wrapper is starting
        if proc is not None:
            return ExecStatus("failed", message="the wrapper exited without starting the job")
        return ExecStatus("unknown", message="not started by this executor")

    def log_path(self, request_id: str) -> Path:
        return self._dir(request_id) / "output.log"

    def output(self, request_id: str, local_id: str | None, max_bytes: int) -> tuple[str, bool]:
        """The last ``max_bytes`` of the run's output (UTF-8, undecodable bytes replaced)
        and whether anything before them was cut."""
        path = self.log_path(request_id)
        try:
            with path.open("rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except FileNotFoundError:
            return "", False
        return data.decode("utf-8", errors="replace"), size > max_bytes


def _read_pid(d: Path) -> int | None:
    try:
        return int((d / "pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


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
