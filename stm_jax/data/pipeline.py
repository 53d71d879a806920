"""The grain input pipeline: sources -> per-process shards -> mix by ratio -> clips -> batches.

    per source: MapDataset.range(shard) .shuffle(seed) .repeat()      (reshuffled every epoch)
    MapDataset.mix(sources, weights=ratios) .map_with_index(ClipMaker) .batch(B // process_count)
    .to_iter_dataset() .mp_prefetch(num_workers)                         -> numpy batches
    to_global_batch(batch, mesh)                                         -> jax.Arrays over 'data'

Each process reads a disjoint shard of every source (records i, i + P, ...). The iterator's state
(`get_state`/`set_state`, or orbax through `grain.checkpoint.CheckpointSave/CheckpointRestore`) makes a
resumed run continue on the identical next batch.
"""

from __future__ import annotations

import logging

import grain
import numpy as np

from stm_jax.data.clips import COUNTERS, ClipMaker, Shard
from stm_jax.data.errors import DataError, SkipLog, check_on_bad_sample
from stm_jax.data.registry import build_source
from stm_jax.data.workers import worker_init_fn

log = logging.getLogger("stm_jax.data")
_ADVICE = {
    "resampled": "Clips with no object of data.min_object_pixels px in frame 0 are redrawn.",
    "unlisted_ids": "Mask ids that meta.json / frame 0 does not list are ignored (background).",
    "missing_png": "Frames without an annotation PNG are left out of sampling.",
    "empty": "No usable object in data.max_retries draws: a background-only clip was used.",
}


class _Tag:
    """Picklable `k -> (source_id, k-th record of this process's shard)`."""

    def __init__(self, source_id: int, shard: Shard) -> None:
        self.source_id, self.shard = source_id, shard

    def __call__(self, k: int) -> tuple[int, int]:
        return self.source_id, self.shard.record(int(k))


def per_process_batch_size(global_batch: int, process_count: int) -> int:
    """The batch each process builds; the global batch must split evenly over processes."""
    if global_batch % process_count:
        raise ValueError(
            f"data.batch_size={global_batch} is not divisible by {process_count} processes"
        )
    return global_batch // process_count


def make_train_dataset(config, process_index: int, process_count: int):
    """Builds this process's infinite, batched `grain.MapDataset`.

    Args:
      config: the data config (`default_data_config()` layout).
      process_index, process_count: this process and the number of processes.

    Returns:
      (dataset, construction-time SkipLogs of the sources, the ClipMaker).
    """
    batch = per_process_batch_size(config.batch_size, process_count)
    mixed, sources, shards, skips = make_record_stream(config, process_index, process_count)
    maker = ClipMaker(sources, shards, config, process_index, batch)
    maker.names = [
        n for n in sorted(config.sources) if float(config.sources[n].get("ratio", 0)) > 0
    ]
    dataset = mixed.map_with_index(maker).batch(batch, drop_remainder=True)
    return dataset, skips, maker


def make_record_stream(config, process_index: int, process_count: int):
    """The infinite mixed stream of (source_id, record_index) for this process, before clip making.

    Args:
      config: the data config.
      process_index, process_count: this process and the number of processes.

    Returns:
      (MapDataset of (source_id, record_index), sources, shards, construction-time SkipLogs).
    """
    check_on_bad_sample(config.on_bad_sample)
    on_bad_video = check_on_bad_sample(config.get("on_bad_video", "error"))
    sources, shards, datasets, weights, skips = [], [], [], [], []
    for name in sorted(config.sources):
        spec = config.sources[name]
        if float(spec.get("ratio", 0.0)) <= 0:
            continue
        source = build_source(name, spec, on_bad_video)  # structural faults: before step 1
        count = len(range(process_index, len(source), process_count))
        if count == 0:
            raise DataError(
                f"data.sources.{name}: {len(source)} records cannot be shared by {process_count} "
                "processes. Use fewer processes or drop this source."
            )
        shard = Shard(process_index, process_count, count)
        source_id = len(sources)
        ds = grain.MapDataset.range(count).shuffle(seed=config.seed + 7919 * source_id).repeat()
        datasets.append(ds.map(_Tag(source_id, shard)))
        sources.append(source)
        shards.append(shard)
        weights.append(float(spec.ratio))
        skips.append(getattr(source, "skips", SkipLog()))
    if not datasets:
        raise DataError("data.sources: no source has ratio > 0.")
    mixed = grain.MapDataset.mix(datasets, weights=weights) if len(datasets) > 1 else datasets[0]
    return mixed, sources, shards, skips


