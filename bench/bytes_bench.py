"""Throughput with real bytes: our batch flow against the same fetch handler in a plain pool.

`python -m bench.bytes_bench --videos 200 --mb 1` makes one real video of about M MB
(PyAV, noise frames, so it does not compress away), serves it under N names from an
HTTP server with Range support on loopback, and ingests the N items to an
S3-compatible store on loopback (SeaweedFS's `weed server -s3`, the binary
hack/build-seaweedfs-image.sh builds), twice, in one run:

* `plain`: `FetchHandler.process` for every item from a `ThreadPoolExecutor`, no Prefect,
  in a process of its own (bench/bytes_plain.py);
* `ours`: `video-ingest run` (our `ingest-batch` flow: one task run per video, the
  in-flight window, slots of a global limit) against a Prefect server laid out as the
  chart's default (`--layout chart-memory`: PostgreSQL, batched recorder writes,
  in-memory messaging; see bench/local_services.LAYOUTS), with the same thread count.

`--python-image IMAGE` runs both variants and the Prefect server on Python from a
container image (e.g. the project's, on 3.13); the HTTP and S3 servers stay here.

`--server-core` gives the Prefect server and its PostgreSQL the machine's last CPU and
everything else (each variant, the S3 store, the HTTP source) the others, as a
cluster gives the server pods of their own (bench/cpu_pinning.py). Without it all
share every core, and the server's CPU for ours' items is time ours' items wait.

Each writes to a fresh prefix, so nothing is skipped. Both variants are timed two
ways, the same for both:

* whole process: from the command's start to its exit (Python's start, imports,
  and for ours the flow runs' start and end, the artifacts and the last events);
* over the items: from the first item's start to the last one's end (ours: as the
  server recorded its task runs), which leaves each one's fixed start-up cost out.

Under each variant's line, the CPU seconds each process spent meanwhile
(bench/cpu_usage.py): its own, the Prefect server's, PostgreSQL's, the S3 store's, the
HTTP source's (this process), anything else on the machine (a kind node left
running shows here), and the machine's busy time against what its cores offered. On
a machine the variants saturate, CPU the server spends on ours' items is time the
items wait.

The last line is `ratio_vs_plain=R mb_per_s=X plain_mb_per_s=Y items_ratio_vs_plain=R2
ours_outside_items_s=F plain_outside_items_s=P server_cpu_ms_per_item=S server_core=C`:
R compares whole processes, R2 the time over the items, F and P are each one's time
outside its items, S the CPU the Prefect server and its PostgreSQL spent per item of
ours, C 1 with `--server-core`, else 0. The goal is
R >= 0.8 at 1 MB items (orchestration costs at most a fifth). Ours' fixed cost (about
4 s on 2 cores: importing Prefect, two flow runs' start and end) is paid once per
`video-ingest run`, so R approaches R2 as N grows; report the N.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cpu_pinning import SERVER_ROLES, PinningError, descendants, pin_process, pin_roles, split_cpus
from bench.cpu_usage import snapshot, spent
from bench.local_services import (
    LAYOUTS,
    REPO,
    ImagePython,
    ServiceError,
    _wait_for_port,
    python_command,
    running_server,
)
from bench.records import last_json_line
from video_ingest.prefect_api.connection import stop_process

BUCKET = "bench"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bytes_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200, help="items per variant")
    parser.add_argument("--mb", type=float, default=1.0, help="size of each video, MB")
    parser.add_argument("--threads", type=int, default=8, help="threads of both variants")
    parser.add_argument("--weed", help="SeaweedFS binary (default: the one hack/ built, or weed on PATH)")
    parser.add_argument("--layout", default="chart-memory", choices=sorted(LAYOUTS),
                        help="the Prefect server's layout (default: the chart's default)")
    parser.add_argument("--python-image", default=None,
                        help="run both variants and the Prefect server on Python from this container image"
                             " (default: this interpreter); the HTTP and S3 servers stay on this machine")
    parser.add_argument("--server-core", action="store_true",
                        help="the Prefect server and PostgreSQL on the last CPU, everything else on the others")
    args = parser.parse_args(argv)
    if args.server_core and args.python_image:
        parser.error("--server-core pins processes of this machine's Python; it cannot pin an image's containers")
    return args


def find_weed(explicit: str | None) -> str:
    if explicit:
        return explicit
    # where hack/ caches its binaries (hack/versions.env: VIDEO_INGEST_CACHE)
    cache = Path(os.environ.get("VIDEO_INGEST_CACHE", "/var/cache/video-ingest")) / "bin"
    found = sorted(cache.glob("weed-*"))
    if found:
        return str(found[-1])
    on_path = shutil.which("weed")
    if not on_path:
        raise ServiceError("no SeaweedFS binary: run hack/build-seaweedfs-image.sh (it caches weed) or pass --weed")
    return on_path


def weed_port() -> int:
    """A free loopback port P below 55536 whose P+10000 (weed's gRPC port for it) is free too."""
    import random
    import socket

    while True:
        port = random.randint(20000, 45000)
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


class SeaweedS3:
    """`weed server -s3` on loopback, no authentication, data in `workdir`."""

    def __init__(self, binary: str, workdir: Path):
        self.binary, self.workdir = binary, workdir
        self.port = weed_port()
        self.log_path = workdir.with_name("weed.log")  # kept when the data is dropped
        self._process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports = {"master.port": weed_port(), "volume.port": weed_port(), "filer.port": weed_port()}
        command = [self.binary, "server", f"-dir={self.workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3",
                   f"-s3.port={self.port}", "-master.volumeSizeLimitMB=256", "-volume.max=0",
                   *(f"-{key}={value}" for key, value in ports.items())]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_for_port(self.port, "SeaweedFS S3", self._process, self.log_path, timeout=120)

    def stop(self) -> None:
        stop_process(self._process, 15)


def s3_env(store: SeaweedS3) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": store.url}


def make_bucket(store: SeaweedS3) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(key="bench", secret="bench-secret", endpoint_url=store.url)
    deadline = time.monotonic() + 60
    while True:
        try:
            fs.mkdir(BUCKET)
            return
        except Exception as exc:  # the filer may still be starting
            if "BucketAlreadyExists" in repr(exc) or time.monotonic() > deadline:
                if "BucketAlreadyExists" in repr(exc):
                    return
                raise ServiceError(f"could not create bucket {BUCKET}: {exc}") from exc
            time.sleep(1)


def make_sources(folder: Path, count: int, megabytes: float) -> tuple[list[str], int]:
    """One noise video of about `megabytes`, linked under `count` names."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.videos import make_video

    folder.mkdir(parents=True, exist_ok=True)
    seconds = 1.0
    while True:
        video = make_video(folder / "master.mp4", seconds=seconds, width=320, height=240, noise=True)
        if video.stat().st_size >= megabytes * 1_000_000 or seconds > 600:
            break
        seconds = max(seconds * 1.05, seconds * megabytes * 1_000_000 / video.stat().st_size)
    names = [f"bench-{n:05d}.mp4" for n in range(count)]
    for name in names:
        os.link(video, folder / name)
    return names, video.stat().st_size


def run_plain(names: list[str], base: str, destination: str, threads: int, env: dict, workdir: Path,
              python: ImagePython | None = None) -> tuple[float, float]:
    """bench.bytes_plain in a process of its own, on the same Python as ours: its wall
    time, and its own timing from the first item's start to the last one's end."""
    listed = workdir / "plain-names.txt"
    listed.write_text("".join(f"{name}\n" for name in names))
    env = {**env, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    done = subprocess.run([*python_command(python, env), "-m", "bench.bytes_plain", base, destination, str(threads),
                           str(listed)], env=env, capture_output=True, text=True, timeout=3600)
    elapsed = time.monotonic() - started
    result = last_json_line(done.stdout)
    if done.returncode != 0 or result.get("ingested") != len(names):
        raise RuntimeError(f"plain: exit {done.returncode}, {result}: {done.stderr[-2000:]}")
    return elapsed, result["seconds"]


def run_ours(names: list[str], base: str, destination: str, threads: int, api_url: str, env: dict,
             workdir: Path, python: ImagePython | None = None) -> float:
    """`video-ingest run` of every name: its wall time."""
    ids = workdir / "ids.txt"
    ids.write_text("".join(f"{name}\n" for name in names))
    child_env = {**env, "PREFECT_API_URL": api_url, "VIDEO_INGEST_HANDLER": "fetch",
                 "VIDEO_INGEST_DESTINATION": destination, "VIDEO_INGEST_SOURCE_BASE": base,
                 "VIDEO_INGEST_MAX_WORKERS": str(threads), "VIDEO_INGEST_MAX_INFLIGHT": str(threads),
                 "VIDEO_INGEST_BATCH_SIZE": str(len(names)), "VIDEO_INGEST_SLOT_LIMIT": "bench-items"}
    started = time.monotonic()
    done = subprocess.run([*python_command(python, child_env), "-m", "video_ingest.cli", "run", "--ids-file", str(ids),
                           "--json"], env=child_env, capture_output=True, text=True, timeout=3600)
    elapsed = time.monotonic() - started
    summary = last_json_line(done.stdout)
    if done.returncode != 0 or summary.get("succeeded") != len(names):
        raise RuntimeError(f"ours: exit {done.returncode}, {summary}: {done.stderr[-2000:]}")
    return elapsed


def items_span(api_url: str, count: int) -> float:
    """Seconds from the first item's task run starting to the last one ending."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from video_ingest.prefect_api.observer import read_task_runs_named, task_run_intervals

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        intervals = task_run_intervals(read_task_runs_named(client, "bench-", expected=count))
    if len(intervals) != count:
        raise RuntimeError(f"ours: {len(intervals)} of {count} task runs recorded with a start and an end")
    return (max(end for _, end in intervals) - min(start for start, _ in intervals)).total_seconds()


def with_cpu(run, own_counted: bool):
    """`run()`'s result, and the CPU seconds each role spent while it ran (bench/cpu_usage.py).
    The variant's own process, a child of this one, is `own` when `own_counted` (on this
    machine's Python; in an image's container it is not our child)."""
    before, children = snapshot(), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = run()
    cpu = spent(before, snapshot())
    cpu["available"] = (time.monotonic() - started) * (os.cpu_count() or 1)
    if own_counted:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["own"] = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return result, cpu


def describe_cpu(cpu: dict[str, float]) -> str:
    roles = [role for role in ("own", "prefect server", "postgres", "s3", "this process") if role in cpu]
    shown = ", ".join(f"{'HTTP source (this process)' if role == 'this process' else role} {cpu[role]:.1f}"
                      for role in roles)
    # What the machine spent beyond these: other processes (a kind node left running, a
    # build), and in an image's container the variant itself.
    others = max(0.0, cpu["machine"] - sum(cpu[role] for role in roles))
    return (f"  CPU s: {shown}; anything else {others:.1f}; machine busy {cpu['machine']:.1f}"
            f" of {cpu['available']:.1f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="video-ingest-bytes-bench-"))
    workdir.chmod(0o755)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.videos import serving

    store = SeaweedS3(find_weed(args.weed), workdir / "weed")
    held = contextlib.ExitStack()
    cpus = os.sched_getaffinity(0)
    if args.server_core:
        try:
            server_cpus, cpus = split_cpus(cpus)
        except PinningError as exc:
            print(f"bytes_bench: {exc}", file=sys.stderr)
            return 2
        # This process and all it starts from now on (the S3 store, the HTTP source, both
        # variants) on the data plane's CPUs; the server's processes are moved once running.
        pin_process(Path("/proc") / str(os.getpid()), cpus)
    try:
        names, size = make_sources(workdir / "sources", args.videos, args.mb)
        total_mb = size * len(names) / 1_000_000
        store.start()
        make_bucket(store)
        env = {**os.environ, **s3_env(store)}
        os.environ.update(s3_env(store))
        python = ImagePython(args.python_image, workdir) if args.python_image else None
        server = held.enter_context(running_server(LAYOUTS[args.layout], workdir / "server", python))
        placement = f"all on CPUs {_cpu_list(cpus)}"
        if args.server_core:
            pin_roles(SERVER_ROLES, server_cpus, among=descendants(os.getpid()))
            placement = f"Prefect server and PostgreSQL on CPU {_cpu_list(server_cpus)}, the rest on {_cpu_list(cpus)}"
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: server.url}), get_client(sync_client=True) as client:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="bench-items", limit=200))
        print(f"# {len(names)} videos of {size / 1e6:.2f} MB ({total_mb:.0f} MB), {args.threads} threads,"
              f" HTTP and S3 (SeaweedFS) on loopback; server {args.layout}: {LAYOUTS[args.layout].describe()};"
              f" Python {python.version() if python else platform.python_version()}"
              f" from {args.python_image or 'this interpreter'}; {placement}; work in {workdir}", flush=True)
        with serving(workdir / "sources") as base:
            (plain, plain_items), plain_cpu = with_cpu(
                lambda: run_plain(names, base, f"s3://{BUCKET}/plain", args.threads, env, workdir, python),
                own_counted=python is None)
            print(f"plain  {plain:7.1f} s  {total_mb / plain:7.1f} MB/s  {len(names) / plain:6.1f} items/s"
                  f"  (its items: {plain_items:.1f} s, {total_mb / plain_items:.1f} MB/s)", flush=True)
            print(describe_cpu(plain_cpu), flush=True)
            ours, ours_cpu = with_cpu(
                lambda: run_ours(names, base, f"s3://{BUCKET}/ours", args.threads, server.url, env, workdir, python),
                own_counted=python is None)
            span = items_span(server.url, len(names))  # read after: its reads are not the run's CPU
            print(f"ours   {ours:7.1f} s  {total_mb / ours:7.1f} MB/s  {len(names) / ours:6.1f} items/s"
                  f"  (its items: {span:.1f} s, {total_mb / span:.1f} MB/s)", flush=True)
            print(describe_cpu(ours_cpu), flush=True)
    finally:
        held.close()
        store.stop()
        # Each run stores every item twice (2 GB per variant at 2000 items of 1 MB): drop the
        # bytes, keep the logs.
        for bulk in (workdir / "sources", store.workdir):
            shutil.rmtree(bulk, ignore_errors=True)
    server_ms = 1000 * (ours_cpu.get("prefect server", 0.0) + ours_cpu.get("postgres", 0.0)) / len(names)
    print(f"ratio_vs_plain={plain / ours:.2f} mb_per_s={total_mb / ours:.1f} plain_mb_per_s={total_mb / plain:.1f}"
          f" items_ratio_vs_plain={plain_items / span:.2f} ours_outside_items_s={ours - span:.1f}"
          f" plain_outside_items_s={plain - plain_items:.1f}"
          f" server_cpu_ms_per_item={server_ms:.1f} server_core={int(args.server_core)}")
    return 0


def _cpu_list(cpus: set[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


if __name__ == "__main__":
    sys.exit(main())
