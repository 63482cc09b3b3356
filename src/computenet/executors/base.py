"""The executor interface every engine implements (local processes, Slurm, Ray, Kubernetes).

The control loop hands an executor one ``Dispatch`` per placed job. Every call carries our
``request_id`` (the job's dispatch id, written to the database before the call), so a call
repeated after a crash finds the work it started instead of starting it twice. ``submit``
answers the *site-local id* (``slurm:sitea:42``, ``ray:lab:<id>``, ``k8s:east:<name>``,
``local:here:<request id>``), which the job records: a restarted service reconciles each job
with what its engine reports under that id.

What an executor can do is declared in ``Capabilities``; the loop and the API consult the
flags (``if executor.capabilities.cancel``), never the executor's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

Status = Literal["pending", "running", "succeeded", "failed", "cancelled", "unknown"]
"""``pending``: accepted by the engine, not started (queued in Slurm, a Job without a pod).
``unknown``: the engine has no record of the request (never submitted, or forgotten)."""

TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Capabilities:
    """What an executor can do; callers check these flags instead of the executor's kind."""

    runs_commands: bool  # runs the tenant's ``command`` (else a fixed placeholder)
    cancel: bool  # can stop work it started
    checkpoint_signal: bool  # can warn a job before its end / before a stop so it saves
    logs: bool  # can return what the job printed
    survives_restart: bool  # can still report on work started before a restart of computenet
    binds_accelerators: bool  # gives each run its own devices (never two runs on one)
    # Can lower a running job's accelerator power (a power limit or fewer busy cycles) when
    # the grid asks for less (``engine.grid``): only sites whose executor declares it are
    # asked to. No executor here does yet; the simulator (``sim.gridsim``) models it with
    # the measured load curve (``model.load_share``).
    power_cap: bool = False


@dataclass(frozen=True)
class Dispatch:
    """One placed job handed to an executor. Times in seconds."""

    request_id: str  # our idempotency key for this run (the job's dispatch id)
    job_id: str
    tenant_id: str
    command: str | None  # None: run a placeholder that succeeds
    accelerators: int  # gang size, all at this site
    accelerator: str | None  # the pool's accelerator type (e.g. "H100"), None if not placed
    walltime_s: int  # the planned run length; executors add their stated grace
    checkpointable: bool = False  # the job saves on SIGUSR1 and can resume
    env: Mapping[str, str] = field(default_factory=dict)  # extra variables for the job


@dataclass(frozen=True)
class ExecStatus:
    status: Status
    exit_code: int | None = None
    message: str = ""  # the engine's own words (shown in the job's explanation)
    local_id: str | None = None  # the site-local id, when the engine told us


class Executor(Protocol):
    """One site's engine. Implementations register with ``@register("kind")`` in
    ``computenet.executors.registry`` and take ``(site_id, options, home)``."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    site_id: str

    def submit(self, dispatch: Dispatch) -> str:
        """Start the work and answer its site-local id. A repeat with the same
        ``request_id`` starts nothing and answers the same id. Raises ``ExecutorRefused``
        when the engine refuses this job (only this job fails) and ``ExecutorUnavailable``
        when the engine cannot be reached (the job is retried; the site may be down)."""
        ...

    def poll(self, request_id: str, local_id: str | None) -> ExecStatus:
        """The current status of the work started under ``request_id``."""
        ...

    def cancel(self, request_id: str, local_id: str | None) -> None:
        """Stop the work; safe to repeat and on finished work."""
        ...

    def output(self, request_id: str, local_id: str | None, max_bytes: int) -> tuple[str, bool]:
        """The last ``max_bytes`` of what the job printed (UTF-8, undecodable bytes replaced)
        and whether anything before them was cut. ``("", False)`` when there is none."""
        ...

    def heartbeat(self) -> None:
        """Return if the engine answers; raise ``ExecutorUnavailable`` if it does not."""
        ...


def option(options: Mapping[str, Any], key: str, default: Any, site_id: str) -> Any:
    """``options[key]`` of a site's executor table, type-checked against ``default``."""
    from computenet.errors import InputError

    value = options.get(key, default)
    if default is not None and not isinstance(value, type(default)):
        raise InputError(
            f"executor option {key!r} must be a {type(default).__name__}, got {value!r}",
            source="network file",
            where=f"sites.{site_id}.executor",
            fix=f"write {key} = {default!r} (or leave it out for the default)",
        )
    return value


def run_root(home: Path, site_id: str) -> Path:
    """Where an executor of ``site_id`` keeps its per-run files under the data directory."""
    return home / "jobs" / site_id
