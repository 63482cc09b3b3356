"""The executor interface: submit, cancel, poll. Calls carry a request id so repeats
are safe (submitting the same id twice starts the work once)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["running", "succeeded", "failed", "cancelled", "unknown"]


@dataclass(frozen=True)
class Capabilities:
    """What an executor can do; the loop checks these instead of the executor's type."""

    runs_commands: bool
    can_cancel: bool
    survives_restart: bool  # can it still report on work started before a restart?


@dataclass(frozen=True)
class ExecStatus:
    status: Status
    exit_code: int | None = None
    message: str = ""


class Executor(Protocol):
    name: str
    capabilities: Capabilities

    def submit(self, request_id: str, job_id: str, command: str | None) -> None:
        """Start the job; a repeat with the same ``request_id`` does nothing."""

    def cancel(self, request_id: str) -> None:
        """Stop the job; safe to repeat and on finished work."""

    def poll(self, request_id: str) -> ExecStatus:
        """Current status of the work started with ``request_id``."""


EXECUTORS = ("local",)
"""Executors this service can run (Slurm, Ray and Kubernetes come later, same interface)."""


def make_executor(name: str, home: object) -> Executor:
    """The executor called ``name``; heavy client libraries are imported only here."""
    from pathlib import Path

    from computenet.errors import UnknownNameError

    if name == "local":
        from computenet.executors.local import LocalExecutor

        return LocalExecutor(Path(str(home)) / "jobs")
    raise UnknownNameError("executor", name, EXECUTORS, source="--executor")
