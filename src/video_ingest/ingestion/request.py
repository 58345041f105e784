"""What a submission asks for: its items and the batch options its submitter chose. Pure.

An `IngestRequest` is made once (by the CLI from its flags and ID file, or by a flow
from its parameters) and passed unchanged down the run path: to the bulk flow, split
into one request per batch, and to each batch run, in this process or as a run of the
batch deployment, whose parameters it writes (`parameters`) and reads back
(`from_parameters`). Options it leaves unset (None) are decided by the settings where
the batches run: on a cluster, the chart's `ingest.*` values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Iterable

from video_ingest.ingestion.batches import PARAMETER_BUDGET, split_batches
from video_ingest.ingestion.manifest import VideoItem

if TYPE_CHECKING:
    from video_ingest.settings import IngestSettings


@dataclass(frozen=True)
class BatchOptions:
    """The settings a submitter may choose per run; each a field of `IngestSettings`."""

    handler: str | None = None
    max_inflight: int | None = None
    retries: int | None = None
    retry_delay: float | None = None
    batch_size: int | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(option.name for option in fields(cls))

    @classmethod
    def of(cls, settings: "IngestSettings") -> "BatchOptions":
        """Every option as `settings` hold it."""
        return cls(**{name: getattr(settings, name) for name in cls.names()})

    def chosen(self) -> dict[str, object]:
        """The options that are set, by name."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    def over(self, base: "BatchOptions") -> "BatchOptions":
        """These options where set, `base`'s elsewhere."""
        return replace(base, **self.chosen())

    def applied_to(self, settings: "IngestSettings", source: str) -> "IngestSettings":
        """`settings` with the options that are set, validated like the environment
        (SettingsError names the bad one, as coming from `source`)."""
        from video_ingest.settings import with_overrides

        return with_overrides(settings, source=source, **self.chosen())


@dataclass(frozen=True)
class IngestRequest:
    """Items (ID and source each) and the options they run with."""

    items: tuple[VideoItem, ...]
    options: BatchOptions = BatchOptions()

    @classmethod
    def of(cls, items: Iterable[VideoItem], options: BatchOptions = BatchOptions()) -> "IngestRequest":
        return cls(tuple(items), options)

    @classmethod
    def from_parameters(cls, items: list[str], sources: dict[str, str] | None = None,
                        **options: object) -> "IngestRequest":
        """The request a flow run's parameters carry (the inverse of `parameters`)."""
        sources = sources or {}
        return cls(tuple(VideoItem(item_id, sources.get(item_id)) for item_id in items), BatchOptions(**options))

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    @property
    def sources(self) -> dict[str, str]:
        return {item.id: item.source for item in self.items if item.source}

    def parameters(self) -> dict[str, object]:
        """The flow run parameters that carry this request: IDs, sources and the options set."""
        return {"items": self.ids, "sources": self.sources or None, **self.options.chosen()}

    def parameters_size(self) -> int:
        """Bytes of the `items` and `sources` parameters as JSON, give or take a few."""
        size = lambda text: len(text.encode()) + 4  # noqa: E731  quoted, and a separator
        return sum(size(item.id) + (size(item.id) + size(item.source) if item.source else 0) for item in self.items)

    def with_items(self, items: Iterable[VideoItem]) -> "IngestRequest":
        return replace(self, items=tuple(items))

    def batches(self, size: int, budget: int | None = None) -> list["IngestRequest"]:
        """One request per batch of at most `size` items, in order, each with these options
        but the batch size. With a `budget` (bytes), a batch whose parameters would pass
        it is halved until they fit (Prefect refuses a run's parameters past 512 KB)."""
        per_batch = replace(self.options, batch_size=None)
        pending = [IngestRequest(tuple(batch), per_batch) for batch in reversed(split_batches(self.items, size))]
        fitted: list[IngestRequest] = []
        while pending:
            batch = pending.pop()
            if budget is not None and len(batch.items) > 1 and batch.parameters_size() > budget:
                half = len(batch.items) // 2
                pending += [batch.with_items(batch.items[half:]), batch.with_items(batch.items[:half])]
            else:
                fitted.append(batch)
        return fitted

    def too_big_for_parameters(self) -> bool:
        return self.parameters_size() > PARAMETER_BUDGET
