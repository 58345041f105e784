"""`video-ingest`: a thin shell over the library functions in ingest, reconcile and status.

Exit codes: 0 every item succeeded (or the command did what it was asked), 1 some
items failed, 2 bad input (ID file, config, settings, unreachable API) with one
clear line on stderr and nothing started, 3 `apply --exit-code` found the server
differing from the config (drift).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path

EXIT_OK, EXIT_ITEMS_FAILED, EXIT_BAD_INPUT, EXIT_DRIFT = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from video_ingest.ingestion.manifest import ManifestError
    from video_ingest.platform.config import ConfigError
    from video_ingest.platform.reconcile import ApplyError
    from video_ingest.prefect_api.connection import ApiUnreachable
    from video_ingest.settings import SettingsError

    return (UsageError, ManifestError, ConfigError, ApiUnreachable, SettingsError, ApplyError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="video-ingest", description="Bulk video ingestion on Prefect 3.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Prefect's logs")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_ingest_options(sub: argparse.ArgumentParser) -> None:
        source = sub.add_mutually_exclusive_group(required=True)
        source.add_argument("--ids-file", type=Path, help="IDs: plain text, .jsonl or .csv")
        source.add_argument("--demo", type=int, metavar="N", help="N synthetic demo IDs (implies --handler synthetic)")
        sub.add_argument("--max-inflight", type=int, metavar="W", help="task runs in flight per batch")
        sub.add_argument("--retries", type=int, metavar="R")
        sub.add_argument("--retry-delay", type=float, metavar="S", help="first retry delay; doubles per retry")
        sub.add_argument("--handler", help="fetch (default) or synthetic")
        sub.add_argument("--batch-size", type=int, metavar="N")
        sub.add_argument("--failed-out", type=Path, metavar="FILE", help="write the failed IDs here, one per line")
        sub.add_argument("--json", action="store_true", help="print the summary as JSON, last line of stdout")

    run = commands.add_parser("run", help="ingest a list of videos (embedded server unless PREFECT_API_URL is set)")
    add_ingest_options(run)

    submit = commands.add_parser("submit", help="ingest on the cluster: each batch a Kubernetes Job")
    add_ingest_options(submit)
    submit.add_argument("--detach", action="store_true", help="start the bulk deployment and return its run ID")
    submit.add_argument("--deployment", default="bulk-video-ingest/bulk-video-ingest", help="bulk deployment (with --detach)")

    apply = commands.add_parser("apply", help="reconcile pool, queues, limits and deployments from a config file")
    apply.add_argument("--config", type=Path, required=True)
    apply.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    apply.add_argument("--exit-code", action="store_true",
                       help=f"exit {EXIT_DRIFT} when the server differed from the config (with --dry-run: a drift check)")

    reap = commands.add_parser("reap-jobs", help="beside the worker: delete the Jobs of batch runs given up"
                               " before their pod started (runs until stopped)")
    reap.add_argument("--namespace", required=True, help="namespace of the flow-run Jobs")
    reap.add_argument("--selector", required=True, help="label selector of our flow-run Jobs")
    reap.add_argument("--every", type=float, default=30.0, help="seconds between passes")
    reap.add_argument("--heartbeat", type=Path, help="file touched after every pass (for probes)")

    worker = commands.add_parser("worker", help="Prefect's Kubernetes worker for a pool, reading the pool's job"
                                 " template again before it starts runs (runs until stopped)")
    worker.add_argument("--pool", required=True, help="work pool name")
    worker.add_argument("--name", help="worker name (default: Prefect's)")

    status = commands.add_parser("status", help="pool, limits, slots in use and runs in flight")
    status.add_argument("--config", type=Path, help="platform config naming the pool and limits")
    status.add_argument("--pool", help="work pool name (default: from --config, else video-ingest)")
    status.add_argument("--json", action="store_true")
    return parser


class ProgressReporter:
    """Item progress on stderr: a live bar on a terminal, a line every few seconds otherwise."""

    def __init__(self, total: int, stream=sys.stderr, interval: float = 5.0):
        self.total, self.stream, self.interval = total, stream, interval
        self.done = self.failed = 0
        self._lock = threading.Lock()
        self._last = 0.0
        self._tty = stream.isatty()
        self._started: float | None = None
        self.reasons: dict[str, str] = {}  # failed item -> why (the newest outcome's detail)

    def __call__(self, outcome) -> None:
        with self._lock:
            now = time.monotonic()
            if self._started is None:
                self._started = now
            self.done += 1
            self.failed += 0 if outcome.ok else 1
            if not outcome.ok:
                self.reasons[outcome.id] = failure_reason(outcome)
            if self._tty or now - self._last >= self.interval or self.done == self.total:
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        elapsed = now - (self._started or now)
        rate = f", {(self.done - 1) / elapsed:.1f}/s" if elapsed > 0 and self.done > 1 else ""
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} items, {self.failed} failed{rate}"
        if self._tty:
            self.stream.write("\r" + line + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _quiet_prefect(debug: bool) -> None:
    """Keep Prefect's per-run console logs off the terminal (they still go to the API)."""
    if debug:
        return
    import prefect.main  # noqa: F401  (configures Prefect's logging, which we then adjust)
    from prefect.logging.handlers import PrefectConsoleHandler

    for name in ["", "prefect", "prefect.flow_runs", "prefect.task_runs"]:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.CRITICAL)


