"""``ray``: runs a job as a Ray job through the Ray Jobs API of a cluster's head.

Each dispatch becomes one Ray job whose ``submission_id`` is our request id, so the head's
own job table is the record: a repeated submit finds the job instead of starting a second
one, and a restarted computenet polls, reads the logs of and stops work it started before
it died (the head keeps its jobs; ``survives_restart``). The site-local id is
``ray:<site id>:<request id>``. The one file kept here is a cancel request of a job Ray
cannot stop yet (see ``cancel``), under ``<home>/jobs/<site id>/``.

Ray has no walltime, so the entrypoint enforces it: the command runs under coreutils
``timeout``, which sends TERM at the planned run plus ``grace_s`` and KILL ``kill_after_s``
later, to the command's whole process group. A job ended that way is reported failed with
a walltime message (its exit code is ``timeout``'s 124 or 137 and it ran past its limit,
both read from the head's job record, so a restart of computenet does not lose it).

The job's environment holds only variables from an allow-list (``COMPUTENET_JOB_ID``,
``COMPUTENET_REQUEST_ID``, ... and the names the site lists in ``pass_env``), set through
``runtime_env.env_vars``. The client never sends computenet's own environment; the entrypoint
does inherit the environment the *head* was started with, which is why
``scripts/ray-head.sh`` starts it from an empty one.

``ray`` (``ray[default]``, the Jobs SDK) is imported only when an executor is built.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from computenet.errors import (
    ExecutorRefused,
    ExecutorUnavailable,
    InputError,
    MissingDependencyError,
)
from computenet.executors.base import Capabilities, Dispatch, ExecStatus, Status, run_root
from computenet.executors.registry import register

# Variables a job may receive. Everything else in a dispatch's ``env`` is dropped unless the
# site names it in ``pass_env``, so a secret can reach a job only by an operator's choice.
ALLOWED_ENV: frozenset[str] = frozenset(
    {
        "COMPUTENET_JOB_ID",
        "COMPUTENET_REQUEST_ID",
        "COMPUTENET_TENANT_ID",
        "COMPUTENET_SITE_ID",
        "COMPUTENET_ACCELERATORS",
        "COMPUTENET_ACCELERATOR",
        "COMPUTENET_WALLTIME_S",
        "COMPUTENET_CHECKPOINTABLE",
    }
)

# A submission id becomes a file name on the head (its driver log): Ray fails on a "/" with
# an internal error, so ids are checked here and refused with a reason instead.
_SUBMISSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Exit codes of a command stopped by coreutils ``timeout``: 124 after TERM; after KILL, -9
# (Ray's record of the entrypoint, ``timeout`` itself, killed by signal 9 with its process
# group, measured with Ray 2.60) or 137 (128 + 9, from a ``timeout`` that survived).
_TIMEOUT_EXIT_CODES = frozenset({124, 137, -9})
_NO_COMMAND = "echo 'computenet: job has no command; nothing to run'"

_STATUS: dict[str, Status] = {
    "PENDING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "STOPPED": "cancelled",
}


@dataclass(frozen=True)
class RayOptions:
    """A site's ``executor = { kind = "ray", ... }`` table, checked."""

    address: str  # the head's dashboard (Jobs API) URL, e.g. http://127.0.0.1:8265
    python: str | None = None  # interpreter on the cluster put first on the job's PATH
    gpus: bool = False  # reserve the gang size as the entrypoint's GPUs (Ray binds them)
    grace_s: int = 60  # after the planned run, before TERM
    kill_after_s: int = 10  # after TERM, before KILL
    timeout_s: int = 10  # per HTTP call to the head (a heartbeat answers or fails within it)
    label_selector: Mapping[str, str] | None = None  # Ray node labels the entrypoint needs
    pass_env: tuple[str, ...] = ()  # more dispatch variables a job may receive

    @classmethod
    def parse(cls, site_id: str, options: Mapping[str, Any]) -> RayOptions:
        check = _OptionChecker(site_id, options)
        check.no_unknown(tuple(_FIXES))
        address = check.text("address", required=True)
        if not address.startswith(("http://", "https://")):
            raise check.fail("address", "must be the head's dashboard URL", f"{address!r}")
        python = check.text("python")
        if python and not python.startswith("/"):
            raise check.fail("python", "must be an absolute path on the cluster", repr(python))
        return cls(
            address=address.rstrip("/"),
            python=python or None,
            gpus=check.flag("gpus", False),
            grace_s=check.seconds("grace_s", 60, minimum=0),
            kill_after_s=check.seconds("kill_after_s", 10, minimum=1),
            timeout_s=check.seconds("timeout_s", 10, minimum=1),
            label_selector=check.labels("label_selector"),
            pass_env=check.names("pass_env"),
        )


