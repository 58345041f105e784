"""The server's ceiling: how many task-run state events per second a Prefect server
records, end to end, with no flow in the way.

    python -m bench.server_ceiling                        (make bench-ceiling)
    python -m bench.server_ceiling --layouts default --items 1000

Every item a flow runs costs the server three task-run events (Pending, Running,
Completed): a task run in Prefect 3 reports its states itself, as events sent over
the events websocket (`/api/events/in`), and the server's task run recorder turns
them into task run rows. This generator does what a flow's task runs do, and nothing
else:

1. it creates one flow run (the task runs belong to it, as a flow's do), then builds
   each item's three events with Prefect's own `emit_task_run_state_change_event`,
   the task engine's function, with the flow run and its flow attached as related
   resources, as the client's events worker attaches them. Building is not timed;
2. it sends them all over `--senders` websockets at once (Prefect's
   `PrefectEventsClient`, one per sender), each task run's events in order;
3. it asks the server, not itself, how many task runs it has recorded Completed,
   until all are or the count stops growing for `--quiet-for` seconds.

events/s is 3 x the task runs recorded Completed (the recorder writes a run's three
states; Completed is the last of them) over the time from the first event sent until
the last Completed was visible through the API. Sending faster than the server
records is what saturates it: the `sent` column shows how long sending took, and a
ceiling whose sending took as long as the recording was limited by the sender.

One line per layout (Prefect's defaults and the chart's layouts; see
bench/local_services.LAYOUTS), each on a server of its own, started for it.

`--server-images` runs the server's processes from container images instead of this
interpreter, each layout once per image, back to back (PostgreSQL, Redis and the load
generator stay the host's), and prints the second image's events/s over the first's:

    python -m bench.server_ceiling --server-images video-ingest:py311,video-ingest:dev
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.local_services import LAYOUTS, ImagePython, running_server
from bench.records import RESULTS_DIR, machine, utc_stamp
from bench.server_readback import DropCounter, settle
from video_ingest.prefect_api.connection import drain_client_workers

EVENTS_PER_ITEM = 3
HOST = "host"  # the server runs on this interpreter


@dataclass
class CeilingResult:
    layout: str
    items: int
    senders: int
    send_seconds: float  # from the first event sent until the last one was sent
    seconds: float  # from the first event sent until the server showed the last Completed
    recorded_completed: int
    dropped_log_lines: int
    server: str = HOST  # where the server's Python came from: this interpreter, or an image
    python: str = ""  # the server's Python version

    @property
    def events_per_s(self) -> float:
        return EVENTS_PER_ITEM * self.recorded_completed / self.seconds if self.seconds > 0 else 0.0

    @property
    def dropped(self) -> int:
        return self.dropped_log_lines + (self.items - self.recorded_completed)


def format_ceiling(result: CeilingResult) -> str:
    """The one line a layout's measurement prints."""
    return (
        f"server_ceiling layout={result.layout} events_per_s={result.events_per_s:.0f}"
        f" items={result.items} recorded={result.recorded_completed} dropped={result.dropped}"
        f" seconds={result.seconds:.1f} sent_in={result.send_seconds:.1f} senders={result.senders}"
        f" server={result.server} python={result.python}"
    )


def format_image_ratio(before: CeilingResult, after: CeilingResult) -> str:
    """The line comparing two server images on one layout: after's events/s over before's."""
    ratio = after.events_per_s / before.events_per_s if before.events_per_s > 0 else float("nan")
    return (
        f"server_image_ratio layout={after.layout} before={before.server} python_before={before.python}"
        f" after={after.server} python_after={after.python} ratio={ratio:.2f}"
    )


def post(http: httpx.Client, path: str, body: dict, attempts: int = 10) -> httpx.Response:
    """POST, asked again after a 503: a fresh server on SQLite answers 503 while its
    own services hold the database ("database is locked"), as Prefect's client retries."""
    for attempt in range(attempts):
        response = http.post(path, json=body)
        if response.status_code != 503 or attempt == attempts - 1:
            response.raise_for_status()
            return response
        time.sleep(1)
    raise AssertionError("unreachable")


