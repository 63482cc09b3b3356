"""Which of several service processes runs the control loop: a lease in the database.

Any number of ``computenet serve`` processes can answer the API against one database; only
the holder of the lease runs loop ticks. The lease is one row (``loop_leader``: holder id,
host, pid, generation, acquired/renewed/expires times) that each process takes or renews
every ``renew_s`` seconds in ONE transaction on the locked row (``Repository.take_leadership``):
the holder pushes its expiry ``lease_s`` ahead; any other process takes the row over once the
expiry has passed, which raises the generation.

Why a lease and not PostgreSQL's ``pg_try_advisory_lock``: an advisory lock belongs to one
database session, so it is released at once when its holder dies cleanly, but

* a holder whose connection silently broke (a partition, a dead NAT entry) keeps believing
  it leads while the server, once it notices, gives the lock to another: two loops, and
  nothing in the lock says which one is stale. The lease states its end on the database's
  clock, and the holder stops on its own clock BEFORE that end (it counts from the moment it
  sent the renewal), so the old holder has stopped before anyone may take over;
* the lock needs one dedicated connection per process held for its whole life, which
  transaction-pooling proxies (PgBouncer) do not give;
* it exists on PostgreSQL only, while the lease is the same code on SQLite (several
  processes on one host) and PostgreSQL, and its row tells ``/healthz`` who leads.

The price is the takeover time after a holder is killed: the lease must lapse first. A
killed holder renewed at most ``renew_s`` before it died, so its lease ends at most
``lease_s`` after the kill; a standby tries every ``renew_s`` and its first tick starts as
soon as it holds the lease: takeover within ``lease_s + renew_s`` (12 s with the defaults).
A clean shutdown releases the lease, so a restart hands over within ``renew_s``.

The generation is a fence: a dispatch is recorded only while its loop's holder and
generation still hold the lease, in the same transaction (``Repository.set_dispatch``),
and the job keeps the generation that dispatched it. A loop deposed in the middle of a tick
therefore dispatches nothing more, whatever its own clock says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from computenet.errors import InputError
from computenet.store.repository import Holder, LeaderLease, Repository

log = logging.getLogger("computenet.leader")


def this_process() -> Holder:
    """A holder id unique to this process start: host, pid and a random suffix (a pid can
    come back after a restart; the suffix cannot)."""
    host = socket.gethostname()[:200]
    pid = os.getpid()
    return Holder(f"{host[:40]}:{pid}:{uuid.uuid4().hex[:8]}", host, pid)


def check_timing(lease_s: float, renew_s: float) -> None:
    """The renewal must come well inside the lease, or a holder that is merely slow loses it."""
    if not renew_s > 0:
        raise InputError(
            f"leader renew interval must be positive, got {renew_s}",
            source="--leader-renew",
            fix="give a number of seconds, e.g. 2",
        )
    if not lease_s >= 2 * renew_s:
        raise InputError(
            f"leader lease {lease_s} s is shorter than two renew intervals ({renew_s} s each)",
            source="--leader-lease",
            fix=f"give at least {2 * renew_s:g} s, or a shorter --leader-renew",
        )


class Leadership:
    """This process's part in the election. ``run_forever`` takes or renews the lease every
    ``renew_s``; the loop asks ``leads()`` before each tick and ``fence()`` for each dispatch.

    ``clock`` (monotonic seconds) is injectable for tests; ``wall`` (epoch seconds) only
    stamps the first tick of a term for ``/healthz``."""

    def __init__(
        self,
        repo: Repository,
        lease_s: float,
        renew_s: float,
        *,
        holder: Holder | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        check_timing(lease_s, renew_s)
        self.repo = repo
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.holder = holder or this_process()
        self.clock = clock
        self.wall = wall
        self._generation: int | None = None  # the term this process holds, if any
        self._valid_until = 0.0  # on ``clock``: when this process must stop leading
        self._first_tick_s: float | None = None  # epoch s of the first tick of this term
        self._gained: asyncio.Event | None = None
        self.last: LeaderLease | None = None  # the lease as last seen

    @property
    def takeover_bound_s(self) -> float:
        """The most time from killing the holder to another's first tick (see module doc)."""
        return self.lease_s + self.renew_s

    # -- one round --------------------------------------------------------------------

    def renew(self) -> bool:
        """Take or renew the lease once; answers whether this process leads now. A database
        error changes nothing: a holder keeps leading until its lease would have lapsed."""
        sent = self.clock()
        try:
            lease = self.repo.take_leadership(self.holder, self.lease_s)
        except Exception:
            log.exception("leader lease: the database did not answer")
            return self.leads()
        self.last = lease
        if lease.holder is not None and lease.holder.id == self.holder.id:
            if lease.generation != self._generation:
                log.warning("this process leads the control loop (generation %d)", lease.generation)
                self._generation = lease.generation
                self._first_tick_s = None
            # Counted from when the renewal was SENT, so this process stops before the
            # database (whose expiry counts from when it ran the update) lets another in.
            self._valid_until = sent + self.lease_s
        else:
            if self._generation is not None:
                log.warning("this process lost the control loop to %s", lease.holder)
            self._generation = None
            self._valid_until = 0.0
        return self.leads()

    def leads(self) -> bool:
        return self._generation is not None and self.clock() < self._valid_until

    def fence(self) -> tuple[str, int] | None:
        """``(holder id, generation)`` to record a dispatch under, None when not leading."""
        if not self.leads() or self._generation is None:
            return None
        return self.holder.id, self._generation

    @property
    def first_tick_s(self) -> float | None:
        """Epoch seconds of this term's first tick; None before it or when not leading."""
        return self._first_tick_s if self.leads() else None

    def note_tick(self) -> None:
        """Called as a tick starts: stamps the first tick of this term."""
        if self._first_tick_s is None and self.leads():
            self._first_tick_s = self.wall()

    def release(self) -> None:
        """Give the lease up (clean shutdown) so another process takes over at once."""
        generation = self._generation
        self._generation = None
        self._valid_until = 0.0
        if generation is not None:
            self.repo.release_leadership(self.holder.id, generation)

    # -- asyncio ------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Renew every ``renew_s`` (apart from the loop's ticks, so a long tick cannot cost
        the lease); wakes a waiting loop when this process becomes the leader."""
        self._gained = asyncio.Event()
        while True:
            led = self.leads()
            if await asyncio.to_thread(self.renew) and not led:
                self._gained.set()
            await asyncio.sleep(self.renew_s)

    async def pause(self, seconds: float) -> None:
        """The loop's sleep between ticks: cut short when this process becomes the leader,
        so a takeover's first tick does not wait for the loop interval."""
        if self.leads() or self._gained is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._gained.wait(), seconds)
        self._gained.clear()

    # -- reporting ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For ``/healthz``: whether this process leads, and who does (read now)."""
        # This process's view first, the database's second: "this_process" is true only if
        # both agree, so a takeover between the two reads cannot show a leader of a stale
        # generation (or none) as this process.
        leads, first_tick_s = self.leads(), self.first_tick_s
        return describe(self.repo.leader_lease(), self, leads, first_tick_s)


def describe(
    lease: LeaderLease,
    mine: Leadership | None,
    leads: bool = False,
    first_tick_s: float | None = None,
) -> dict[str, Any]:
    """The ``leader`` block of ``/healthz``; ``mine`` is None in an API-only process,
    ``leads`` and ``first_tick_s`` are its own view, read before ``lease``."""
    holder = lease.holder if lease.live else None
    this_process = mine is not None and leads and holder is not None and holder == mine.holder
    return {
        "this_process": this_process,
        "candidate": mine is not None,
        "holder": None if holder is None else holder.id,
        "host": None if holder is None else holder.host,
        "pid": None if holder is None else holder.pid,
        "generation": lease.generation,
        "expires_in_s": round(lease.expires_s - lease.now_s, 3) if holder else None,
        "lease_s": None if mine is None else mine.lease_s,
        "renew_s": None if mine is None else mine.renew_s,
        "takeover_within_s": None if mine is None else mine.takeover_bound_s,
        "first_tick_s": first_tick_s if this_process else None,
    }