@register("ray")
class RayExecutor:
    kind: ClassVar[str] = "ray"
    capabilities: ClassVar[Capabilities] = Capabilities(
        runs_commands=True,
        cancel=True,
        checkpoint_signal=False,
        logs=True,
        survives_restart=True,  # the head keeps its job table across our restarts
        binds_accelerators=False,  # see RayGpuExecutor
    )

    def __new__(cls, site_id: str, options: Mapping[str, Any], home: Path) -> RayExecutor:
        # Capabilities are declared per class, so a site that reserves GPUs is built as the
        # subclass that says it binds them.
        if cls is RayExecutor and options.get("gpus") is True:
            return super().__new__(RayGpuExecutor)
        return super().__new__(cls)

    def __init__(self, site_id: str, options: Mapping[str, Any], home: Path) -> None:
        self.site_id = site_id
        self.options = RayOptions.parse(site_id, options)
        self.home = Path(home)
        self._client_class = _client_class()  # fails now, with the fix, if ray is missing
        self._client: Any = None  # connected on first use: a down head must not stop startup

    # -- the Executor interface -------------------------------------------------------------

    def submit(self, dispatch: Dispatch) -> str:
        """Start the job under ``submission_id = request_id`` at most once: a job the head
        already has under that id (an earlier try, or a racing repeat) is the answer."""
        _check_submission(dispatch)
        local_id = self._local_id(dispatch.request_id)
        if self._info(dispatch.request_id) is not None:
            return local_id
        try:
            self._jobs().submit_job(**self._submission(dispatch))
        except Exception as exc:
            if "already exists" in str(exc):
                return local_id  # a repeat racing us made it first
            raise _engine_error(exc, self.options.address, refusing=True) from exc
        return local_id

    def poll(self, request_id: str, local_id: str | None = None) -> ExecStatus:
        info = self._info(request_id)
        if info is None:
            return ExecStatus("unknown", message="the Ray head has no job under this id")
        status: Status = _STATUS.get(str(_value(info.status)), "unknown")
        exit_code = getattr(info, "driver_exit_code", None)
        message = _first_line(info.message or "")
        if status in ("pending", "running") and self._cancel_mark(request_id).exists():
            status, message = "cancelled", f"cancelled; Ray reports it {status} while it stops it"
        elif status == "failed" and _stopped_by_walltime(info, exit_code):
            message = _walltime_message(info, exit_code)
        return ExecStatus(status, exit_code, message, self._local_id(request_id))

    def cancel(self, request_id: str, local_id: str | None = None) -> None:
        """Ask the head to stop the job (TERM, then KILL after Ray's stop wait, 3 s by
        default); a job the head does not know or that has ended is left alone.

        Ray 2.60 cannot stop a PENDING job: it queues the stop until the job gets its
        resources, then starts the command and stops it (measured: it ran for about 2 s). So
        the cancel of a pending job is also recorded here, and ``poll`` answers ``cancelled``
        from then on while Ray still calls the job pending or running. A running job is
        reported cancelled when Ray says STOPPED, once its processes have ended."""
        info = self._info(request_id)
        status = _STATUS.get(str(_value(info.status))) if info is not None else None
        if status not in ("pending", "running"):
            return
        if status == "pending":
            mark = self._cancel_mark(request_id)
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()
        try:
            self._jobs().stop_job(request_id)
        except Exception as exc:
            raise _engine_error(exc, self.options.address, refusing=False) from exc

    def output(self, request_id: str, local_id: str | None, max_bytes: int) -> tuple[str, bool]:
        """The last ``max_bytes`` of the job's log on the head (Ray's own lines included)."""
        try:
            logs = self._jobs().get_job_logs(request_id)
        except Exception as exc:
            if _not_found(exc):
                return "", False
            raise _engine_error(exc, self.options.address, refusing=False) from exc
        data = logs.encode("utf-8", errors="replace")
        tail = data[max(0, len(data) - max_bytes) :]
        return tail.decode("utf-8", errors="replace"), len(data) > max_bytes

    def heartbeat(self) -> None:
        """One ``GET /api/version`` within ``timeout_s``."""
        try:
            self._jobs().get_version()
        except ExecutorUnavailable:
            raise
        except Exception as exc:
            raise _engine_error(exc, self.options.address, refusing=False) from exc

    # -- steps ------------------------------------------------------------------------------

    def _cancel_mark(self, request_id: str) -> Path:
        return run_root(self.home, self.site_id) / f"{request_id}.cancel-requested"

    def _local_id(self, request_id: str) -> str:
        return f"ray:{self.site_id}:{request_id}"

    def _jobs(self) -> Any:
        """The Jobs API client, connected on first use (its constructor asks the head for its
        version)."""
        if self._client is None:
            try:
                self._client = self._client_class(self.options.address, self.options.timeout_s)
            except Exception as exc:
                raise _engine_error(exc, self.options.address, refusing=False) from exc
        return self._client

    def _info(self, request_id: str) -> Any:
        """The head's record of the job, or None when it has none."""
        try:
            return self._jobs().get_job_info(request_id)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise _engine_error(exc, self.options.address, refusing=False) from exc

    def _submission(self, dispatch: Dispatch) -> dict[str, Any]:
        """The keyword arguments of ``JobSubmissionClient.submit_job`` for one dispatch."""
        limit_s = _limit_s(dispatch.walltime_s, self.options.grace_s)
        kwargs: dict[str, Any] = {
            "submission_id": dispatch.request_id,
            "entrypoint": self._entrypoint(dispatch.command, limit_s),
            "runtime_env": {"env_vars": self._env(dispatch)},
            "metadata": {
                "computenet_job_id": dispatch.job_id,
                "computenet_tenant_id": dispatch.tenant_id,
                "computenet_site_id": self.site_id,
                "computenet_limit_s": str(limit_s),
            },
        }
        if self.options.gpus and dispatch.accelerators > 0:
            kwargs["entrypoint_num_gpus"] = dispatch.accelerators
        if self.options.label_selector:
            kwargs["entrypoint_label_selector"] = dict(self.options.label_selector)
        return kwargs

    def _entrypoint(self, command: str | None, limit_s: int) -> str:
        """``timeout`` runs the command in a shell of its own: TERM to its process group at
        ``limit_s``, KILL ``kill_after_s`` later. ``exec`` makes ``timeout`` the process Ray
        stops on cancel."""
        path = ""
        if self.options.python:
            bin_dir = str(Path(self.options.python).parent)
            path = f'PATH={shlex.quote(bin_dir)}:"$PATH" '
        return (
            f"{path}exec timeout -s TERM -k {self.options.kill_after_s}s {limit_s}s "
            f"/bin/sh -c {shlex.quote(command or _NO_COMMAND)}"
        )

    def _env(self, dispatch: Dispatch) -> dict[str, str]:
        """The job's variables: ours, then the dispatch's that the allow-list admits."""
        env = {
            "COMPUTENET_JOB_ID": dispatch.job_id,
            "COMPUTENET_REQUEST_ID": dispatch.request_id,
            "COMPUTENET_TENANT_ID": dispatch.tenant_id,
            "COMPUTENET_SITE_ID": self.site_id,
            "COMPUTENET_ACCELERATORS": str(dispatch.accelerators),
            "COMPUTENET_WALLTIME_S": str(dispatch.walltime_s),
            "COMPUTENET_CHECKPOINTABLE": "1" if dispatch.checkpointable else "0",
        }
        if dispatch.accelerator:
            env["COMPUTENET_ACCELERATOR"] = dispatch.accelerator
        allowed = ALLOWED_ENV | set(self.options.pass_env)
        env.update({k: str(v) for k, v in dispatch.env.items() if k in allowed})
        return env


