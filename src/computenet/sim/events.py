"""The simulator's event heap: a simulated clock and events ordered by (time, priority, sequence).

As in SimPy's core, ties are broken first by a fixed priority per event kind and then by the
order in which events were scheduled, so a replay is reproducible bit for bit: nothing
depends on hash order, object ids or wall-clock time.

Events are tuples, so the heap compares them in C. A large batch scheduled at once (every
arrival of a workload, ``schedule_many``) waits in a sorted list beside the heap rather
than in it, so the heap stays as small as the events scheduled while the simulation runs;
``pop`` takes the earlier of the two heads, which is the same order as one heap.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable
from typing import NamedTuple


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
    GRID_EVENT = 6  # a grid event is announced: answer it (``sim.gridsim``)
    GRID_PAUSE = 7  # running work stops for a grid event (after the starts of that second)


class Event(NamedTuple):
    """One scheduled event, ordered by ``(time_s, priority, seq)`` (``seq`` is unique, so
    the other fields never take part). ``token`` lets a preempted job's stale start/finish
    events be recognised and dropped (the job's attempt counter moved on)."""

    time_s: int
    priority: int
    seq: int
    kind: EventKind
    subject: str = ""
    token: int = 0


class EventQueue:
    """A min-heap of events and the simulated clock ``now_s`` (UTC epoch seconds)."""

    def __init__(self, start_s: int = 0) -> None:
        self._heap: list[Event] = []
        self._batch: list[Event] = []  # sorted; events before ``_next`` are popped
        self._next = 0
        self._seq = 0
        self.now_s = start_s
        self.processed = 0

    def __len__(self) -> int:
        return len(self._heap) + len(self._batch) - self._next

    def schedule(self, time_s: int, kind: EventKind, subject: str = "", token: int = 0) -> Event:
        """Add an event at ``time_s``; scheduling into the past is a bug and raises."""
        if time_s < self.now_s:
            raise ValueError(f"cannot schedule {kind.name} at {time_s} before now {self.now_s}")
        event = Event(int(time_s), int(kind), self._seq, kind, subject, token)
        self._seq += 1
        heapq.heappush(self._heap, event)
        return event

    def schedule_many(self, events: Iterable[tuple[int, EventKind, str]]) -> None:
        """``schedule(time_s, kind, subject)`` for each item in turn (the same sequence
        numbers), kept out of the heap (see the module docstring)."""
        batch = []
        for time_s, kind, subject in events:
            if time_s < self.now_s:
                raise ValueError(f"cannot schedule {kind.name} at {time_s} before now {self.now_s}")
            batch.append(Event(int(time_s), int(kind), self._seq, kind, subject, 0))
            self._seq += 1
        batch.extend(self._batch[self._next :])
        batch.sort()
        self._batch, self._next = batch, 0

    def pop(self) -> Event:
        """Remove the next event and advance the clock to it."""
        heap, batch, i = self._heap, self._batch, self._next
        if i < len(batch) and (not heap or batch[i] < heap[0]):
            event = batch[i]
            self._next = i + 1
        else:
            event = heapq.heappop(heap)
        self.now_s = event.time_s
        self.processed += 1
        return event

    def peek_time(self) -> int | None:
        heap, batch, i = self._heap, self._batch, self._next
        if i < len(batch) and (not heap or batch[i] < heap[0]):
            return batch[i].time_s
        return heap[0].time_s if heap else None
