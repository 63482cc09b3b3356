"""The simulator's event heap: a simulated clock and events ordered by (time, priority, sequence).

As in SimPy's core, ties are broken first by a fixed priority per event kind and then by the
order in which events were scheduled, so a replay is reproducible bit for bit: nothing
depends on hash order, object ids or wall-clock time.
"""

from __future__ import annotations

import enum
import heapq
from dataclasses import dataclass, field


class EventKind(enum.IntEnum):
    """Event kinds; the value is the priority among events at the same second (lower first).

    The order matters: capacity freed by a finishing job, and a site coming back, must be
    visible to the arrivals and planning rounds of the same second; an outage must cancel
    the reservations of that second before their start events fire.
    """

    FINISH = 0
    OUTAGE_END = 1
    OUTAGE_START = 2
    ARRIVAL = 3
    PLAN = 4
    START = 5


@dataclass(frozen=True, order=True)
class Event:
    """One scheduled event. ``token`` lets a preempted job's stale start/finish events be
    recognised and dropped (the job's attempt counter moved on)."""

    time_s: int
    priority: int
    seq: int
    kind: EventKind = field(compare=False)
    subject: str = field(compare=False, default="")
    token: int = field(compare=False, default=0)


class EventQueue:
    """A min-heap of events and the simulated clock ``now_s`` (UTC epoch seconds)."""

    def __init__(self, start_s: int = 0) -> None:
        self._heap: list[Event] = []
        self._seq = 0
        self.now_s = start_s
        self.processed = 0

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, time_s: int, kind: EventKind, subject: str = "", token: int = 0) -> Event:
        """Add an event at ``time_s``; scheduling into the past is a bug and raises."""
        if time_s < self.now_s:
            raise ValueError(f"cannot schedule {kind.name} at {time_s} before now {self.now_s}")
        event = Event(int(time_s), int(kind), self._seq, kind, subject, token)
        self._seq += 1
        heapq.heappush(self._heap, event)
        return event

    def pop(self) -> Event:
        """Remove the next event and advance the clock to it."""
        event = heapq.heappop(self._heap)
        self.now_s = event.time_s
        self.processed += 1
        return event

    def peek_time(self) -> int | None:
        return self._heap[0].time_s if self._heap else None
