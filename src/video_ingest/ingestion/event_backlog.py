"""Holding item submission back while this process's Prefect events pile up.

Task run states reach the server as events, sent by one background worker per
process. No-op items finish faster than a 2-core server takes their events in
(three per item), so without a bound the unsent events (each with a copy of its
context) pile up in the flow's memory and the items stay invisible on the server
long after the flow says they are done. `EventBacklog` lets the batch submit a new
item only while fewer than `limit` events wait. If the backlog stops shrinking for
`stall_seconds` (the server is gone, say), it stops holding back and says so once:
the batch must not hang on its observability.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

log = logging.getLogger(__name__)


def unsent_prefect_events() -> int:
    """Events queued in this process's Prefect events worker(s), not yet sent."""
    from prefect._internal.concurrency.services import _QueueServiceBase
    from prefect.events.worker import EventsWorker

    total = 0
    for service in list(_QueueServiceBase._instances.values()):
        if isinstance(service, EventsWorker):
            total += service._queue.qsize()
    return total


class EventBacklog:
    """`too_high()` is true while more than `limit` events wait (limit 0: never)."""

    def __init__(
        self,
        limit: int,
        probe: Callable[[], int] = unsent_prefect_events,
        stall_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limit = limit
        self.probe = probe
        self.stall_seconds = stall_seconds
        self.clock = clock
        self.gave_up = False
        self.held_back = 0  # times an item waited for the backlog
        self._lowest = None  # smallest backlog seen while holding back, and when
        self._lowest_at = 0.0

    def too_high(self) -> bool:
        if self.limit <= 0 or self.gave_up:
            return False
        waiting = self.probe()
        if waiting <= self.limit:
            self._lowest = None
            return False
        now = self.clock()
        if self._lowest is None or waiting < self._lowest:
            self._lowest, self._lowest_at = waiting, now
        elif now - self._lowest_at > self.stall_seconds:
            self.gave_up = True
            log.warning(
                "%d Prefect events have waited %.0fs without being sent; items are no longer held back for them",
                waiting, self.stall_seconds,
            )
            return False
        self.held_back += 1
        return True
