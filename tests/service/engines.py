"""Test executors built on the real ``local`` one.

``test-killable``: a site whose engine can be killed and brought back. Its engine is "up"
while the file named by the ``alive`` option exists; without it every call raises
``ExecutorUnavailable``, as a Slurm controller that stopped answering would, while the
processes it started keep running (as a cluster's jobs do while its controller is down).

``test-refusing``: refuses commands holding ``REFUSE`` (``ExecutorRefused``, with its own
message) and fails on commands holding ``CRASH`` (a ``ValueError``, as a NUL byte made
``subprocess`` raise); other commands run as ``local`` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from computenet.errors import ExecutorRefused, ExecutorUnavailable
from computenet.executors.base import Dispatch, ExecStatus, option
from computenet.executors.local import LocalExecutor
from computenet.executors.registry import register


@register("test-killable")
class KillableLocal(LocalExecutor):
    def __init__(self, site_id: str, options: Mapping[str, Any], home: Path) -> None:
        super().__init__(site_id, {}, home)
        self.alive = Path(option(options, "alive", "", site_id))

    def _require_engine(self) -> None:
        if not self.alive.exists():
            raise ExecutorUnavailable(f"site {self.site_id}: controller does not answer")

    def heartbeat(self) -> None:
        self._require_engine()

    def submit(self, dispatch: Dispatch) -> str:
        self._require_engine()
        return super().submit(dispatch)

    def poll(self, request_id: str, local_id: str | None = None) -> ExecStatus:
        self._require_engine()
        return super().poll(request_id, local_id)

    def cancel(self, request_id: str, local_id: str | None = None) -> None:
        self._require_engine()
        super().cancel(request_id, local_id)


@register("test-refusing")
class RefusingLocal(LocalExecutor):
    def submit(self, dispatch: Dispatch) -> str:
        if dispatch.command and "REFUSE" in dispatch.command:
            raise ExecutorRefused("sbatch: error: Invalid generic resource (gres) specification")
        if dispatch.command and "CRASH" in dispatch.command:
            raise ValueError("embedded null byte")
        return super().submit(dispatch)
