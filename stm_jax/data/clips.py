"""One training sample from one source record: the grain transform of the pipeline.

`ClipMaker` is called with the global element index, so its randomness and the max-skip curriculum
(clips seen = index // per-process batch x global batch) are pure functions of the index: the same
seed gives the same batches, and a restored iterator resumes on the identical next batch.

Objects (as Training-Code-of-STM): the clip's objects are those visible in frame 0 after the crop;
ones under `min_object_pixels` there are dropped, and so are objects absent from frame 0, even if
they are large in frames 2-3 (they are background in every frame of the clip, exactly as the
reference labels every id it did not pick in frame 0). A clip left with no object is never an error:
another record of the same source is drawn from (seed, process, index, retry), so resume stays exact.
Unreadable files raise `DataError` with on_bad_sample='error', or (default 'skip') are counted and
redrawn the same way. The counts travel with the sample ('counts', per `COUNTERS`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stm_jax.data.augment import AugmentParams, augment_clip
from stm_jax.data.errors import DataError, SkipLog
from stm_jax.data.sampling import max_skip_at_step, pack_clip, pick_objects, sample_frame_indices
from stm_jax.data.static_clips import image_to_clip, paste_objects, static_params
from stm_jax.data.video import FileVideo, ImageRecord

_AUGMENT_TRIES = 5  # redraws of the augmentation before a record counts as unusable
# Per-sample counters shipped with every sample and summed per source by the iterator:
# resampled: records redrawn (no usable object, or a bad file); skipped: unreadable files;
# unlisted_ids: frames whose PNG held ids outside meta.json / frame 0 (ignored as background);
# empty: clips trained with no object after max_retries draws.
COUNTERS = ("resampled", "skipped", "unlisted_ids", "empty")


@dataclasses.dataclass(frozen=True)
class Shard:
    """The records of one source owned by this process: indices first, first + step, ..."""

    first: int
    step: int
    count: int

    def record(self, k: int) -> int:
        return self.first + (k % self.count) * self.step


class ClipMaker:
    """Picklable `(index, (source_id, record_index)) -> sample` transform.

    Args:
      sources: the sources, by source id.
      shards: this process's shard of each source (for replacement draws).
      config: the data config (plain values are copied out).
      process_index: folded into the seed so processes draw different augmentations.
      per_process_batch: examples per batch on this process (maps an index to its step).
    """

    def __init__(
        self, sources, shards: list[Shard], config, process_index: int, per_process_batch: int
    ) -> None:
        self.sources = list(sources)
        self.shards = list(shards)
        self.num_frames = int(config.num_frames)
        self.max_objects = int(config.max_train_objects)
        self.min_pixels = int(config.min_object_pixels)
        self.schedule = dict(config.max_skip)
        self.paste_prob, self.paste_max = float(config.paste_prob), int(config.paste_max)
        self.on_bad_sample, self.max_retries = config.on_bad_sample, int(config.max_retries)
        self.seed, self.process_index = int(config.seed), process_index
        self.per_process_batch = per_process_batch
        self.global_batch = int(config.batch_size)
        self.video_params = AugmentParams(
            crop_size=config.crop_size, resize_shorter=config.resize_shorter
        )
        self.static_params = static_params(config.crop_size, config.resize_shorter)
        self.skips = SkipLog()

    def __call__(self, index: int, element) -> dict:
        source_id, record_index = (int(v) for v in element)
        rng = np.random.default_rng([self.seed, self.process_index, index])
        skip = max_skip_at_step(index // self.per_process_batch, self.global_batch, self.schedule)
        source, shard = self.sources[source_id], self.shards[source_id]
        counts = dict.fromkeys(COUNTERS, 0)
        last = None
        for retry in range(1, self.max_retries + 1):
            try:
                record = source[record_index]
                sample, last = self._sample(record, source, shard, rng, skip, counts)
            except DataError as error:
                if self.on_bad_sample == "error":
                    raise
                self.skips.add(f"source {source_id} record {record_index}", error)
                counts["skipped"] += 1
                sample = None
            if sample is not None:
                break
            # No usable object (or a bad file): another record of the same source, drawn from
            # (seed, process, index, retry) only, so a resumed run draws the same one.
            counts["resampled"] += 1
            rng = np.random.default_rng([self.seed, self.process_index, index, retry])
            record_index = shard.record(int(rng.integers(shard.count)))
        else:
            if last is None:
                raise DataError(
                    f"{self.max_retries} unreadable samples in a row (see the warnings above); "
                    "the dataset looks broken."
                )
            # Nothing usable in max_retries draws: the last clip with no object slot (all
            # background), as Training-Code-of-STM trains a clip without objects. Counted.
            counts["empty"] += 1
            sample = pack_clip(*last, [], self.max_objects)
        # Workers ship batches through shared memory: send uint8 labels and no one-hot
        # masks (4x the frames' bytes); `expand_batch` rebuilds them in the main process.
        del sample["masks"]
        sample["labels"] = sample["labels"].astype(np.uint8)
        sample["counts"] = np.asarray([counts[k] for k in COUNTERS], np.int32)
        sample["source"] = np.int32(source_id)
        return sample

    def _sample(self, record, source, shard, rng: np.random.Generator, skip: int, counts: dict):
        """(packed sample or None when no object is usable, the last (frames, labels) tried)."""
        if isinstance(record, ImageRecord):
            make = lambda: self._static(record, source, shard, rng)  # noqa: E731
        else:
            indices = sample_frame_indices(
                rng,
                len(record),
                self.num_frames,
                skip // record.frame_step,
                record.frames_with_objects(),
            )
            if isinstance(record, FileVideo):
                frames, labels = record.read(indices, counts)
            else:
                frames, labels = record.read(indices)
            make = lambda: augment_clip(frames, labels, rng, self.video_params)  # noqa: E731
        last = None
        for _ in range(_AUGMENT_TRIES):
            clip_frames, clip_labels = make()
            last = (clip_frames, clip_labels)
            ids = pick_objects(clip_labels[0], rng, self.max_objects, self.min_pixels)
            if ids:
                return pack_clip(clip_frames, clip_labels, ids, self.max_objects), last
        return None, last

    def _static(self, record: ImageRecord, source, shard: Shard, rng: np.random.Generator):
        frames, labels = image_to_clip(record, rng, self.num_frames, self.static_params)
        if self.paste_max > 0 and rng.random() < self.paste_prob:
            donors = []
            for _ in range(int(rng.integers(1, self.paste_max + 1))):
                try:
                    donors.append(source[shard.record(int(rng.integers(shard.count)))])
                except DataError as error:
                    if self.on_bad_sample == "error":
                        raise
                    self.skips.add("paste donor", error)  # a bad donor only costs the paste
            frames, labels = paste_objects(frames, labels, donors, rng)
        return frames, labels
