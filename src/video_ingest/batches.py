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


def parameters_size(ids: Sequence[str], sources: dict[str, str]) -> int:
    """Bytes of the `items` and `sources` parameters as JSON, give or take a few. Pure."""
    size = lambda text: len(text.encode()) + 4  # noqa: E731  quoted, and a separator
    return sum(size(i) for i in ids) + sum(size(i) + size(sources[i]) for i in ids if i in sources)


def within_parameter_budget(batches: list[list[str]], sources: dict[str, str],
                            budget: int = PARAMETER_BUDGET) -> list[list[str]]:
    """`batches`, each one too big for a run's parameters halved until it fits, in order. Pure."""
    fitted: list[list[str]] = []
    pending = list(reversed(batches))
    while pending:
        batch = pending.pop()
        if len(batch) > 1 and parameters_size(batch, sources) > budget:
            half = len(batch) // 2
            pending += [batch[half:], batch[:half]]
        else:
            fitted.append(batch)
    return fitted
