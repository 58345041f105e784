"""Bad input stops the CLI before any server is contacted: exit 2 and one line."""

import pytest

from video_ingest.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_missing_ids_file_exits_2_with_one_line(capsys, tmp_path):
    code, err = run_cli(capsys, "run", "--ids-file", str(tmp_path / "missing.txt"), "--handler", "synthetic")
    assert code == 2
    assert err == [f"video-ingest: error: {tmp_path / 'missing.txt'}: no such file"]


def test_empty_ids_file_exits_2(capsys, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n\n")
    code, err = run_cli(capsys, "run", "--ids-file", str(path), "--handler", "synthetic")
    assert code == 2 and "no video IDs" in err[-1]


def test_unknown_handler_exits_2(capsys, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("a\n")
    code, err = run_cli(capsys, "run", "--ids-file", str(path), "--handler", "nope")
    assert code == 2 and "unknown handler 'nope'" in err[-1]


def test_bad_synthetic_directive_exits_2_before_running(capsys, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("a\nb#explode\n")
    code, err = run_cli(capsys, "run", "--ids-file", str(path), "--handler", "synthetic")
    assert code == 2 and "b#explode" in err[-1]


def test_negative_window_exits_2(capsys, tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("a\n")
    code, err = run_cli(capsys, "run", "--ids-file", str(path), "--handler", "synthetic", "--max-inflight", "0")
    assert code == 2 and "max_inflight" in err[-1]


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run"])
    assert exit_info.value.code == 2


def test_bad_config_exits_2_naming_the_key(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("workPool: {name: p, concurrencyLimit: -1}\n")
    code, err = run_cli(capsys, "apply", "--config", str(path))
    assert code == 2 and "workPool.concurrencyLimit" in err[-1]


def test_unreachable_api_exits_2_with_the_url(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    path = tmp_path / "c.yaml"
    path.write_text("workPool: {name: p}\n")
    code, err = run_cli(capsys, "apply", "--config", str(path))
    assert code == 2 and err == [err[0]] and "http://127.0.0.1:9/api" in err[0] and "unreachable" in err[0]


def test_detached_submission_too_big_for_a_runs_parameters_exits_2_saying_what_to_do(capsys, tmp_path, monkeypatch):
    # No server is contacted (the API URL answers nothing): the size is checked first.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"video-{n:08d}\n" for n in range(40_000)))
    code, err = run_cli(capsys, "submit", "--ids-file", str(path), "--detach")
    assert code == 2 and err == [err[0]], err
    assert "512 KB" in err[0] and "without --detach" in err[0]