def expand_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Restores the trainer's format from a shipped batch: int32 labels, one-hot float32 masks.

    Args:
      batch: frames, labels (uint8), void, object_valid, num_objects.

    Returns:
      The batch with labels int32 [B,T,H,W] and masks float32 [B,T,H,W,O+1].
    """
    labels = batch["labels"].astype(np.int32)
    slots = np.arange(batch["object_valid"].shape[-1] + 1, dtype=np.int32)
    return dict(batch, labels=labels, masks=(labels[..., None] == slots).astype(np.float32))


class TrainIterator(grain.DatasetIterator):
    """Batches for the trainer; counts skipped bad samples; checkpointable with orbax.

    `get_state()` is JSON (the grain state plus the start step and the skip count), so
    `grain.checkpoint.CheckpointSave(iterator)` / `CheckpointRestore(iterator)` work in an orbax
    `args.Composite`. Batches are dicts of numpy arrays (see `stm_jax.data.sampling.pack_clip`) with a
    leading per-process batch axis.
    """

    def __init__(
        self,
        dataset,
        num_workers: int,
        start_step: int = 0,
        buffer_size: int = 2,
        source_skips: list[SkipLog] | None = None,
        read_threads: int = 2,
        source_names: list[str] | None = None,
        index_counts: list[dict] | None = None,
    ) -> None:
        super().__init__()
        self._names = list(source_names or [])
        self._index_counts = list(index_counts or [])
        self._counts = np.zeros((max(len(self._names), 1), len(COUNTERS)), np.int64)
        self._warned: set[tuple[str, str]] = set()
        self._threads = read_threads
        self._dataset, self._num_workers, self._buffer = dataset, num_workers, buffer_size
        self._start_step = int(start_step)
        self._source_skips = source_skips or []
        self._skipped = 0
        self._inner = self._build(self._start_step)

    def _build(self, start_step: int):
        ds = self._dataset[start_step:] if start_step else self._dataset
        # Elements are whole batches: a small read-ahead bounds memory (grain's default is 500).
        it = ds.to_iter_dataset(
            grain.ReadOptions(num_threads=self._threads, prefetch_buffer_size=2)
        )
        if self._num_workers > 0:
            options = grain.MultiprocessingOptions(
                num_workers=self._num_workers, per_worker_buffer_size=self._buffer
            )
            # Workers end with this process even when it is SIGKILLed (stm_jax.data.workers).
            it = it.mp_prefetch(options, worker_init_fn=worker_init_fn())
        return iter(it)

    def __next__(self) -> dict[str, np.ndarray]:
        batch = dict(next(self._inner))
        counts, source = batch.pop("counts"), batch.pop("source")
        np.add.at(self._counts, np.asarray(source, np.int64), np.asarray(counts, np.int64))
        self._skipped = int(self._counts[:, COUNTERS.index("skipped")].sum())
        self._warn_once()
        return expand_batch(batch)

    def _warn_once(self) -> None:
        for (name, kind), value in self.data_counts_by_source().items():
            if value and (name, kind) not in self._warned and kind != "skipped":
                self._warned.add((name, kind))
                log.warning(
                    "data source %s: %s (first seen; counted in metrics.jsonl as data/%s_%s). %s",
                    name,
                    kind,
                    kind,
                    name,
                    _ADVICE.get(kind, ""),
                )

    def data_counts_by_source(self) -> dict[tuple[str, str], int]:
        """{(source name, counter): count} so far, sampling counters and indexing counters."""
        out = {}
        for i, name in enumerate(self._names):
            for j, kind in enumerate(COUNTERS):
                out[(name, kind)] = int(self._counts[i, j])
            if i < len(self._index_counts):
                for kind, value in self._index_counts[i].items():
                    out[(name, kind)] = int(value)
        return out

    def data_counts(self) -> dict[str, float]:
        """Flat {'data/<counter>_<source>': count} for metrics.jsonl and the progress bar."""
        return {f"data/{k}_{n}": float(v) for (n, k), v in self.data_counts_by_source().items()}

    def get_state(self) -> dict:
        return {
            "start_step": self._start_step,
            "skipped": self._skipped,
            "counts": self._counts.tolist(),
            "inner": self._inner.get_state(),
        }

    def set_state(self, state: dict) -> None:
        if int(state["start_step"]) != self._start_step:
            self.close_inner()
            self._start_step = int(state["start_step"])
            self._inner = self._build(self._start_step)
        self._inner.set_state(state["inner"])
        self._skipped = int(state["skipped"])
        if "counts" in state:
            self._counts = np.asarray(state["counts"], np.int64).reshape(self._counts.shape)

    def start_prefetch(self) -> None:
        if hasattr(self._inner, "start_prefetch"):
            self._inner.start_prefetch()

    def close_inner(self) -> None:
        if hasattr(getattr(self, "_inner", None), "close"):
            self._inner.close()

    def close(self) -> None:
        self.close_inner()

    @property
    def skipped(self) -> int:
        """Bad samples replaced so far (all workers), restored with the state."""
        return self._skipped

    def summary(self) -> str:
        """End-of-training report of bad data: sequences dropped at indexing and samples replaced."""
        dropped = sum(s.total() for s in self._source_skips)
        lines = [f"Bad samples replaced during training: {self._skipped}."]
        counts = {f"{k} ({n})": v for (n, k), v in self.data_counts_by_source().items() if v}
        if counts:
            lines.append("Data counters: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
        lines.append(f"Sequences/images dropped when indexing the sources: {dropped}.")
        lines += [s.summary() for s in self._source_skips if s.total()]
        return "\n".join(lines)


def make_train_iterator(
    config, process_index: int | None = None, process_count: int | None = None, step: int = 0
) -> TrainIterator:
    """The trainer's entry point: this process's batch iterator.

    Args:
      config: the data config.
      process_index, process_count: default to jax.process_index() / jax.process_count().
      step: first training step to produce (when no iterator state is restored). A state restored
        with `set_state` (or orbax) carries its own position and wins.

    Returns:
      A `TrainIterator` yielding per-process numpy batches.
    """
    if process_index is None or process_count is None:
        import jax

        process_index, process_count = jax.process_index(), jax.process_count()
    dataset, skips, maker = make_train_dataset(config, process_index, process_count)
    return TrainIterator(
        dataset,
        int(config.num_workers),
        step,
        int(config.worker_buffer_size),
        skips,
        int(config.get("read_threads", 2)),
        maker.names,
        [dict(getattr(source, "index_counts", {})) for source in maker.sources],
    )


def to_global_batch(batch: dict[str, np.ndarray], mesh, axis: str = "data") -> dict:
    """Assembles per-process numpy batches into global jax.Arrays sharded over `axis`.

    Args:
      batch: this process's batch (leading axis = per-process batch).
      mesh: a jax.sharding.Mesh with a `axis` dimension.
      axis: the data-parallel mesh axis.

    Returns:
      dict of jax.Array with global leading dimension, sharded as NamedSharding(mesh, P(axis)).
    """
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    sharding = NamedSharding(mesh, PartitionSpec(axis))
    first = next(iter(batch.values()))
    local = len(mesh.local_devices)
    if mesh.shape[axis] == mesh.size and first.shape[0] % local:
        raise ValueError(
            f"per-process batch {first.shape[0]} does not split over this process's {local} devices"
        )
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()
    }
