"""Item slots from a global concurrency limit, leased in blocks.

Prefect enforces a tag limit by leasing one slot per task run: acquire, renew and
release round trips for every item, serialized per tag in the client. Measured on
prefect 3.9.1 with PostgreSQL, that caps throughput near 22 items/s whatever the
thread count. Here a batch flow run leases slots from a global concurrency limit
in blocks (one lease of B slots per server call) and hands them to its items
locally. The server still counts every slot, so the sum across pods never passes
the limit; an item holds a local slot from before its task run is submitted until
after it reaches a final state, so "items running" never passes "slots held".

`SlotLedger` is the pure bookkeeping; `LeasedSlots` talks to the server.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

log = logging.getLogger("video_ingest.slots")


@dataclass
class Lease:
    id: UUID | str
    size: int


@dataclass
class SlotLedger:
    """How many slots are held, in use and free, and which leases can go back. Pure."""

    cap: int  # most slots this flow run may hold (its in-flight window)
    block: int  # preferred slots per lease
    leases: list[Lease] = field(default_factory=list)
    in_use: int = 0

    @property
    def held(self) -> int:
        return sum(lease.size for lease in self.leases)

    @property
    def free(self) -> int:
        return self.held - self.in_use

    def take(self) -> bool:
        if self.free > 0:
            self.in_use += 1
            return True
        return False

    def give_back(self) -> None:
        if self.in_use <= 0:
            raise RuntimeError("slot given back that was never taken")
        self.in_use -= 1

    def request_sizes(self, wanted: int) -> list[int]:
        """Lease sizes to try, largest first, for `wanted` more items (halving on refusal)."""
        size = min(self.block, self.cap - self.held, max(wanted, 1))
        sizes = []
        while size >= 1:
            sizes.append(size)
            size //= 2
        return sizes

    def add(self, lease: Lease) -> None:
        self.leases.append(lease)

    def releasable(self, still_to_submit: int) -> list[Lease]:
        """Leases that can go back now: only when no more items wait for a slot,
        and only as many as the free slots cover."""
        if still_to_submit > 0:
            return []
        out, free = [], self.free
        for lease in sorted(self.leases, key=lambda lease: lease.size):
            if lease.size <= free:
                out.append(lease)
                free -= lease.size
        return out

    def drop(self, lease: Lease) -> None:
        self.leases.remove(lease)


class SlotSource(Protocol):
    """What the flow needs from item slots; `UnlimitedSlots` and `LeasedSlots` have it."""

    def try_take(self, still_to_submit: int) -> bool: ...
    def give_back(self, still_to_submit: int) -> None: ...
    def close(self) -> None: ...
    retry_after: float


class UnlimitedSlots:
    """No slot limit configured: every take succeeds."""

    retry_after = 0.0

    def try_take(self, still_to_submit: int) -> bool:
        return True

    def give_back(self, still_to_submit: int) -> None:
        pass

    def close(self) -> None:
        pass


class LeasedSlots:
    """Slots of the global limit `name`, leased from the Prefect API in blocks."""

    def __init__(
        self,
        client,
        name: str,
        cap: int,
        block: int,
        lease_seconds: float,
        holder=None,
        retry_after: float = 0.5,
    ):
        self._client = client  # a sync PrefectClient
        self.name = name
        self.ledger = SlotLedger(cap=cap, block=block)
        self.lease_seconds = lease_seconds
        self.holder = holder
        self.retry_after = retry_after
        self.lease_calls = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_loop, name="slot-lease-renewal", daemon=True)
        self._renewer.start()

    def try_take(self, still_to_submit: int) -> bool:
        with self._lock:
            if self.ledger.take():
                return True
            for size in self.ledger.request_sizes(still_to_submit):
                lease = self._lease(size)
                if lease:
                    self.ledger.add(lease)
                    return self.ledger.take()
            return False

    def give_back(self, still_to_submit: int) -> None:
        with self._lock:
            self.ledger.give_back()
            for lease in self.ledger.releasable(still_to_submit):
                self._release(lease)
                self.ledger.drop(lease)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for lease in list(self.ledger.leases):
                self._release(lease)
                self.ledger.drop(lease)
        self._renewer.join(timeout=5)

    def _lease(self, size: int) -> Lease | None:
        import httpx

        self.lease_calls += 1
        try:
            response = self._client.increment_concurrency_slots_with_lease(
                names=[self.name],
                slots=size,
                mode="concurrency",
                lease_duration=self.lease_seconds,
                holder=self.holder,
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 423:
                self.retry_after = float(exc.response.headers.get("Retry-After", 0.5) or 0.5)
                return None
            raise
        return Lease(id=UUID(response.json()["lease_id"]), size=size)

    def _release(self, lease: Lease) -> None:
        self.lease_calls += 1
        try:
            self._client.release_concurrency_slots_with_lease(lease_id=lease.id)
        except Exception as exc:  # the lease expires on its own; say so and go on
            log.warning("could not release slot lease %s (%s); it expires in %ss", lease.id, exc, self.lease_seconds)

    def _renew_loop(self) -> None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            while not self._stop.wait(self.lease_seconds / 3):
                with self._lock:
                    leases = list(self.ledger.leases)
                for lease in leases:
                    try:
                        client.renew_concurrency_lease(lease_id=lease.id, lease_duration=self.lease_seconds)
                    except Exception as exc:
                        log.error("slot lease %s could not be renewed: %s", lease.id, exc)


def open_item_slots(name: str | None, cap: int, block: int, lease_seconds: float, holder=None) -> SlotSource:
    """LeasedSlots when the named global limit exists on the server, else UnlimitedSlots."""
    if not name:
        return UnlimitedSlots()
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    client = get_client(sync_client=True)
    client.__enter__()
    try:
        limit = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        client.__exit__(None, None, None)
        log.info("no global concurrency limit %r on the server: items are not slot-limited", name)
        return UnlimitedSlots()
    if not limit.active:
        client.__exit__(None, None, None)
        return UnlimitedSlots()
    slots = LeasedSlots(
        client,
        name,
        cap=max(1, min(cap, limit.limit)) if limit.limit > 0 else 1,
        block=max(1, min(block, limit.limit or 1)),
        lease_seconds=lease_seconds,
        holder=holder,
    )
    original_close = slots.close

    def close() -> None:
        try:
            original_close()
        finally:
            client.__exit__(None, None, None)

    slots.close = close  # type: ignore[method-assign]
    return slots


def wait_briefly(seconds: float) -> None:
    time.sleep(min(max(seconds, 0.05), 2.0))
