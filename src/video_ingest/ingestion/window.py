"""A bounded window of in-flight futures whose wait costs O(1) per finished item.

The seed code rebuilt `as_completed(list(in_flight))` over the whole window for each
finished item: O(N x window) work. Here every future, when added, registers a
done-callback that pushes it onto a queue; waiting for the next finished one is a
single `queue.get`. Works with any future that has `add_done_callback(fn)` calling
`fn(future)`: Prefect futures and `concurrent.futures.Future` alike.
"""

from __future__ import annotations

import queue
from typing import Generic, Iterator, Protocol, TypeVar


class _Future(Protocol):
    def add_done_callback(self, fn) -> None: ...


F = TypeVar("F", bound=_Future)


class InflightWindow(Generic[F]):
    """At most `limit` futures in flight; finished ones come back in finishing order."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("window limit must be at least 1")
        self.limit = limit
        self._finished: queue.SimpleQueue[F] = queue.SimpleQueue()
        self._inflight = 0
        self.peak = 0

    def __len__(self) -> int:
        return self._inflight

    @property
    def full(self) -> bool:
        return self._inflight >= self.limit

    def add(self, future: F) -> None:
        if self.full:
            raise RuntimeError("window is full: wait for a finished future first")
        self._inflight += 1
        self.peak = max(self.peak, self._inflight)
        future.add_done_callback(self._finished.put)

    def next_finished(self, timeout: float | None = None) -> F | None:
        """Block until one future finishes and return it (None on timeout or if empty)."""
        if self._inflight == 0:
            return None
        try:
            future = self._finished.get(timeout=timeout)
        except queue.Empty:
            return None
        self._inflight -= 1
        return future

    def drain(self) -> Iterator[F]:
        """Yield every remaining future as it finishes."""
        while self._inflight:
            future = self.next_finished()
            if future is not None:
                yield future
