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

import contextvars
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Protocol
from uuid import UUID

log = logging.getLogger(__name__)


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

    @property
    def deficit(self) -> int:
        """Slots in use that no lease covers (after a lease was lost): lease these first."""
        return max(0, self.in_use - self.held)


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


class SlotLimitError(RuntimeError):
    """The global limit items hold slots of is missing or inactive: nothing may start."""


class LeasedSlots:
    """Slots of the global limit `name`, leased from the Prefect API in blocks.

    Fails closed. No slot is handed out while a lease renewal is failing (the server
    may have given those slots to another pod), nor while the server holds fewer of
    our slots than our items use. A lease the server no longer knows (410 on
    renewal) is dropped and leased again before any new item starts; if it vanished
    while we were renewing it in time, the server lost it (a restart with in-memory
    lease storage, or a Redis that lost its data) and its slots stay counted with no
    lease to free them, so we give them back ourselves. A limit lowered below a
    block, or set to 0 (a pause), makes items wait, never fail.
    """

    unhealthy_retry_seconds = 2.0
    longest_lease_wait = 0.25  # at most this long between lease attempts, whatever Retry-After says

    def __init__(
        self,
        client,
        name: str,
        cap: int,
        block: int,
        lease_seconds: float,
        holder=None,
        retry_after: float = 0.5,
        renew_in_background: bool = True,
        renew_every: float | None = None,
        optional: bool = False,
    ):
        self._client = client  # a sync PrefectClient
        self.name = name
        # A tag limit is optional: once it is deleted or deactivated, items run without it
        # (as Prefect's task engine would); a global item limit that vanishes makes them wait.
        self.optional = optional
        self.gone = False
        self.ledger = SlotLedger(cap=cap, block=block)
        self.lease_seconds = lease_seconds
        self.holder = holder
        self.retry_after = retry_after
        self.lease_calls = 0
        self.leases_lost = 0
        self.renewals = 0  # successful lease renewals
        self.renew_every = renew_every or lease_seconds / 3
        self.orphans_returned = 0
        self._renewed_at: dict[object, float] = {}
        self._unreleased: list[Lease] = []  # released by us, refused by the server
        self._renewal_failing = False
        self._over_limit = False  # the server counts more slots than the limit allows
        self._next_lease_at = 0.0  # monotonic time before which a refused lease is not asked again
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # The renewal thread runs in this thread's context, so it talks to the same API
        # (Prefect's temporary settings, e.g. an embedded server's URL, are context variables).
        self._renewer = threading.Thread(
            target=contextvars.copy_context().run, args=(self._renew_loop,), name="slot-lease-renewal", daemon=True,
        )
        if renew_in_background:
            self._renewer.start()

    @property
    def renewal_failing(self) -> bool:
        return self._renewal_failing

    def try_take(self, still_to_submit: int) -> bool:
        with self._lock:
            if self.gone:
                return True
            if self._renewal_failing or self._over_limit:
                self.retry_after = self.unhealthy_retry_seconds
                return False
            if self.ledger.take():
                return True
            # A refused lease is not asked again before the server's Retry-After: the
            # caller's loop hands out the slots its items give back meanwhile, and
            # makes no round trip per item while the limit is full.
            if time.monotonic() < self._next_lease_at:
                return False
            for size in self.ledger.request_sizes(still_to_submit + self.ledger.deficit):
                lease = self._lease(size)
                if lease:
                    self.ledger.add(lease)
                    self._renewed_at[lease.id] = time.monotonic()
                    return self.ledger.take()
            self._next_lease_at = time.monotonic() + min(self.retry_after, self.longest_lease_wait)
            return False

    def give_back(self, still_to_submit: int) -> None:
        with self._lock:
            if self.gone:
                return
            self.ledger.give_back()
            # Over the limit (it was lowered, or paused at 0), a lease goes back as soon
            # as its slots are free, even with items still waiting.
            for lease in self.ledger.releasable(0 if self._over_limit else still_to_submit):
                self._release(lease)
                self.ledger.drop(lease)

    def close(self, retry_seconds: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            for lease in list(self.ledger.leases):
                self._release(lease)
                self.ledger.drop(lease)
        if self._renewer.is_alive():
            self._renewer.join(timeout=5)
        deadline = time.monotonic() + retry_seconds
        while self._unreleased and time.monotonic() < deadline:
            time.sleep(1.0)
            for lease in list(self._unreleased):
                self._release(lease)
        for lease in self._unreleased:
            log.error("slot lease %s (%d slots) could not be released; the server frees it when it expires"
                      " (not while its limit is 0)", lease.id, lease.size)

    def _lease(self, size: int, client=None) -> Lease | None:
        import httpx

        self.lease_calls += 1
        try:
            response = (client or self._client).increment_concurrency_slots_with_lease(
                names=[self.name],
                slots=size,
                mode="concurrency",
                lease_duration=self.lease_seconds,
                holder=self.holder,
            )
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            if code == 423:  # every slot taken: wait as long as the server suggests
                self.retry_after = float(exc.response.headers.get("Retry-After", 0.5) or 0.5)
                return None
            if code == 422:  # the limit is below `size` now (lowered, or 0 to pause)
                self.retry_after = 1.0
                return None
            if code >= 500:  # the server is struggling or restarting: wait, start nothing
                log.warning("slot limit %r: the API answered %s to a lease; items wait", self.name, code)
                self.retry_after = self.unhealthy_retry_seconds
                return None
            raise
        except httpx.TransportError as exc:  # the API is away (a restart): wait, start nothing
            log.warning("slot limit %r: cannot reach the API to lease slots (%s); items wait", self.name, exc)
            self.retry_after = self.unhealthy_retry_seconds
            return None
        body = response.json()
        if not body.get("limits"):
            # The server leased against no limit: ours was deleted or deactivated mid-run.
            self._release(Lease(id=UUID(body["lease_id"]), size=size))
            if self.optional:
                log.warning("slot limit %r is gone or inactive on the server; items run without it", self.name)
                self.gone = True
                return None
            log.error("slot limit %r is gone or inactive on the server; items wait until it is back", self.name)
            self.retry_after = 5.0
            return None
        return Lease(id=UUID(body["lease_id"]), size=size)

    def _release(self, lease: Lease, client=None) -> bool:
        """Give a lease back; one the server refuses is kept and tried again on every renewal.

        Prefect 3.9 cannot release slots of a limit set to 0 (it divides by the limit
        to update the average occupancy, and the update fails), so while a limit is
        paused our releases fail; they go through once it is raised again.
        """
        client = client or self._client
        self.lease_calls += 1
        try:
            # The server answers a release of a lease it no longer knows with 204 and
            # frees nothing: ask first, and give orphaned slots back ourselves.
            if self._known(client, lease):
                client.release_concurrency_slots_with_lease(lease_id=lease.id)
            else:
                self._return_orphans(client, lease)
        except Exception as exc:
            if lease not in self._unreleased:
                self._unreleased.append(lease)
                log.warning("could not release slot lease %s (%s); trying again with every renewal", lease.id, exc)
            return False
        self._renewed_at.pop(lease.id, None)
        if lease in self._unreleased:
            self._unreleased.remove(lease)
        return True

    def _known(self, client, lease: Lease) -> bool:
        """Renew `lease`: True if the server still holds it, False if it is gone (404/410)."""
        import httpx

        try:
            client.renew_concurrency_lease(lease_id=lease.id, lease_duration=self.lease_seconds)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code in (404, 410):
                return False
            raise
        self._renewed_at[lease.id] = time.monotonic()
        return True

    def _return_orphans(self, client, lease: Lease) -> None:
        """Give back the slots of a lease the server lost, if they are still counted.

        Expired leases are repossessed by the server, which frees their slots; only a
        lease that vanished well within its duration (a restart of a server that keeps
        leases in memory, a Redis that lost its data) left its slots counted.
        """
        renewed_at = self._renewed_at.get(lease.id)
        since = time.monotonic() - renewed_at if renewed_at is not None else float("inf")
        if since >= self.lease_seconds * 0.75:
            return
        client.release_concurrency_slots(names=[self.name], slots=lease.size, occupancy_seconds=max(since, 0.001))
        self.orphans_returned += lease.size
        log.warning("slot lease %s was lost by the server; gave back its %d orphaned slot(s)", lease.id, lease.size)

    def _renew_loop(self) -> None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            while not self._stop.wait(self.unhealthy_retry_seconds if self._renewal_failing else self.renew_every):
                self.renew_once(client)

    def renew_once(self, client) -> None:
        """Renew every lease once; mark renewal failing, or drop and repair lost leases."""
        import httpx

        with self._lock:
            for lease in list(self._unreleased):
                self._release(lease, client)
            leases = list(self.ledger.leases) + list(self._unreleased)
        failing = False
        for lease in leases:
            try:
                client.renew_concurrency_lease(lease_id=lease.id, lease_duration=self.lease_seconds)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code in (404, 410):
                    if lease in self._unreleased:  # expired while we could not release it
                        self._unreleased.remove(lease)
                    else:
                        self._lost(client, lease)
                else:
                    failing = True
                    log.error("slot lease %s could not be renewed (HTTP %s); no new item starts",
                              lease.id, exc.response.status_code)
            except Exception as exc:
                failing = True
                log.error("slot lease %s could not be renewed (%s); no new item starts", lease.id, exc)
            else:
                with self._lock:
                    self._renewed_at[lease.id] = time.monotonic()
                    self.renewals += 1
        if failing != self._renewal_failing:
            log.warning("slot lease renewal %s", "failing: items wait" if failing else "recovered: items resume")
        self._renewal_failing = failing
        if not failing:
            self._check_limit(client)

    def _check_limit(self, client) -> None:
        """Stop handing out slots we hold while the server counts more than the limit.

        Leased slots stay valid when a limit is lowered; without this a batch would
        run its whole block after a pause. Items in flight finish; no new one starts
        until the server's count is back within the limit.
        """
        try:
            limit = client.read_global_concurrency_limit_by_name(self.name)
        except Exception as exc:
            log.warning("could not read slot limit %r: %s", self.name, exc)
            return
        over = limit.active and limit.active_slots > limit.limit
        if over != self._over_limit:
            log.warning("slot limit %r: %d slots counted against a limit of %d; %s", self.name,
                        limit.active_slots, limit.limit, "no new item starts" if over else "items resume")
        with self._lock:
            self._over_limit = over
            if over:
                for lease in self.ledger.releasable(0):
                    self._release(lease, client)
                    self.ledger.drop(lease)

    def _lost(self, client, lease: Lease) -> None:
        """Replace a lease the server no longer knows; give back its slots if they are orphaned.

        The replacement is leased first, so that while slots are free in the server's
        count we do not also run items it does not count. Only when the limit is full
        (of orphans, say) are the orphans given back first, and then the replacement
        is tried once more at once: other pods may take those slots in between.
        """
        with self._lock:
            if lease not in self.ledger.leases:
                return
            self.ledger.drop(lease)
            self.leases_lost += 1
            log.warning("slot lease %s (%d slots) is gone from the server; leasing again before another item starts",
                        lease.id, lease.size)
            replacement = self._replace(client, lease.size)
            try:
                self._return_orphans(client, lease)
            except Exception as exc:
                log.error("could not give back %d orphaned slot(s) of %r: %s", lease.size, self.name, exc)
            self._renewed_at.pop(lease.id, None)
            if replacement is None:
                self._replace(client, lease.size)

    def _replace(self, client, size: int) -> Lease | None:
        """Lease up to `size` slots with `client` and add them to the ledger (lock held)."""
        for attempt_size in self.ledger.request_sizes(max(size, self.ledger.deficit)):
            new = self._lease(attempt_size, client)
            if new:
                self.ledger.add(new)
                self._renewed_at[new.id] = time.monotonic()
                return new
        return None


class AllSlots:
    """A slot of each source per item, taken in order; if one refuses, the slots already
    taken go back to their own ledgers (their leases stay held for the next try)."""

    def __init__(self, sources: list[SlotSource]):
        self.sources = sources

    @property
    def retry_after(self) -> float:
        return max(source.retry_after for source in self.sources)

    def try_take(self, still_to_submit: int) -> bool:
        for taken, source in enumerate(self.sources):
            if not source.try_take(still_to_submit):
                for source_before in self.sources[:taken]:
                    source_before.give_back(still_to_submit)
                return False
        return True

    def give_back(self, still_to_submit: int) -> None:
        for source in self.sources:
            source.give_back(still_to_submit)

    def close(self) -> None:
        for source in self.sources:
            source.close()


@contextmanager
def batch_slots(limit_name: str | None, tag: str, cap: int, block: int, lease_seconds: float,
                holder=None) -> Iterator[SlotSource]:
    """An item's slots: one of the global item limit (item_slots) and, if the server has
    an active limit on the items' tag, one of that (`tag:<tag>`), both leased in blocks.
    Prefect's own engine leases a tag limit's slot per task run, one round trip each way;
    the tag limit is read when the batch starts (one created later applies to later batches)."""
    with item_slots(limit_name, cap, block, lease_seconds, holder) as limited:
        with item_slots(f"tag:{tag}", cap, block, lease_seconds, holder, optional=True) as tagged:
            yield AllSlots([limited, tagged])


@contextmanager
def item_slots(name: str | None, cap: int, block: int, lease_seconds: float, holder=None,
               optional: bool = False) -> Iterator[SlotSource]:
    """LeasedSlots of the named global limit, given back and their client closed on
    exit; UnlimitedSlots when `name` is empty.

    A named limit that is missing or inactive on the server raises SlotLimitError on
    entry: items never run unlimited by accident (a typo, a deleted limit). An
    `optional` one (a tag limit) gives UnlimitedSlots instead.
    """
    if not name:
        yield UnlimitedSlots()
        return
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            limit = None
        if optional and (limit is None or not limit.active):
            yield UnlimitedSlots()
            return
        if limit is None:
            raise SlotLimitError(
                f"global concurrency limit {name!r} does not exist on the server"
                " (create it, or set the slot limit setting empty to run items without one)"
            )
        if not limit.active:
            raise SlotLimitError(f"global concurrency limit {name!r} is inactive on the server")
        # The block starts no larger than the limit; if the limit changes later, a refused
        # lease (422) is simply tried again smaller.
        block = max(1, min(block, limit.limit)) if limit.limit > 0 else max(1, block)
        slots = LeasedSlots(client, name, cap=max(1, cap), block=block, lease_seconds=lease_seconds, holder=holder,
                            optional=optional)
        try:
            yield slots
        finally:
            slots.close()


def wait_briefly(seconds: float) -> None:
    time.sleep(min(max(seconds, 0.05), 2.0))
