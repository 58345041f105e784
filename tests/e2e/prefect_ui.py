"""The Prefect UI in a real headless browser: what an operator sees of a bulk run.

Debian's Chromium (`apt-get install chromium`; Playwright's own browser download
needs a CDN this machine does not reach), driven by Playwright. `PrefectUI` opens a
page, logs in when the server asks for an auth string (the UI's login page, shown
when the API requires `PREFECT_SERVER_API_AUTH_STRING`), and reads what a person
reads: a flow run's subflow runs (the batches), its task runs (one per video, named
after its ID) with their final states, and a batch's outcome table artifact.
The test saves screenshots of what it read; `make ui-screenshots` publishes two of
them, smaller, for the README (`python tests/e2e/prefect_ui.py SCREENSHOTS DOCS`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# As this machine runs Chromium headless: no sandbox as root, and nothing that
# calls Google's services (the closed network refuses them, many at a time).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
WAIT_MS = 60_000
SETTLE_MS = 15_000
# The screenshots CI keeps: $VIDEO_INGEST_ARTIFACTS, else e2e-artifacts/ (git-ignored).
ARTIFACTS = Path(os.environ.get("VIDEO_INGEST_ARTIFACTS") or REPO_ROOT / "e2e-artifacts")
SCREENSHOTS = ARTIFACTS / "prefect-ui"
OUTCOME_TABLE = "one row per item"  # the start of the batch table artifact's description (flows._publish)
LOGIN_INPUT = "input[placeholder='admin:pass']"  # Prefect's Unauthenticated page


class UiCheckFailed(AssertionError):
    """The UI did not show what it should; the message says what, and where the screenshot is."""


def login_auth_string(kubectl, secret: str, key: str = "auth-string") -> str | None:
    """What to type into the login page: $PREFECT_API_AUTH_STRING (the e2e's release
    fixture exports it), else the value in the release's Secret, else None (no auth)."""
    if os.environ.get("PREFECT_API_AUTH_STRING"):
        return os.environ["PREFECT_API_AUTH_STRING"]
    encoded = kubectl("get", "secret", secret, "-o", f"jsonpath={{.data.{key}}}", check=False)
    return base64.b64decode(encoded).decode() if encoded.strip() else None


