"""One training sample from one source record: the grain transform of the pipeline.

`ClipMaker` is called with the global element index, so its randomness and the max-skip curriculum
(step = index // per-process batch) are pure functions of the index: the same seed gives the same
batches, and a restored iterator resumes on the identical next batch. Bad records raise `DataError`, or
with on_bad_sample='skip' are logged and replaced by another record of the same source; the number of
replacements travels with the sample as 'skipped'.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stm_jax.data.augment import AugmentParams, augment_clip
from stm_jax.data.errors import DataError, SkipLog
from stm_jax.data.sampling import max_skip, pack_clip, pick_objects, sample_frame_indices
from stm_jax.data.static_clips import image_to_clip, paste_objects, static_params
from stm_jax.data.video import ImageRecord

_AUGMENT_TRIES = 5  # redraws of the augmentation before a record counts as unusable


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
        self.video_params = AugmentParams(
            crop_size=config.crop_size, resize_shorter=config.resize_shorter
        )
        self.static_params = static_params(config.crop_size, config.resize_shorter)
        self.skips = SkipLog()

    def __call__(self, index: int, element) -> dict:
        source_id, record_index = (int(v) for v in element)
        rng = np.random.default_rng([self.seed, self.process_index, index])
        skip = max_skip(index // self.per_process_batch, self.schedule)
        source, shard = self.sources[source_id], self.shards[source_id]
        skipped = 0
        last_error = None
        for _ in range(self.max_retries):
            try:
                record = source[record_index]
                sample = self._sample(record, source, shard, rng, skip)
                # Workers ship batches through shared memory: send uint8 labels and no one-hot
                # masks (4x the frames' bytes); `expand_batch` rebuilds them in the main process.
                del sample["masks"]
                sample["labels"] = sample["labels"].astype(np.uint8)
                sample["skipped"] = np.int32(skipped)
                return sample
            except DataError as error:
                if self.on_bad_sample == "error":
                    raise
                self.skips.add(f"source {source_id} record {record_index}", error)
                skipped, last_error = skipped + 1, error
                record_index = shard.record(int(rng.integers(shard.count)))
        raise DataError(
            f"{self.max_retries} bad samples in a row (last: {last_error}); the dataset looks broken."
        )

    def _sample(self, record, source, shard: Shard, rng: np.random.Generator, skip: int) -> dict:
        if isinstance(record, ImageRecord):
            make = lambda: self._static(record, source, shard, rng)  # noqa: E731
            name = record.name
        else:
            indices = sample_frame_indices(
                rng,
                len(record),
                self.num_frames,
                skip // record.frame_step,
                record.frames_with_objects(),
            )
            frames, labels = record.read(indices)
            make = lambda: augment_clip(frames, labels, rng, self.video_params)  # noqa: E731
            name = f"{record.name} frames {indices}"
        for _ in range(_AUGMENT_TRIES):
            clip_frames, clip_labels = make()
            ids = pick_objects(clip_labels[0], rng, self.max_objects, self.min_pixels)
            if ids:
                return pack_clip(clip_frames, clip_labels, ids, self.max_objects)
        raise DataError(
            f"{name}: no object of at least {self.min_pixels} px in the first frame after "
            f"{_AUGMENT_TRIES} crops. Check the masks, or lower data.min_object_pixels."
        )

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
