"""`MemoryConfig`: every setting of the space-time memory — how it is read and which frames it holds.

One dataclass for the read (similarity, top_k, chunk_frames) and the policy (capacity, mem_every,
eviction). `config.memory` in every job is built from these defaults (`stm_jax.defaults`), and the
training forward uses the same read with a bank sized to its clip (`for_training_clip`). None of these
fields changes the weights, so any checkpoint runs with any memory configuration.
"""

from __future__ import annotations

import dataclasses

EVICTION_POLICIES = ("oldest", "none")


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
    eviction: when full, 'oldest' drops the oldest kept frame except the first; 'none' stops keeping.
    """

    similarity: str = "dot"
    top_k: int = 0
    chunk_frames: int = 4
    capacity: int = 40
    mem_every: int = 5
    eviction: str = "oldest"

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
            self, capacity=capacity, mem_every=1, chunk_frames=capacity, eviction="none"
        )