class RayGpuExecutor(RayExecutor):
    """A Ray site with ``gpus = true``: the entrypoint reserves the gang size as GPUs, and Ray
    gives it those devices alone (``CUDA_VISIBLE_DEVICES``), never to two jobs at once."""

    capabilities: ClassVar[Capabilities] = replace(
        RayExecutor.capabilities, binds_accelerators=True
    )


# -- the Jobs SDK, imported only here ---------------------------------------------------------


def _client_class() -> Any:
    """``JobSubmissionClient`` with a timeout on every HTTP call: the SDK sets none, and a
    head that accepts connections but hangs would otherwise hang the control loop."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise MissingDependencyError("ray", "ray", "the ray executor") from exc

    class TimedJobSubmissionClient(JobSubmissionClient):
        def __init__(self, address: str, timeout_s: int) -> None:
            self._computenet_timeout_s = timeout_s
            super().__init__(address)

        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", self._computenet_timeout_s)
            return super()._do_request(method, endpoint, **kwargs)

    return TimedJobSubmissionClient


def _engine_error(exc: BaseException, address: str, *, refusing: bool) -> Exception:
    """Sort an SDK error: no answer (connection refused, timeout, a head busy or starting)
    is ``ExecutorUnavailable``; an answer that rejects this request is ``ExecutorRefused``
    when submitting, with Ray's own words."""
    reason = _ray_reason(exc)
    if _unreachable(exc):
        return ExecutorUnavailable(f"the Ray head at {address} does not answer: {reason}")
    if refusing and _rejected(exc):
        return ExecutorRefused(f"the Ray head at {address} refused the job: {reason}")
    return ExecutorUnavailable(f"the Ray head at {address} failed the request: {reason}")


