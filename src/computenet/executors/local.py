"""``local``: runs a job's command as a process on this machine.

Each run gets a directory ``<home>/jobs/<request_id>/`` holding ``output.log`` (stdout and
stderr), ``pid`` and, once it ends, ``exit_code``. The files are the record, so a restarted
service can still poll work started before it died, and a repeated submit sees the
directory and does nothing. The process runs in its own session so cancel kills the whole
process group.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from computenet.executors.base import Capabilities, ExecStatus


class LocalExecutor:
    name = "local"
    capabilities = Capabilities(runs_commands=True, can_cancel=True, survives_restart=True)

    def __init__(self, root: Path) -> None:
        self.root = root
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def _dir(self, request_id: str) -> Path:
        return self.root / request_id

    def submit(self, request_id: str, job_id: str, command: str | None) -> None:
        d = self._dir(request_id)
        try:
            d.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            return  # already started under this request id: never twice
        # No command: a placeholder that succeeds, so a bare submission still runs end to end.
        cmd = command or "echo 'computenet: job has no command; nothing to run'"
        # A wrapper records the exit code in a file, so the result survives our restart.
        # The command runs in a subshell so its own ``exit`` cannot skip the recording.
        wrapper = (
            f"(\n{cmd}\n)\nrc=$?\necho $rc > {shlex.quote(str(d / 'exit_code.tmp'))} && "
            f"mv {shlex.quote(str(d / 'exit_code.tmp'))} {shlex.quote(str(d / 'exit_code'))}"
        )
        out = (d / "output.log").open("ab")
        env = dict(os.environ, COMPUTENET_JOB_ID=job_id)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", wrapper],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=d,
            env=env,
        )
        out.close()
        (d / "pid").write_text(str(proc.pid))
        self._procs[request_id] = proc

    def cancel(self, request_id: str) -> None:
        d = self._dir(request_id)
        pid_file = d / "pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        (d / "cancelled").touch()
        proc = self._procs.pop(request_id, None)
        if proc is not None:
            proc.wait()

    def poll(self, request_id: str) -> ExecStatus:
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
        pid_file = d / "pid"
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            return ExecStatus("running")
        if proc is None and not pid_file.exists():
            return ExecStatus("running")  # between mkdir and pid write
        return ExecStatus("failed", message="process vanished without an exit code")

    def log_path(self, request_id: str) -> Path:
        return self._dir(request_id) / "output.log"

    def output(self, request_id: str, max_bytes: int) -> tuple[str, bool]:
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
