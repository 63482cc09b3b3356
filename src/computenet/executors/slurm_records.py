"""What Slurm says about jobs, read into our terms: ``scontrol -o`` and job-completion lines
as fields, Slurm job states as ``ExecStatus``, and the few ``slurm.conf`` settings the
executor needs (accounting, the job-completion file)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from computenet.executors.base import ExecStatus, Status

# ``Key=value`` where a value runs to the next key (keys may hold ``/`` and ``:``,
# as in ``CPUs/Task=1`` and ``ReqB:S:C:T=0:0:*:*``).
_KEY = r"[A-Za-z][A-Za-z0-9_/:]*"
_KEY_VALUE = re.compile(rf"(?:^|\s)({_KEY})=(.*?)(?=\s+{_KEY}=|\s*$)")

# Slurm job states -> our statuses. States not listed read as "unknown" with Slurm's word.
_STATES: dict[str, Status] = {
    "PENDING": "pending",
    "CONFIGURING": "pending",
    "REQUEUED": "pending",  # requeued: waits to run again
    "REQUEUE_HOLD": "pending",
    "REQUEUE_FED": "pending",
    "RESIZING": "running",
    "RUNNING": "running",
    "COMPLETING": "running",  # the script ended; Slurm is still cleaning up
    "SUSPENDED": "running",  # holds its accelerators while suspended
    "STAGE_OUT": "running",
    "SIGNALING": "running",
    "COMPLETED": "succeeded",
    "CANCELLED": "cancelled",
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "NODE_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "PREEMPTED": "failed",
    "SPECIAL_EXIT": "failed",
    "REVOKED": "cancelled",  # a federation sibling ran it instead
}
# What a failed state means, for the job's explanation.
_FAILURES = {
    "TIMEOUT": "the job ran past its time limit",
    "NODE_FAIL": "a node of the job failed",
    "OUT_OF_MEMORY": "the job ran out of memory",
    "BOOT_FAIL": "a node of the job failed to boot",
    "DEADLINE": "the job's deadline passed",
    "PREEMPTED": "a higher-priority job preempted it",
}


def key_values(text: str) -> dict[str, str]:
    """``Key=Value Key2=Value2`` (``scontrol -o`` and job-completion lines) as a dict. A
    value runs to the next `` Key=``, so values with spaces (a comment) survive."""
    fields: dict[str, str] = {}
    for match in _KEY_VALUE.finditer(text.strip()):
        fields.setdefault(match.group(1), match.group(2))
    return fields


def exit_code_of(text: str | None) -> int | None:
    """Slurm's ``ExitCode=N:S``: the exit status, or minus the signal that ended it."""
    if not text or ":" not in text:
        return None
    code, signal = text.split(":", 1)
    if signal.isdigit() and int(signal) > 0:
        return -int(signal)
    return int(code) if code.isdigit() else None


def status_of(fields: Mapping[str, str], local_id: str) -> ExecStatus:
    """One job's fields (``scontrol show job`` or a completion line) as our status."""
    state = fields.get("JobState", "").split()[0] if fields.get("JobState") else ""
    status = _STATES.get(state, "unknown")
    reason = fields.get("Reason", "None")
    exit_code = exit_code_of(fields.get("ExitCode")) if status in ("succeeded", "failed") else None
    message = f"Slurm: {state or 'no state'}"
    if state in _FAILURES:
        message += f" ({_FAILURES[state]})"
    elif status == "failed" and exit_code is not None:
        message += f" (exit code {exit_code})"
    if reason not in ("None", "") and status in ("pending", "failed"):
        message += f"; reason: {reason}"
    return ExecStatus(status, exit_code=exit_code, message=message, local_id=local_id)


def conf_settings(conf: Path) -> dict[str, str]:
    """``slurm.conf`` as lower-cased keys to values (what the executor needs to know of it)."""
    settings: dict[str, str] = {}
    try:
        text = conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return settings
    for line in text.splitlines():
        key, sep, value = line.split("#", 1)[0].strip().partition("=")
        if sep:
            settings[key.strip().lower()] = value.strip()
    return settings


def jobcomp_file(settings: Mapping[str, str]) -> Path | None:
    """The ``JobCompLoc`` file of a cluster whose ``JobCompType`` is ``jobcomp/filetxt``."""
    if settings.get("jobcomptype", "").lower() != "jobcomp/filetxt":
        return None
    loc = settings.get("jobcomploc")
    return Path(loc) if loc else None


def has_accounting(settings: Mapping[str, str]) -> bool:
    kind = settings.get("accountingstoragetype", "").lower()
    return kind not in ("", "accounting_storage/none")