def _unreachable(exc: BaseException) -> bool:
    import requests

    # The SDK turns a refused connection into the builtin ConnectionError; requests raises
    # its own for timeouts and resets.
    return isinstance(exc, ConnectionError | requests.exceptions.RequestException)


def _rejected(exc: BaseException) -> bool:
    """A request Ray rejected as invalid: the SDK's own checks (TypeError, ValueError) or the
    head's (a traceback ending in one, whatever HTTP status wrapped it)."""
    if isinstance(exc, TypeError | ValueError):
        return True
    text = str(exc)
    relayed = re.search(r"^(TypeError|ValueError): ", text, re.M)
    return "status code 400" in text or relayed is not None


def _not_found(exc: BaseException) -> bool:
    return "status code 404" in str(exc) or "does not exist" in str(exc)


def _ray_reason(exc: BaseException) -> str:
    """The line that says why: the last ``SomethingError: ...`` of a relayed traceback, else
    the SDK's message (its first line)."""
    text = str(exc)
    found = re.findall(r"^([A-Za-z_.]*(?:Error|Exception): .+)$", text, re.M)
    return found[-1].strip() if found else _first_line(text) or type(exc).__name__


# -- the job record ---------------------------------------------------------------------------


def _check_submission(dispatch: Dispatch) -> None:
    """Refuse what the head would mangle: a request id that is not a plain file name, a NUL
    in the command (a shell cannot take it; Ray accepts it and the job fails obscurely)."""
    if not _SUBMISSION_ID.fullmatch(dispatch.request_id):
        raise ExecutorRefused(
            f"request id {dispatch.request_id!r} cannot be a Ray submission id: use letters, "
            "digits, '.', '_' and '-' only (at most 200)"
        )
    if dispatch.command is not None and "\x00" in dispatch.command:
        raise ExecutorRefused("the command holds a NUL byte, which no shell can run")


