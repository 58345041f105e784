"""The package's three parts import one way only: cli -> platform -> ingestion ->
prefect_api, with settings below them all. Read from the source (ast), so an import
hidden inside a function counts too."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "video_ingest"
# Each part, with the parts it may import (settings is open to all).
MAY_IMPORT = {
    "settings": set(),
    "prefect_api": {"prefect_api", "settings"},
    "ingestion": {"ingestion", "prefect_api", "settings"},
    "platform": {"platform", "ingestion", "prefect_api", "settings"},
    "cli": {"platform", "ingestion", "prefect_api", "settings"},
}


def part_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("video_ingest"):
            names = [node.module] if node.module != "video_ingest" else [f"video_ingest.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("video_ingest.")]
        else:
            continue
        parts |= {name.split(".")[1] for name in names if "." in name}
    return parts


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if part_of(p) != "__init__")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_its_own_part_and_the_parts_below_it(path):
    part = part_of(path)
    assert part in MAY_IMPORT, f"{path.name}: a module outside the three parts, cli and settings"
    assert imported_parts(path) <= MAY_IMPORT[part]


def test_the_layer_check_sees_an_import_that_runs_back_up(tmp_path):
    backwards = tmp_path / "backwards.py"
    backwards.write_text("def f():\n    from video_ingest.platform.reconcile import apply\n")
    assert imported_parts(backwards) == {"platform"}