def create_flow_run(api_url: str, name: str) -> str:
    """A Running flow run of a `server-ceiling` flow, for the task runs to belong to."""
    with httpx.Client(base_url=api_url, timeout=30) as http:
        flow = post(http, "/flows/", {"name": "server-ceiling"})
        run = post(http, "/flow_runs/", {
            "flow_id": flow.json()["id"], "name": name, "state": {"type": "RUNNING", "name": "Running"},
        })
        return run.json()["id"]


def item_task_run_events(flow_run_id, name: str, dynamic_key: str) -> list:
    """One item's Pending, Running and Completed events, made as Prefect's task engine
    makes them (its `emit_task_run_state_change_event`, which also hands each to the
    process's events worker), for a task run of `flow_run_id` named `name`."""
    from prefect.client.schemas.objects import TaskRun, TaskRunPolicy
    from prefect.states import Completed, Pending, Running
    from prefect.utilities.engine import emit_task_run_state_change_event

    pending = Pending()
    task_run = TaskRun(
        id=uuid.uuid4(), name=name, flow_run_id=flow_run_id, task_key="ceiling-item", dynamic_key=dynamic_key,
        empirical_policy=TaskRunPolicy(retries=3), tags=["video-ingest"], expected_start_time=pending.timestamp,
        state_id=pending.id, state_type=pending.type, state_name=pending.name, state=pending,
        created=pending.timestamp, updated=pending.timestamp,
    )
    events, last = [], None
    for state in (pending, Running(), Completed()):
        previous = task_run.state if last else None
        state.state_details.task_run_id = task_run.id
        state.state_details.flow_run_id = flow_run_id
        task_run.state, task_run.state_id = state, state.id
        task_run.state_type, task_run.state_name = state.type, state.name
        if state.is_running():
            task_run.start_time = state.timestamp
            task_run.run_count += 1
        if state.is_final():
            task_run.end_time = state.timestamp
            task_run.total_run_time = state.timestamp - task_run.start_time
        last = emit_task_run_state_change_event(
            task_run=task_run, initial_state=previous, validated_state=state, follows=last,
        )
        events.append(last)
    return events


def flow_run_related(client, flow_run_id) -> list:
    """The flow run and its flow as related resources, as the client's events worker
    attaches them to a task run's events."""
    from prefect.events.related import object_as_related_resource

    flow_run = client.read_flow_run(flow_run_id)
    flow = client.read_flow(flow_run.flow_id)
    return [
        object_as_related_resource(kind="flow-run", role="flow-run", object=flow_run),
        object_as_related_resource(kind="flow", role="flow", object=flow),
    ]


def build_task_run_events(api_url: str, flow_run_id: str, items: int) -> list[list]:
    """Each item's Pending, Running and Completed events, as Prefect's task engine makes them."""
    from prefect.client.orchestration import get_client
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            related = flow_run_related(client, flow_run_id)
        # The engine's function hands each event to the process's events worker and
        # returns it; the worker is pointed at Prefect's recording client here, so
        # nothing is sent before the clock starts.
        EventsWorker.set_client_override(AssertingEventsClient)
        try:
            per_item = []
            for n in range(items):
                events = item_task_run_events(uuid.UUID(str(flow_run_id)), f"ceiling-{n:06d}", str(n))
                for event in events:
                    event.related += related
                per_item.append(events)
        finally:
            drain_client_workers(timeout=60)
            EventsWorker.set_client_override(None)
            AssertingEventsClient.reset()
    return per_item


