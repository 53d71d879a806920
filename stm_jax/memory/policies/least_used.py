"""'least_used': a full bank drops the working frame that received the least attention per read.

A worked example of a memory policy (docs/extending.md): one class, one decorator. It asks for the
bank's usage counters (`counts_usage`), which every read then fills, and names the victim from them;
the bank does the rest (dropping, shifting, pinned frames).
"""

from __future__ import annotations

import jax.numpy as jnp

from stm_jax.memory.policy import POLICIES, MemoryPolicy, first_working_slot


@POLICIES.register("least_used")
class LeastUsed(MemoryPolicy):
    """Drops the working frame with the least mean attention per read (ties: the oldest)."""

    counts_usage = True

    def victim(self, bank):
        slots = jnp.arange(bank.frame_index.shape[0])
        working = (slots >= first_working_slot(bank)) & (slots < bank.num_committed)
        per_read = jnp.sum(bank.usage, axis=(0, 2)) / jnp.maximum(bank.reads, 1)
        return jnp.argmin(jnp.where(working, per_read, jnp.inf)).astype(jnp.int32)