def _limit_s(walltime_s: int, grace_s: int) -> int:
    # ``timeout 0`` would mean no limit at all: a job always gets at least one second.
    return max(1, int(walltime_s) + grace_s)


def _stopped_by_walltime(info: Any, exit_code: int | None) -> bool:
    limit_s = _metadata_limit_s(info)
    if exit_code not in _TIMEOUT_EXIT_CODES or limit_s is None:
        return False
    ran_ms = (info.end_time or 0) - (info.start_time or 0)
    return ran_ms >= limit_s * 1000


def _walltime_message(info: Any, exit_code: int | None) -> str:
    signal = "TERM" if exit_code == 124 else "KILL"
    return (
        f"stopped at its walltime: planned run plus grace of {_metadata_limit_s(info)} s "
        f"exceeded ({signal} from timeout, exit code {exit_code})"
    )


def _metadata_limit_s(info: Any) -> int | None:
    try:
        return int((info.metadata or {})["computenet_limit_s"])
    except (KeyError, ValueError, TypeError):
        return None


def _value(status: Any) -> Any:
    return getattr(status, "value", status)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# -- option checks ----------------------------------------------------------------------------


class _OptionChecker:
    """Type checks of one site's executor table; errors name ``sites.<id>.executor.<key>``."""

    def __init__(self, site_id: str, options: Mapping[str, Any]) -> None:
        self.site_id = site_id
        self.options = options

    def fail(self, key: str, problem: str, found: str, fix: str | None = None) -> InputError:
        return InputError(
            f"{problem}, found {found}",
            source="network file",
            where=f"sites.{self.site_id}.executor.{key}",
            fix=fix or _FIXES.get(key),
        )

    def no_unknown(self, known: tuple[str, ...]) -> None:
        for key in sorted(self.options):
            if key not in known:
                raise self.fail(
                    key, "unknown ray executor option", repr(key), f"use one of {', '.join(known)}"
                )

    def text(self, key: str, *, required: bool = False) -> str:
        value = self.options.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a non-empty string", repr(value))
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.options.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false", repr(value))
        return value

    def seconds(self, key: str, default: int, *, minimum: int) -> int:
        value = self.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"must be a whole number of seconds >= {minimum}", repr(value))
        return value

    def labels(self, key: str) -> Mapping[str, str] | None:
        value = self.options.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.fail(key, "must be a table of strings", repr(value))
        return dict(value)

    def names(self, key: str) -> tuple[str, ...]:
        value = self.options.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, str) and _ENV_NAME.fullmatch(v) for v in value
        ):
            raise self.fail(key, "must be a list of environment variable names", repr(value))
        return tuple(value)


_FIXES = {
    "address": 'write address = "http://HEAD:8265" (the dashboard port of `ray start --head`)',
    "python": 'write python = "/abs/path/to/venv/bin/python" (as it is on the cluster\'s nodes)',
    "gpus": "write gpus = true to reserve each job's gang size as Ray GPUs, or leave it out",
    "grace_s": "write grace_s = 60 (seconds after the planned run before TERM)",
    "kill_after_s": "write kill_after_s = 10 (seconds after TERM before KILL)",
    "timeout_s": "write timeout_s = 10 (seconds per call to the head)",
    "label_selector": 'write label_selector = { "ray.io/accelerator-type" = "H100" }',
    "pass_env": 'write pass_env = ["NAME"] for variables a job may receive',
}
