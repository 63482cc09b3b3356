"""A small cache of the dashboard's aggregate views, keyed by the data's version.

Every change to a job, a dataset or a site feed is written to the audit log in the same
transaction (``store.repository``), so the newest audit id is a version of everything the
map's load and the totals are built from: a view computed at version ``v`` is still right
while the version is ``v``. Entries also expire after ``max_age_s``, for the few fields the
loop updates without an audit entry (dispatch bookkeeping, messages).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class ViewCache:
    """``get(key, version, compute)``: the value computed for ``key`` at ``version``, or
    ``compute()`` when there is none, it is older than ``max_age_s``, or the version moved.
    At most ``max_entries`` values are kept (least recently used dropped first)."""

    def __init__(
        self,
        max_age_s: float = 30.0,
        max_entries: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Hashable, float, Any]] = OrderedDict()

    def get(self, key: Hashable, version: Hashable, compute: Callable[[], Any]) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == version and now - hit[1] <= self.max_age_s:
                self._entries.move_to_end(key)
                return hit[2]
        value = compute()  # outside the lock: two callers may compute the same view once each
        with self._lock:
            self._entries[key] = (version, now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value
