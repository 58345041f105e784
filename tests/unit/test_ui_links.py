"""The Prefect UI links that `submit` and `status` print: where Prefect itself would link."""

from video_ingest.platform.status import format_status
from video_ingest.prefect_api.ui_links import flow_run_url, run_link_line, run_links, ui_url

RUN_ID = "5b0c64f5-3f0e-4d43-8d8a-6f1f1b7f0a11"


def test_ui_link_is_the_server_beside_the_api_when_no_ui_url_is_set(monkeypatch):
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    assert ui_url("http://127.0.0.1:4200/api") == "http://127.0.0.1:4200"
    assert flow_run_url("http://127.0.0.1:4200/api", RUN_ID) == f"http://127.0.0.1:4200/runs/flow-run/{RUN_ID}"


def test_prefect_ui_url_setting_wins_over_the_api_address(monkeypatch):
    monkeypatch.setenv("PREFECT_UI_URL", "https://prefect.example.org/ui/")
    assert ui_url("http://10.0.0.7:4200/api") == "https://prefect.example.org/ui"
    assert flow_run_url("http://10.0.0.7:4200/api", RUN_ID) == f"https://prefect.example.org/ui/runs/flow-run/{RUN_ID}"


def test_an_embedded_server_gets_no_link(monkeypatch):
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    assert ui_url(None) is None and flow_run_url(None, RUN_ID) is None


def test_run_links_reads_back_the_pages_the_cli_lines_name_and_nothing_else():
    first, second = f"http://127.0.0.1:4200/runs/flow-run/{RUN_ID}", "https://ui.example.org/runs/flow-run/x"
    stderr = "\n".join([
        "video-ingest: 3 items in 1 batch",
        run_link_line("wild-octopus", first),
        "progress: 2/3 done",
        run_link_line("calm-heron", second),
    ])
    assert run_link_line("wild-octopus", first) == f"video-ingest: bulk run wild-octopus in the Prefect UI: {first}"
    assert run_links(stderr) == [first, second]
    assert run_links("video-ingest: 3 items in 1 batch\n") == []


def test_status_text_names_the_ui_and_links_each_run_in_flight():
    link = f"http://127.0.0.1:4200/runs/flow-run/{RUN_ID}"
    report = {
        "api_url": "http://127.0.0.1:4200/api", "ui_url": "http://127.0.0.1:4200",
        "work_pool": {"name": "video-ingest", "type": "kubernetes", "status": "READY", "concurrency_limit": 2},
        "runs_in_flight": {"Running": 1},
        "runs": [{"id": "b1", "name": "fox-batch-0000", "state": "Running", "ui_url": f"{link}-b1"}],
        "bulk_runs": [{"id": RUN_ID, "name": "fox", "state": "Running", "ui_url": link},
                      {"id": "no-ui", "name": "owl", "state": "Scheduled", "ui_url": None}],
    }
    lines = format_status(report).splitlines()
    assert lines[1] == "Prefect UI: http://127.0.0.1:4200"
    assert f"    fox-batch-0000 (Running): {link}-b1" in lines
    bulk = lines.index("bulk runs in flight:")
    assert lines[bulk + 1:bulk + 3] == [f"  fox (Running): {link}", "  owl (Scheduled): no-ui"]
