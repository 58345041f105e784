"""Fixtures of the chart tier (marker `chart`); the helpers are in rendering.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .rendering import VALUE_SETS, render


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml registers the marker too; this lets the folder run alone.
    config.addinivalue_line("markers", "chart: renders the Helm chart with a real helm binary")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.chart)


@pytest.fixture(scope="session")
def rendered_sets() -> dict[str, list[dict]]:
    """Every values set, rendered once."""
    return {name: render(*args) for name, args in VALUE_SETS.items()}
