"""Heartbeats: which sites' executors answer, and which sites are down.

Every ``heartbeat_interval_s`` each executor's ``heartbeat()`` runs in its own thread and
the round waits at most ``heartbeat_timeout_s``: a silent engine costs the tick that much,
never more, and never delays the other sites' answers (a heartbeat still hanging from an
earlier round is not started again). A site that has not answered for
``site_down_after_s`` is marked down in the database (audited ``site.down``), so a
restarted service keeps it down until its engine answers again (``site.up``).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from computenet.control.metrics import LoopMetrics
from computenet.executors.base import Executor
from computenet.settings import Settings
from computenet.store.repository import Repository

log = logging.getLogger("computenet.control.health")


@dataclass
class SiteHealth:
    site_id: str
    kind: str
    up: bool = True  # False once marked down (persisted)
    reachable: bool = True  # answered its last heartbeat (and no call found it unavailable)
    last_heartbeat_s: int | None = None  # UTC epoch seconds of its last answer
    down_since_s: int | None = None
    message: str | None = None  # why it did not answer
    silent_since_s: float = 0.0  # last answer, or when this service began watching it

    def as_dict(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "kind": self.kind,
            "up": self.up,
            "reachable": self.reachable,
            "last_heartbeat_s": self.last_heartbeat_s,
            "down_since_s": self.down_since_s,
            "message": self.message,
        }


class Health:
    def __init__(
        self,
        repo: Repository,
        executors: Mapping[str, Executor],
        settings: Settings,
        metrics: LoopMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.executors = executors
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.sites = self._load(clock())
        self._pool = cf.ThreadPoolExecutor(
            max_workers=max(1, len(executors)), thread_name_prefix="heartbeat"
        )
        self._pending: dict[str, cf.Future[None]] = {}
        self._last_round_s = float("-inf")

    def _load(self, now: float) -> dict[str, SiteHealth]:
        """Sites as the database left them: a site marked down stays down. Every site gets
        ``site_down_after_s`` from now to answer (the service itself may have been down)."""
        saved = self.repo.site_health()
        out = {}
        for site_id, executor in self.executors.items():
            row = saved.get(site_id, {})
            out[site_id] = SiteHealth(
                site_id,
                executor.kind,
                up=row.get("up", True),
                reachable=row.get("up", True),
                last_heartbeat_s=row.get("last_heartbeat_s"),
                down_since_s=row.get("down_since_s"),
                message=row.get("message"),
                silent_since_s=now,
            )
            self.metrics.site_up.labels(site_id, executor.kind).set(1 if out[site_id].up else 0)
        return out

    # -- what the other steps ask -------------------------------------------------------

    def down_sites(self) -> frozenset[str]:
        return frozenset(s for s, h in self.sites.items() if not h.up)

    def usable(self, site_id: str) -> bool:
        """Up and answering: safe to call its executor now (a call to a silent engine
        could hang the tick)."""
        h = self.sites.get(site_id)
        return h is not None and h.up and h.reachable

    def note_unavailable(self, site_id: str, message: str) -> None:
        """A call found the engine unreachable: stop calling it until a heartbeat answers."""
        h = self.sites.get(site_id)
        if h is not None:
            h.reachable = False
            h.message = message

    def snapshot(self) -> list[dict[str, Any]]:
        return [h.as_dict() for _, h in sorted(self.sites.items())]

    def call(self, site_id: str, fn: Callable[[], Any], timeout_s: float) -> Any:
        """Run ``fn`` (a call to ``site_id``'s engine) in a thread, waiting at most
        ``timeout_s``; raises ``TimeoutError`` past it (the call goes on in its thread)."""
        return self._pool.submit(fn).result(timeout=timeout_s)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the step -----------------------------------------------------------------------

    def beat(self) -> tuple[list[str], list[str]]:
        """One heartbeat round if one is due: ``(sites that went down, sites back up)``."""
        now = self.clock()
        if now - self._last_round_s < self.settings.heartbeat_interval_s:
            return [], []
        self._last_round_s = now
        answers = self._ask_all()
        self.repo.record_heartbeats(
            [(s, self.sites[s].kind, ok, msg) for s, (ok, msg) in answers.items()]
        )
        for site_id, (ok, msg) in answers.items():
            h = self.sites[site_id]
            h.reachable, h.message = ok, msg
            if ok:
                h.last_heartbeat_s, h.silent_since_s = int(now), now
        return self._mark(now)

    def _ask_all(self) -> dict[str, tuple[bool, str | None]]:
        futures: dict[str, cf.Future[None]] = {}
        for site_id, executor in self.executors.items():
            pending = self._pending.get(site_id)
            if pending is None or pending.done():
                pending = self._pool.submit(executor.heartbeat)
                self._pending[site_id] = pending
            futures[site_id] = pending
        cf.wait(list(futures.values()), timeout=self.settings.heartbeat_timeout_s)
        out: dict[str, tuple[bool, str | None]] = {}
        for site_id, fut in futures.items():
            if not fut.done():
                out[site_id] = (False, f"no answer within {self.settings.heartbeat_timeout_s} s")
            elif fut.exception() is not None:
                out[site_id] = (False, f"{fut.exception()}")
            else:
                out[site_id] = (True, None)
        return out

    def _mark(self, now: float) -> tuple[list[str], list[str]]:
        went_down, came_up = [], []
        for site_id, h in sorted(self.sites.items()):
            silent_s = now - h.silent_since_s
            if h.up and not h.reachable and silent_s >= self.settings.site_down_after_s:
                why = f"no heartbeat for {silent_s:.0f} s: {h.message}"
                self.repo.mark_site(site_id, h.kind, False, why)
                log.warning("site %s is down (%s)", site_id, why)
                h.up, h.down_since_s = False, int(now)
                went_down.append(site_id)
            elif not h.up and h.reachable:
                self.repo.mark_site(site_id, h.kind, True, "its executor answers again")
                log.warning("site %s is up again", site_id)
                h.up, h.down_since_s = True, None
                came_up.append(site_id)
            self.metrics.site_up.labels(site_id, h.kind).set(1 if h.up else 0)
        return went_down, came_up
