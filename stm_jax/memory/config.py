"""`MemoryConfig`: every setting of the space-time memory — how it is read and which frames it holds.

One dataclass for the read (similarity, top_k, chunk_frames) and the policy (capacity, mem_every,
eviction, permanent_slots and the long-term store's sizes). `config.memory` in every job is built from these defaults (`stm_jax.defaults`), and the
training forward uses the same read with a bank sized to its clip (`for_training_clip`). None of these
fields changes the weights, so any checkpoint runs with any memory configuration.
"""

from __future__ import annotations

import dataclasses

EVICTION_POLICIES = ("oldest", "none", "long_term")
LONG_TERM_SELECTIONS = ("usage", "random")


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """Attributes:
    similarity: name of the affinity in `stm_jax.memory.similarity.SIMILARITIES`: 'dot' (STM),
      'l2' (STCN), 'cosine', or one you register there.
    top_k: if > 0, the softmax over memory keeps only the top_k affinities per query pixel (STCN: 20).
    chunk_frames: the read streams memory this many frames at a time (cost follows the valid memory,
      never the capacity).
    capacity: frames held in total (kept frames + the temporary previous frame), >= 2.
    mem_every: keep every mem_every-th frame (official protocol: 5), >= 1.
    eviction: when full, 'oldest' drops the oldest working frame (the first frame and corrections
      are permanent, see permanent_slots); 'none' stops keeping; 'long_term' consolidates the oldest
      working frame into prototypes of a fixed-size long-term store (XMem), then drops it.
    permanent_slots: at most this many slots hold permanent frames that eviction never touches: the
      first frame, then corrected (pinned) frames. 1 = the first frame only (official STM). When
      they are full, a new pinned frame replaces the oldest pinned frame other than frame 0; with 1,
      a correction is kept as an ordinary memory frame (committed whatever mem_every says). Must
      leave the temporary slot free: 1 <= permanent_slots <= capacity - 1.
    long_term_prototypes: ('long_term') positions kept from each consolidated frame, per object
      (at most the positions of a frame; more are clipped to it).
    long_term_size: ('long_term') positions of the long-term store, per object; when full, new
      prototypes replace the least-used ones.
    long_term_selection: ('long_term') 'usage': the positions with the most attention per read
      (counted during the read, XMem); 'random': a random selection (seeded by the frame index).
    """

    similarity: str = "dot"
    top_k: int = 0
    chunk_frames: int = 4
    capacity: int = 40
    mem_every: int = 5
    eviction: str = "oldest"
    permanent_slots: int = 1
    long_term_prototypes: int = 16
    long_term_size: int = 512
    long_term_selection: str = "usage"

    def __post_init__(self):
        from stm_jax.memory.similarity import SIMILARITIES

        if self.similarity not in SIMILARITIES:
            raise ValueError(
                f"memory.similarity={self.similarity!r}; choose one of {sorted(SIMILARITIES)}."
            )
        checks = (
            (self.top_k >= 0, "memory.top_k must be >= 0 (0 = full softmax)"),
            (self.chunk_frames >= 1, "memory.chunk_frames must be >= 1"),
            (
                self.capacity >= 2,
                "memory.capacity must be >= 2 (the first frame + the previous one)",
            ),
            (self.mem_every >= 1, "memory.mem_every must be >= 1 (1 = keep every frame)"),
            (
                1 <= self.permanent_slots <= self.capacity - 1,
                "memory.permanent_slots must be in [1, capacity - 1] (the temporary slot stays free)",
            ),
            (self.long_term_prototypes >= 1, "memory.long_term_prototypes must be >= 1"),
            (
                self.long_term_size >= self.long_term_prototypes,
                "memory.long_term_size must be >= memory.long_term_prototypes",
            ),
            (
                self.long_term_selection in LONG_TERM_SELECTIONS,
                f"memory.long_term_selection must be one of {LONG_TERM_SELECTIONS}",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message}; got {dataclasses.asdict(self)}.")
        if self.eviction not in EVICTION_POLICIES:
            raise ValueError(
                f"memory.eviction={self.eviction!r}; choose one of {EVICTION_POLICIES}."
            )

    @classmethod
    def from_config(cls, config) -> MemoryConfig:
        """Builds from a ConfigDict / dict, ignoring keys that are not memory fields."""
        if isinstance(config, MemoryConfig):
            return config
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(config).items() if k in names})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def for_training_clip(self, num_frames: int) -> MemoryConfig:
        """The same read over a bank sized to a training clip: every earlier frame of the clip is
        kept (frames 1..t-1 predict frame t), so capacity = num_frames - 1 and nothing is evicted."""
        capacity = max(2, num_frames - 1)
        return dataclasses.replace(
            self,
            capacity=capacity,
            mem_every=1,
            chunk_frames=capacity,
            eviction="none",
            permanent_slots=1,
        )