def _chosen(args: argparse.Namespace):
    """The batch options set on the command line, and only those (a BatchOptions)."""
    from video_ingest.ingestion.handlers import handler_names
    from video_ingest.ingestion.request import BatchOptions

    handler = args.handler or ("synthetic" if args.demo is not None else None)
    if handler is not None and handler not in handler_names():
        raise UsageError(f"--handler: unknown handler {handler!r} (known: {', '.join(handler_names())})")
    return BatchOptions(**{name: getattr(args, name) for name in BatchOptions.names() if name != "handler"},
                        handler=handler)


def _ingest_settings(chosen):
    """Local settings with the command line's options; bad flag values fail here."""
    from video_ingest.settings import load_settings

    return load_settings(**chosen.chosen())


def _request(args: argparse.Namespace, chosen):
    """The submission: the ID file's items (or the demo's) with the options chosen."""
    from video_ingest.ingestion.request import IngestRequest

    return IngestRequest.of(_manifest(args).items, chosen)


def _manifest(args: argparse.Namespace):
    from video_ingest.ingestion.manifest import read_manifest
    from video_ingest.ingestion.submission import demo_manifest

    manifest = demo_manifest(args.demo) if args.demo is not None else read_manifest(args.ids_file)
    if manifest.duplicates:
        unique = sorted(set(manifest.duplicates))
        print(
            f"video-ingest: note: {len(manifest.duplicates)} duplicate line(s) ignored, each ID runs once"
            f" (e.g. {', '.join(unique[:3])})",
            file=sys.stderr,
        )
    return manifest


REASONS_SHOWN = 20


def failure_reason(outcome) -> str:
    """'Failed after 3 attempts: <why>' for a failed item's outcome. Pure."""
    runs = f" after {outcome.attempts} attempt{'s' if outcome.attempts != 1 else ''}" if outcome.attempts else ""
    return f"{outcome.state}{runs}: {outcome.detail}" if outcome.detail else f"{outcome.state}{runs}"


def _report(summary, args: argparse.Namespace, reasons: dict[str, str] | None = None) -> int:
    if args.failed_out:
        args.failed_out.write_text("".join(f"{item_id}\n" for item_id in summary.failed_ids))
    print(
        f"video-ingest: {summary.total} items: {summary.succeeded} succeeded"
        f" ({summary.skipped} already ingested), {summary.failed} failed",
        file=sys.stderr,
    )
    # Why, for the first failures (all of them are in the run's outcome artifacts).
    for item_id in summary.failed_ids[:REASONS_SHOWN]:
        print(f"video-ingest: failed {item_id}: {(reasons or {}).get(item_id, 'no outcome recorded')}",
              file=sys.stderr)
    if summary.failed > REASONS_SHOWN:
        print(f"video-ingest: ... and {summary.failed - REASONS_SHOWN} more (see the run's artifacts in the UI)",
              file=sys.stderr)
    if summary.failed_ids and not args.json:
        shown = summary.failed_ids[:50]
        print("failed IDs: " + " ".join(shown) + (" ..." if summary.failed > 50 else ""))
    if args.json:
        print(json.dumps(summary.to_json()))
    return EXIT_ITEMS_FAILED if summary.failed else EXIT_OK


