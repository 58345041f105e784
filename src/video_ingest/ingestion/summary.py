"""Per-item outcomes and the summaries built from them. Pure.

An item counts as succeeded only when its task run's final state is Completed;
anything else (Failed, Crashed, Cancelled, or a run that never reached a final
state) counts as failed and is named. Outcomes are keyed by item ID, so an item
re-run after a crashed batch replaces its earlier outcome instead of being
counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

# Final states that say nothing about the item itself: its process or the API went
# away (Crashed), or its batch was cancelled. Such an item is run again.
RERUNNABLE_STATES = frozenset({"Crashed", "Cancelled"})

@dataclass(frozen=True)
class ItemOutcome:
    id: str
    ok: bool
    state: str  # name of the task run's final state, e.g. "Completed", "Failed"
    attempts: int = 0
    detail: str = ""  # what the handler did ("ingested", "skipped") or why it failed

    @property
    def rerunnable(self) -> bool:
        """Ended by its surroundings, not by its own work: worth running again."""
        return not self.ok and self.state in RERUNNABLE_STATES

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "ok": self.ok,
            "state": self.state,
            "attempts": self.attempts,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ItemOutcome":
        return cls(
            id=str(data["id"]),
            ok=bool(data["ok"]),
            state=str(data.get("state", "")),
            attempts=int(data.get("attempts", 0)),
            detail=str(data.get("detail", "")),
        )


def outcome_from_state(item_id: str, state: Any, attempts: int) -> ItemOutcome:
    """An item's outcome from its task run as the server recorded it: its state (a
    Prefect State) and run count. Pure."""
    if state.is_completed():
        return ItemOutcome(item_id, ok=True, state=state.name or "Completed", attempts=attempts)
    if not state.is_final():
        detail = f"ended {state.name or state.type.value} without finishing"
    else:
        detail = (state.message or state.name or "failed")[:500]
    return ItemOutcome(item_id, ok=False, state=state.name or state.type.value, detail=detail, attempts=attempts)


@dataclass
class BatchSummary:
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_ids: list[str] = field(default_factory=list)
    skipped: int = 0  # succeeded without work: already ingested with the same checksum

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[ItemOutcome]) -> "BatchSummary":
        summary = cls()
        for outcome in outcomes:
            summary.total += 1
            if outcome.ok:
                summary.succeeded += 1
                if outcome.detail == "skipped":
                    summary.skipped += 1
            else:
                summary.failed += 1
                summary.failed_ids.append(outcome.id)
        return summary

    def to_json(self) -> dict:
        """The CLI contract: exactly these four keys."""
        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failed_ids": list(self.failed_ids),
        }

    def to_record(self) -> dict:
        """Every field, for a flow's result: `from_record` gives the same summary back."""
        return {**self.to_json(), "skipped": self.skipped}

    @classmethod
    def from_record(cls, record: dict) -> "BatchSummary":
        return cls(total=int(record["total"]), succeeded=int(record["succeeded"]), failed=int(record["failed"]),
                   failed_ids=list(record["failed_ids"]), skipped=int(record.get("skipped", 0)))

    def to_markdown(self, title: str, max_ids: int = 1000) -> str:
        lines = [
            f"# {title}",
            "",
            "| total | succeeded | failed | skipped (already ingested) |",
            "|---:|---:|---:|---:|",
            f"| {self.total} | {self.succeeded} | {self.failed} | {self.skipped} |",
        ]
        if self.failed_ids:
            lines += ["", f"## Failed IDs ({self.failed})", ""]
            lines += [f"- `{item_id}`" for item_id in self.failed_ids[:max_ids]]
            if self.failed > max_ids:
                lines.append(f"- ... and {self.failed - max_ids} more")
        return "\n".join(lines) + "\n"


class OutcomeLedger:
    """Outcomes of a bulk run, one per item ID, in submission order.

    `record` replaces an earlier outcome of the same ID (a re-run batch), so the
    totals can never count an item twice. A rerunnable outcome (Crashed, Cancelled)
    leaves the item unfinished, so it is run again; it is only reported if nothing
    better ever comes.
    """

    def __init__(self, ids: Iterable[str]):
        self._order = list(dict.fromkeys(ids))
        self._known = set(self._order)
        self._outcomes: dict[str, ItemOutcome] = {}
        self._rerunnable: dict[str, ItemOutcome] = {}

    def record(self, outcome: ItemOutcome) -> bool:
        """Keep `outcome`; True if it is final (the item is finished)."""
        if outcome.id not in self._known:
            raise KeyError(f"outcome for an ID that was not submitted: {outcome.id!r}")
        if outcome.rerunnable:
            self._rerunnable[outcome.id] = outcome
            return False
        self._outcomes[outcome.id] = outcome
        return True

    def outcome(self, item_id: str) -> ItemOutcome | None:
        return self._outcomes.get(item_id)

    def attempted(self, item_id: str) -> bool:
        """Whether any outcome, final or rerunnable, was ever recorded for `item_id`."""
        return item_id in self._outcomes or item_id in self._rerunnable

    def unfinished(self, ids: Iterable[str]) -> list[str]:
        """IDs among `ids` with no recorded outcome yet."""
        return [item_id for item_id in ids if item_id not in self._outcomes]

    def summary(self) -> BatchSummary:
        """Every submitted ID once; an ID with no outcome counts as failed."""
        outcomes = [
            self._outcomes.get(item_id)
            or self._rerunnable.get(item_id)
            or ItemOutcome(item_id, ok=False, state="Unfinished", detail="never finished")
            for item_id in self._order
        ]
        return BatchSummary.from_outcomes(outcomes)
