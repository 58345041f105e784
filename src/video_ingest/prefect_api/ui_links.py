"""Links into the Prefect UI for the runs our commands talk about.

The UI's address is Prefect's own setting, `PREFECT_UI_URL`, which Prefect derives
from the API URL when it is unset (`http://host:4200/api` gives `http://host:4200`;
Prefect Cloud's `api.` host gives its `app.` host). Prefect reads that setting and
builds the link (`prefect.utilities.urls.url_for`), so a UI behind another address
(a proxy, an ingress) is linked exactly as Prefect's own logs link it.

An embedded server (no API URL) gets no link: it serves no UI and is gone when the
command ends.

The CLI names each run it starts on stderr in one line, `run_link_line`; `run_links`
reads the pages back out of such output (what a script or a test following a run
does).
"""

from __future__ import annotations

from uuid import UUID

RUN_LINK_MARK = " in the Prefect UI: "


def ui_url(api_url: str | None) -> str | None:
    """The Prefect UI's base URL for the API at `api_url`, or None."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    if not api_url:
        return None
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        base = PREFECT_UI_URL.value()
    return base.rstrip("/") if base else None


def flow_run_url(api_url: str | None, flow_run_id: str | UUID) -> str | None:
    """The UI page of one flow run (`<ui>/runs/flow-run/<id>`), or None."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.utilities.urls import url_for

    if not api_url:
        return None
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return url_for("flow-run", obj_id=str(flow_run_id))


def run_link_line(name: str, link: str) -> str:
    """The line the CLI prints on stderr for a run it started: its name and its page."""
    return f"video-ingest: bulk run {name}{RUN_LINK_MARK}{link}"


def run_links(text: str) -> list[str]:
    """The run pages named by `run_link_line` lines in `text`, in order. Pure."""
    return [line.split(RUN_LINK_MARK, 1)[1] for line in text.splitlines() if RUN_LINK_MARK in line]
