"""The job lifecycle: ONE table of allowed transitions, enforced by ``check_transition``."""

from __future__ import annotations

from computenet.errors import ConflictError

STATES = (
    "submitted",
    "placed",
    "transferring",
    "running",
    "checkpointed",
    "succeeded",
    "failed",
    "cancelled",
)
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

# (from, to) -> why the edge exists. Anything not listed is refused.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("submitted", "placed"): "the engine chose a site and start time",
    ("submitted", "cancelled"): "the tenant withdrew it before placement",
    ("submitted", "failed"): "the engine found it infeasible (no schedule can satisfy it)",
    ("placed", "transferring"): "its datasets are being copied to the chosen site",
    ("placed", "running"): "its start time came and the executor started it (no transfer)",
    ("placed", "submitted"): "re-planned: the site went down or the placement was dropped",
    ("placed", "cancelled"): "the tenant withdrew it before it started",
    ("placed", "failed"): "its site's executor refused it (the executor's message says why)",
    ("transferring", "running"): "the data arrived and the executor started it",
    ("transferring", "failed"): "a dataset transfer failed",
    ("transferring", "cancelled"): "the tenant withdrew it during the transfer",
    ("running", "checkpointed"): "preempted, paused, or its site went down, after a checkpoint",
    ("running", "submitted"): "its site went down before a checkpoint; planned again from start",
    ("running", "succeeded"): "the process exited with code 0",
    ("running", "failed"): "the process exited non-zero or the executor lost it",
    ("running", "cancelled"): "the tenant cancelled it; the executor killed the process",
    ("checkpointed", "submitted"): "queued again to resume from its checkpoint",
    ("checkpointed", "cancelled"): "the tenant withdrew it while paused",
}


def check_transition(job_id: str, old: str, new: str) -> None:
    """Raise ``ConflictError`` unless ``old -> new`` is an edge of ``TRANSITIONS``."""
    if (old, new) not in TRANSITIONS:
        raise ConflictError(
            f"job {job_id} cannot go from {old!r} to {new!r}; "
            f"from {old!r} it may go to: "
            + (", ".join(sorted(b for a, b in TRANSITIONS if a == old)) or "(nothing, it is final)")
        )