async def send_all(api_url: str, per_item: list[list], senders: int) -> tuple[float, float]:
    """Send every item's events over `senders` websockets at once; returns when the
    first was sent and when the server had read the last (epoch s)."""
    from prefect.events.clients import PrefectEventsClient

    async def send(client: PrefectEventsClient, share: list[list]) -> None:
        for events in share:
            for event in events:
                await client.emit(event)

    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(PrefectEventsClient(api_url=api_url)) for _ in range(senders)]
        started = time.time()  # connected and authenticated: the clock starts
        await asyncio.gather(*(send(client, per_item[k::senders]) for k, client in enumerate(clients)))
    # The websockets are closed, and a close handshake comes after the data: the
    # server has read every event.
    return started, time.time()


def measure_ceiling(api_url: str, layout: str, items: int, senders: int, drops=None,
                    quiet_for: float = 30.0) -> CeilingResult:
    """Send `items` task runs' events to the server at `api_url` and time their recording."""
    flow_run_id = create_flow_run(api_url, f"ceiling-{layout}-{items}")
    per_item = build_task_run_events(api_url, flow_run_id, items)
    if drops:
        drops.new_drops()
    started, sent = asyncio.run(send_all(api_url, per_item, senders))
    recorded, recorded_at = settle(api_url, flow_run_id, items, quiet_for=quiet_for)
    return CeilingResult(
        layout=layout, items=items, senders=senders, send_seconds=sent - started, seconds=recorded_at - started,
        recorded_completed=recorded, dropped_log_lines=drops.new_drops() if drops else 0,
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", default=",".join(LAYOUTS),
                        help=f"server layouts, comma-separated, of {', '.join(LAYOUTS)}")
    parser.add_argument("--items", type=int, default=2000, help="task runs sent (three events each)")
    parser.add_argument("--senders", type=int, default=4, help="websockets sending at once")
    parser.add_argument("--workdir", default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--server-images", default=HOST,
                        help=f"where the server's Python comes from, comma-separated: {HOST} (this interpreter)"
                             " or container images; each layout runs once per entry, back to back")
    args = parser.parse_args(argv)
    args.server_images = [name for name in args.server_images.split(",") if name]
    if not args.server_images or len(set(args.server_images)) != len(args.server_images):
        parser.error("--server-images takes distinct entries, at least one")
    args.layouts = [name for name in args.layouts.split(",") if name]
    unknown = [name for name in args.layouts if name not in LAYOUTS]
    if unknown or not args.layouts:
        parser.error(f"--layouts takes {', '.join(LAYOUTS)}, not {','.join(unknown) or 'nothing'}")
    if args.items < 1 or args.senders < 1:
        parser.error("--items and --senders must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services on the way out
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="video-ingest-ceiling-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)  # PostgreSQL runs as its own user below it
    facts = machine()
    print(f"# {facts['cores']} cores, {facts['cpu']}, Python {facts['python']}, prefect {facts['prefect']},"
          f" load {facts['load_avg_at_start']:.2f}; {args.items} task runs over {args.senders} websockets;"
          f" work in {workdir}", flush=True)
    pythons = {image: facts["python"] if image == HOST else ImagePython(image, workdir).version()
               for image in args.server_images}
    results = []
    for name in args.layouts:
        layout = LAYOUTS[name]
        print(f"# {name}: {layout.describe()}", flush=True)
        per_image = []
        for image in args.server_images:
            scratch = workdir / (name if image == HOST else f"{name}-{image.replace('/', '_').replace(':', '_')}")
            with running_server(layout, scratch, None if image == HOST else ImagePython(image, scratch)) as server:
                result = measure_ceiling(server.url, name, args.items, args.senders, DropCounter(server.log_paths))
            result.server, result.python = image, pythons[image]
            per_image.append(result)
            print(format_ceiling(result), flush=True)
        if len(per_image) > 1:
            print(format_image_ratio(per_image[0], per_image[-1]), flush=True)
        results.extend(per_image)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"ceiling-{utc_stamp()}.json").write_text(json.dumps(
        {"machine": facts, "args": vars(args),
         "results": [{**asdict(r), "events_per_s": r.events_per_s, "dropped": r.dropped} for r in results]},
        indent=2,
    ))
    return 1 if any(result.dropped for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
