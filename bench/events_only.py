"""The `events-only` variant: the floor under any client of a Prefect server that records an item in three events.

Each item costs the server three task-run events (Pending, Running, Completed). This
variant, inside a flow run like the others, does nothing else per item: it makes
each item's three events with Prefect's own function (as the task engine does), in
EVENT_THREADS threads, and sends them over SENDERS websockets of its own
(`PrefectEventsClient`, as the ceiling's sender does), with the flow run and flow
attached as related resources once for all. No task engine, no handler, no
concurrency call, and not the process's events worker, whose one loop makes each
event's related resources again from the context and sends it alone.

What the server records per second with this client running beside it is the most
any client could get on this machine: the server's ceiling is measured with the
events made beforehand and no client's CPU competing; this is the same server while
a client makes and sends them. It is a yardstick, not a way to run items: nothing
runs, and a crash loses whatever was not sent.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

EVENT_THREADS = 8  # as many as ours' item threads in the benchmark
SENDERS = 2


class EventSender:
    """Sends events handed to it from any thread over `senders` websockets, from a
    loop thread of its own; `close()` returns once every event was sent."""

    def __init__(self, related: list, senders: int = SENDERS):
        self.related = related
        self.senders = senders
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="events-only-sender", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure:
            raise self._failure

    def send(self, event) -> None:
        self.loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def close(self) -> None:
        for _ in range(self.senders):
            self.loop.call_soon_threadsafe(self._queue.put_nowait, None)
        self._thread.join()
        if self._failure:
            raise self._failure

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._queue: asyncio.Queue = asyncio.Queue()
        try:
            self.loop.run_until_complete(self._send_all())
        except BaseException as exc:  # handed to the caller by close() (or __init__)
            self._failure = exc
            self._ready.set()

    async def _send_all(self) -> None:
        from contextlib import AsyncExitStack

        from prefect.events.clients import PrefectEventsClient

        async def pump(client) -> None:
            while (event := await self._queue.get()) is not None:
                event.related += self.related
                await client.emit(event)

        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(PrefectEventsClient()) for _ in range(self.senders)]
            self._ready.set()
            await asyncio.gather(*(pump(client) for client in clients))


class _HandOff:
    """Stands in for the process's events worker while the items' events are made:
    Prefect's `emit_event` builds each event and hands it here, to the sender."""

    def __init__(self, sender: EventSender):
        from prefect.events.clients import PrefectEventsClient

        self.client_type = PrefectEventsClient  # emit_event sends only to a real client's worker
        self.sender = sender

    def send(self, event) -> None:
        self.sender.send(event)


def send_item_events(flow_run_id, names: list[str], threads: int = EVENT_THREADS) -> int:
    """Make and send every item's three events; returns how many items."""
    import prefect.events.utilities as event_utilities
    from prefect.client.orchestration import get_client

    from bench.server_ceiling import flow_run_related, item_task_run_events

    with get_client(sync_client=True) as client:
        related = flow_run_related(client, flow_run_id)
    sender = EventSender(related)
    worker = event_utilities.EventsWorker
    hand_off = _HandOff(sender)
    # Only this benchmark process: emit_event asks EventsWorker.instance() for its worker.
    event_utilities.EventsWorker = type("HandOffWorker", (), {"instance": staticmethod(lambda: hand_off)})
    try:
        with ThreadPoolExecutor(threads) as pool:
            done = list(pool.map(lambda name: item_task_run_events(flow_run_id, name, name), names))
    finally:
        event_utilities.EventsWorker = worker
        sender.close()
    return len(done)