@contextlib.contextmanager
def prefect_ui(auth: str | None = None, screenshots: Path = SCREENSHOTS) -> Iterator[PrefectUI]:
    """A headless Chromium with one page on the Prefect UI."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise UiCheckFailed(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    screenshots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:  # launch() starts Chromium on a new, empty profile
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(WAIT_MS)
            ui = PrefectUI(page, auth, screenshots)
            try:
                yield ui
            except BaseException:
                ui.screenshot("failure")  # what the page showed when a check failed
                raise
        finally:
            browser.close()


class PrefectUI:
    def __init__(self, page, auth: str | None, screenshots: Path):
        self.page, self.auth, self.screenshots = page, auth, screenshots
        self.logged_in = False
        self._requests_in_flight = 0  # the page's own, for _settle
        page.on("request", lambda request: self._count_request(+1))
        page.on("requestfinished", lambda request: self._count_request(-1))
        page.on("requestfailed", lambda request: self._count_request(-1))

    def _count_request(self, change: int) -> None:
        self._requests_in_flight = max(0, self._requests_in_flight + change)

    def _settle(self, quiet_ms: int = 1000) -> None:
        """Wait until the page has had no request in flight for `quiet_ms` (at most SETTLE_MS):
        a page shows its timeline and logs only after the API calls behind them returned.
        (Playwright's "networkidle" covers a document's first load, not a click inside the app.)"""
        quiet, waited = 0, 0
        while quiet < quiet_ms and waited < SETTLE_MS:
            self.page.wait_for_timeout(100)  # events are delivered while the sync API waits
            waited += 100
            quiet = quiet + 100 if self._requests_in_flight == 0 else 0

    # --- pages ------------------------------------------------------------------

    def open(self, url: str, name: str) -> None:
        """Open the page of the flow run or task run `name`, through the login page if the
        server asks for one. The page counts as open once it names the run: only data the
        API gave out shows the name."""
        self.page.goto(url)
        shown = self._crumb(name)
        login = self.page.locator(LOGIN_INPUT)
        refused = self.page.get_by_text("Authentication failed.")
        self._wait(shown.or_(login).or_(refused).first, f"neither run {name} nor a login page appeared")
        if not shown.is_visible():
            self._log_in(url)
            self._wait(shown, f"run {name} did not appear after logging in (is the auth string right?)")
            self.page.goto(url)  # again, without the notices the refused calls left on the page
            self._wait(shown, f"run {name} did not appear once logged in")

    def _log_in(self, url: str) -> None:
        """Type the auth string into Prefect's login page (the UI's Unauthenticated page).

        A deep link that the API refuses can land on the UI's root with an
        "Authentication failed." notice instead of the login page: then the login page
        is asked for, with the page to come back to."""
        if not self.auth:
            self._fail("the UI asks for an auth string: set PREFECT_API_AUTH_STRING")
        login = self.page.locator(LOGIN_INPUT)
        if not login.is_visible():
            parts = urlsplit(url)
            back = parts.path + (f"?{parts.query}" if parts.query else "")
            self.page.goto(f"{parts.scheme}://{parts.netloc}/login?redirect={quote(back, safe='/')}")
            self._wait(login, "the UI refused us but showed no login page")
        login.fill(self.auth)
        self.page.get_by_role("button", name="Login").click()
        self.logged_in = True

    def open_batch(self, name: str) -> None:
        """From a bulk run's page, open one of its batches (a subflow run) by name."""
        self.tab("subflow-runs")
        row = self._row("subflow-runs", "flow-run-list-item", ".flow-run-bread-crumbs__flow-run-link", name)
        row.locator(".flow-run-bread-crumbs__flow-run-link").click()
        self._wait(self._crumb(name), f"batch {name}'s page did not open")
        self._wait(self.page.locator("li.p-tab#task-runs"), f"batch {name}'s page has no Task Runs tab")

    def open_task_run(self, name: str) -> None:
        """From a batch's page, open the task run of one item."""
        self.tab("task-runs")
        self._row("task-runs", "task-run-list-item", "a.p-link", name).locator("a.p-link").click()
        self.page.wait_for_url(re.compile(r"/runs/task-run/"))
        self._wait(self._crumb(name), f"task run {name}'s page did not open")

    def tab(self, tab_id: str) -> None:
        self.page.locator(f"li.p-tab#{tab_id}").click()
        self._wait(self.page.locator(f"#{tab_id}-content"), f"tab {tab_id} did not open")

    # --- what a person reads ------------------------------------------------------

    def batch_count(self) -> int:
        """How many batches a bulk run's Subflow Runs tab counts ("6 Flow runs")."""
        return self._count("subflow-runs", "flow-run-list-item", "Flow run")

    def batch_state(self, name: str) -> str:
        """The state a bulk run's Subflow Runs tab shows for one batch (found by name)."""
        self.tab("subflow-runs")
        row = self._row("subflow-runs", "flow-run-list-item", ".flow-run-bread-crumbs__flow-run-link", name)
        return row.locator(".state-badge").inner_text().strip()

    def task_run_state(self, name: str) -> str:
        """The state a batch's Task Runs tab shows for the item's task run (found by name)."""
        self.tab("task-runs")
        row = self._row("task-runs", "task-run-list-item", "a.p-link", name)
        return row.locator(".state-badge").inner_text().strip()

    def task_run_header(self) -> dict[str, str]:
        """On a task run's page: its state badge and its run count (the sidebar's "Run Count")."""
        badge = self.page.locator(".state-badge").first.inner_text().strip()
        count = self.page.locator(".p-key-value").filter(
            has=self.page.locator(".p-key-value__label").get_by_text("Run Count", exact=True))
        return {"state": badge, "run_count": count.locator(".p-key-value__value").first.inner_text().strip()}

    def outcome_table(self) -> list[dict[str, str]]:
        """On a batch's page: its outcome table artifact, opened and read row by row."""
        self.tab("artifacts")
        card = self.page.locator("#artifacts-content a", has_text=OUTCOME_TABLE)
        self._wait(card.first, "the batch has no outcome table artifact")
        card.first.click()
        table = self.page.locator("table").first
        self._wait(table.locator("tbody tr").first, "the outcome table artifact shows no rows")
        header = [cell.strip() for cell in table.locator("thead th").all_inner_texts()]
        rows = []
        for row in table.locator("tbody tr").all():
            rows.append(dict(zip(header, (cell.strip() for cell in row.locator("td").all_inner_texts()))))
        return rows

    def screenshot(self, name: str) -> Path:
        """The page as it is once its requests have settled (the timeline and the logs load last)."""
        self._settle()
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    # --- helpers ----------------------------------------------------------------------

    def _count(self, tab_id: str, item_class: str, noun: str) -> int:
        """A tab's count of its list ("6 Flow runs"), read once the list has loaded: the
        count shows 0 until the API answered."""
        self.tab(tab_id)
        content = self.page.locator(f"#{tab_id}-content")
        self._wait(content.locator(f".{item_class}").first, f"tab {tab_id} lists no {noun}")
        self._settle()
        label = content.get_by_text(re.compile(rf"^\d+ {noun}s?$"))
        self._wait(label.first, f"tab {tab_id} shows no count of {noun}s")
        return int(label.first.inner_text().split()[0])

    def _row(self, tab_id: str, item_class: str, name_selector: str, name: str):
        """The row of a tab's list whose name is exactly `name`, after searching the list for it."""
        content = self.page.locator(f"#{tab_id}-content")
        content.get_by_placeholder("Search by run name").fill(name)
        row = content.locator(f".{item_class}").filter(
            has=self.page.locator(name_selector).get_by_text(name, exact=True))
        self._wait(row.first, f"no {item_class} named {name!r}")
        return row.first

    def _crumb(self, name: str):
        """The page heading's last breadcrumb: the name of the run the page shows."""
        return self.page.locator(".p-bread-crumbs__crumb").last.get_by_text(name, exact=True)

    def _wait(self, locator, problem: str) -> None:
        from playwright.sync_api import Error

        try:
            locator.wait_for(state="visible")
        except Error:
            self._fail(problem)

    def _fail(self, problem: str) -> None:
        shot = self.screenshot("failure")
        raise UiCheckFailed(f"{problem} (at {self.page.url}; screenshot {shot})")


# The screenshots the README shows: the test's name for each -> the file in docs/.
README_SCREENSHOTS = {"bulk-run": "prefect-ui-bulk-run.png", "item-task-run": "prefect-ui-item-task-run.png"}


def publish(screenshots: Path, docs: Path, colors: int = 128) -> list[Path]:
    """Copy the README's screenshots into `docs`, in `colors` colours (about a third of the bytes)."""
    from PIL import Image

    docs.mkdir(parents=True, exist_ok=True)
    written = []
    for name, published in README_SCREENSHOTS.items():
        image = Image.open(screenshots / f"{name}.png").convert("RGB")
        image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        image.save(docs / published, optimize=True)
        written.append(docs / published)
    return written


if __name__ == "__main__":
    for path in publish(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"{path} ({path.stat().st_size // 1024} KiB)")
