"""`MemoryConfig`: every setting of the space-time memory — how it is read and which frames it holds.

One dataclass for the read (similarity, top_k, chunk_frames, read_previous) and the policy (capacity,
mem_every, eviction, permanent_slots, the policy's own options). `config.memory` in every job is built
from these defaults (`stm_jax.jobs.config_base.memory_block`), and the training forward uses the same
read with a bank sized to its clip (`for_training_clip`). None of these fields changes the weights,
so any checkpoint runs with any memory configuration.

The protocol fields (`PROTOCOL_FIELDS`: similarity, top_k, mem_every, read_previous,
mem_every_counts, per_object_memory, given_merge) are left unset (None) in config files: a run then
uses its model family's published protocol (`ModelFamily.memory_defaults`: STM's or STCN's; the
YouTube-VOS job adds `ModelFamily.youtubevos_memory_defaults`), and anything the user sets wins.
"""

from __future__ import annotations

import dataclasses

PROTOCOL_FIELDS = (
    "similarity",
    "top_k",
    "mem_every",
    "read_previous",
    "mem_every_counts",
    "per_object_memory",
    "given_merge",
)
LONG_TERM_SELECTIONS = ("usage", "random")
MEM_EVERY_COUNTS = ("frame_index", "since_last")
GIVEN_MERGES = ("replace", "reaggregate")


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
    read_previous: the previous frame is read even when it is not a memory frame (STM: True; STCN's
      protocol: False, only memory frames are read).
    mem_every_counts: which frames are memory frames. 'frame_index': frame_index % mem_every == 0
      (STM; STCN on DAVIS). 'since_last': a frame >= mem_every frames after the last memory frame,
      and every frame where objects are given, which restarts the count (STCN on YouTube-VOS).
    per_object_memory: each object reads only the memory frames from the frame it was given at on,
      with its own softmax / top-k over them (STCN on YouTube-VOS). False: every object reads every
      memory frame (an object given late also reads frames from before it appeared, with an empty
      mask there).
    given_merge: how the masks of objects given at a later frame merge with the prediction there.
      'replace': they replace it where present, the other objects' probabilities are zeroed under
      them. 'reaggregate': the same, then soft aggregation runs again over every object (STCN on
      YouTube-VOS; the background is recomputed from the objects).
    eviction: the memory policy (`stm_jax.memory.policy.POLICIES`): what a full bank keeps, evicts or
      consolidates. 'oldest' drops the oldest working frame (the first frame and corrections are
      permanent, see permanent_slots); 'none' stops keeping; 'long_term' consolidates the oldest
      working frame into prototypes of a fixed-size long-term store (XMem), then drops it;
      'least_used' drops the working frame that received the least attention.
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
    options: other policies' own options, as sorted (name, value) pairs (`option(name)`).
    """

    similarity: str = "dot"
    top_k: int = 0
    chunk_frames: int = 4
    capacity: int = 40
    mem_every: int = 5
    read_previous: bool = True
    mem_every_counts: str = "frame_index"
    per_object_memory: bool = False
    given_merge: str = "replace"
    eviction: str = "oldest"
    permanent_slots: int = 1
    long_term_prototypes: int = 16
    long_term_size: int = 512
    long_term_selection: str = "usage"
    options: tuple = ()

    def __post_init__(self):
        from stm_jax.memory.policy import POLICIES
        from stm_jax.memory.similarity import SIMILARITIES

        SIMILARITIES.get(self.similarity)  # unknown names: one line with "did you mean"
        POLICIES.get(self.eviction)
        checks = (
            (self.top_k >= 0, "memory.top_k must be >= 0 (0 = full softmax)"),
            (self.chunk_frames >= 1, "memory.chunk_frames must be >= 1"),
            (
                self.capacity >= 2,
                "memory.capacity must be >= 2 (the first frame + the previous one)",
            ),
            (self.mem_every >= 1, "memory.mem_every must be >= 1 (1 = keep every frame)"),
            (
                self.mem_every_counts in MEM_EVERY_COUNTS,
                f"memory.mem_every_counts must be one of {MEM_EVERY_COUNTS}",
            ),
            (self.given_merge in GIVEN_MERGES, f"memory.given_merge must be one of {GIVEN_MERGES}"),
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

    def option(self, name: str, default=None):
        """A policy option given in `config.memory` (see `MemoryPolicy.options`)."""
        return dict(self.options).get(name, default)

    @classmethod
    def from_config(cls, config, family_defaults: dict | None = None) -> MemoryConfig:
        """Builds from a ConfigDict / dict: unset (None) protocol fields take `family_defaults` (the
        model family's published protocol), then the dataclass defaults; keys declared by a
        registered policy's `options` are kept in `options`; other keys are ignored."""
        if isinstance(config, MemoryConfig):
            return config
        from stm_jax.memory.policy import policy_option_names

        values = dict(config)
        names = {f.name for f in dataclasses.fields(cls)} - {"options"}
        chosen = {k: v for k, v in values.items() if k in names and v is not None}
        for field, value in (family_defaults or {}).items():
            chosen.setdefault(field, value)
        declared = policy_option_names()
        options = tuple(sorted((k, v) for k, v in values.items() if k in declared))
        return cls(**chosen, options=options)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values.update(dict(values.pop("options")))
        return values

    def for_training_clip(self, num_frames: int) -> MemoryConfig:
        """The same read over a bank sized to a training clip: every earlier frame of the clip is
        kept and read (frames 1..t-1 predict frame t), so capacity = num_frames - 1, nothing is
        evicted and the policy is 'none'."""
        capacity = max(2, num_frames - 1)
        return dataclasses.replace(
            self,
            capacity=capacity,
            mem_every=1,
            read_previous=True,
            chunk_frames=capacity,
            eviction="none",
            permanent_slots=1,
        )