def cmd_run(args: argparse.Namespace, on_cluster: bool = False) -> int:
    from video_ingest.ingestion.submission import run

    chosen = _chosen(args)
    settings = _ingest_settings(chosen)
    if on_cluster and not settings.prefect_api_url:
        raise UsageError("submit runs batches on the cluster: set PREFECT_API_URL to its Prefect API")
    request = _request(args, chosen)
    if args.failed_out and not args.failed_out.parent.exists():
        raise UsageError(f"--failed-out: folder {args.failed_out.parent} does not exist")
    _quiet_prefect(args.debug)
    progress = ProgressReporter(len(request.items))
    result = run(request, settings, on_cluster=on_cluster, on_outcome=progress,
                 on_start=lambda flow_run_id, name: _print_run_link(settings, flow_run_id, name))
    return _report(result.summary, args, progress.reasons)


def _print_run_link(settings, flow_run_id: str, name: str) -> str | None:
    """The run's page in the Prefect UI, on stderr (stdout stays the summary), or None."""
    from video_ingest.prefect_api.ui_links import flow_run_url, run_link_line

    link = flow_run_url(settings.prefect_api_url, flow_run_id)
    if link:
        print(run_link_line(name, link), file=sys.stderr, flush=True)
    return link


def cmd_submit(args: argparse.Namespace) -> int:
    """Only what the command line sets is sent; the cluster's `ingest.*` values supply the rest."""
    from video_ingest.ingestion.submission import submit_detached

    if not args.detach:
        return cmd_run(args, on_cluster=True)
    chosen = _chosen(args)
    settings = _ingest_settings(chosen)
    flow_run_id = submit_detached(_request(args, chosen), settings, args.deployment)
    print(f"video-ingest: started bulk run {flow_run_id}", file=sys.stderr)
    link = _print_run_link(settings, flow_run_id, flow_run_id)
    print(json.dumps({"flow_run_id": flow_run_id, "ui_url": link}) if args.json else flow_run_id)
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from video_ingest.platform.config import load_config
    from video_ingest.platform.reconcile import apply
    from video_ingest.settings import load_settings

    config = load_config(args.config)
    settings = load_settings()
    verb = "would change" if args.dry_run else "changed"
    changes = apply(config, settings, dry_run=args.dry_run, on_change=lambda c: print(f"{verb}: {c}", flush=True))
    if not changes:
        print("video-ingest apply: nothing to change, the server matches the config")
        return EXIT_OK
    return EXIT_DRIFT if args.exit_code else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from video_ingest.platform.config import load_config
    from video_ingest.platform.status import format_status, read_status
    from video_ingest.settings import load_settings

    config = load_config(args.config) if args.config else None
    settings = load_settings()
    report = read_status(settings, config=config, pool=args.pool)
    print(json.dumps(report, indent=2, default=str) if args.json else format_status(report))
    return EXIT_OK


def cmd_reap_jobs(args: argparse.Namespace) -> int:
    from video_ingest.platform.job_reaper import run_forever

    if args.every <= 0:
        raise UsageError("--every must be more than 0 seconds")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call otherwise
    run_forever(args.namespace, args.selector, args.every, args.heartbeat)
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from video_ingest.platform.worker import start

    start(args.pool, args.name)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)  # argparse exits 2 on a usage error
    commands = {"run": cmd_run, "submit": cmd_submit, "apply": cmd_apply, "status": cmd_status,
                "reap-jobs": cmd_reap_jobs, "worker": cmd_worker}
    try:
        return commands[args.command](args)
    except _user_errors() as exc:
        if args.debug:
            raise
        print(f"video-ingest: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("video-ingest: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
