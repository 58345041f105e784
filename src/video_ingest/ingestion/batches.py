"""Splitting a list of items into batches. Pure."""

from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def split_batches(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive batches of at most `size` items, in order; none empty."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


# Prefect refuses a flow run whose parameters serialize to 512 KB or more; a batch
# run's IDs and sources stay well below it, with room for its other parameters.
PARAMETER_BUDGET = 400_000
