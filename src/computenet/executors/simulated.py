"""``simulated``: the executor of sites that have no engine of their own (the built-in
catalog's sites). It runs nothing: a dispatched job counts as running until its planned end,
then succeeds, and its output says that nothing ran. It lets the service plan and account
for a whole national network on one machine without running tenants' commands anywhere.

The planned end travels in the site-local id (``simulated:<site>:<request id>:<end_s>``),
so a restarted service still knows when the job ends; repeating a submit with the same
request id answers the id recorded the first time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from computenet.executors.base import Capabilities, Dispatch, ExecStatus
from computenet.executors.registry import register


@register("simulated")
class SimulatedExecutor:
    kind: ClassVar[str] = "simulated"
    capabilities: ClassVar[Capabilities] = Capabilities(
        runs_commands=False,
        cancel=True,
        checkpoint_signal=False,
        logs=True,
        survives_restart=True,
        binds_accelerators=False,
    )

    def __init__(self, site_id: str, options: Mapping[str, Any], home: Path) -> None:
        self.site_id = site_id
        self._ids: dict[str, str] = {}  # request id -> local id (repeats answer the same)
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def heartbeat(self) -> None:
        """Nothing to reach: a simulated site always answers."""

    def submit(self, dispatch: Dispatch) -> str:
        with self._lock:
            if dispatch.request_id not in self._ids:
                end_s = int(time.time()) + max(1, dispatch.walltime_s)
                self._ids[dispatch.request_id] = (
                    f"simulated:{self.site_id}:{dispatch.request_id}:{end_s}"
                )
            return self._ids[dispatch.request_id]

    def poll(self, request_id: str, local_id: str | None) -> ExecStatus:
        if request_id in self._cancelled:
            return ExecStatus("cancelled", local_id=local_id)
        end_s = _planned_end(local_id or self._ids.get(request_id))
        if end_s is None:
            return ExecStatus("unknown", message="not dispatched to this simulated site")
        if time.time() < end_s:
            return ExecStatus("running", local_id=local_id)
        return ExecStatus("succeeded", exit_code=0, message=_NOTHING_RAN.format(site=self.site_id))

    def cancel(self, request_id: str, local_id: str | None) -> None:
        with self._lock:
            self._cancelled.add(request_id)

    def output(self, request_id: str, local_id: str | None, max_bytes: int) -> tuple[str, bool]:
        if _planned_end(local_id or self._ids.get(request_id)) is None:
            return "", False
        text = _NOTHING_RAN.format(site=self.site_id) + "\n"
        return text[-max_bytes:], len(text) > max_bytes


_NOTHING_RAN = (
    "computenet: nothing ran: site {site} is simulated (it has no engine); the job counted "
    "as running until its planned end"
)


def _planned_end(local_id: str | None) -> int | None:
    if not local_id or not local_id.startswith("simulated:"):
        return None
    try:
        return int(local_id.rsplit(":", 1)[1])
    except ValueError:
        return None
