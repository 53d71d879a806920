"""The two simplest policies: 'oldest' (a sliding window after the permanent frames) and 'none'."""

from __future__ import annotations

from stm_jax.memory.policy import POLICIES, MemoryPolicy


@POLICIES.register("oldest")
class Oldest(MemoryPolicy):
    """A full bank drops its oldest working frame (memory stays bounded; pinned frames stay)."""


@POLICIES.register("none")
class KeepFirst(MemoryPolicy):
    """A full bank keeps what it has: new frames are no longer kept (the first frames stay)."""

    keeps_frames_when_full = False
