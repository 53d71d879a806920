"""Long-term memory (XMem-style), `memory.eviction='long_term'`: no trainable parameters, so it runs
with any checkpoint.

When the working memory (the bank's kept frames) is full, the oldest working frame is consolidated
before it is dropped: `long_term_prototypes` of its positions per object — the most-used ones
(attention mass per read, counted during the read) or a random selection — go into a fixed-size
store of `long_term_size` positions per object. When the store is full, new prototypes replace the
least-used ones (usage per read, averaged over objects). The store is read together with working
memory: one softmax over the valid bank positions and the valid prototypes.

Shapes are static: the store's arrays never grow, a validity mask says which positions hold a
prototype, and usage is carried as float sums plus read counts.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from stm_jax.memory.policy import POLICIES, MemoryPolicy, first_working_slot


class LongTermStore(NamedTuple):
    """keys [Ok, L, Dk], values [O, L, Dv], valid [L], usage [Ok, L] (summed attention), reads [L]
    (reads since stored)."""

    keys: jax.Array
    values: jax.Array
    valid: jax.Array
    usage: jax.Array
    reads: jax.Array


def select_positions(usage, reads, count: int, selection: str, seed):
    """Which positions of a frame become prototypes, per key set.

    Args:
      usage: [Ok, P] summed attention; reads: [] how many reads it was summed over.
      count: prototypes per object; selection: 'usage' or 'random'; seed: int32 (frame index).
    Returns:
      (index [Ok, count] int32, score [Ok, count] mean attention per read of the chosen positions).
    """
    score = usage / jnp.maximum(reads, 1).astype(jnp.float32)
    if selection == "usage":
        best, index = jax.lax.top_k(score, count)
        return index.astype(jnp.int32), best
    order = jax.random.permutation(jax.random.fold_in(jax.random.key(0), seed), usage.shape[-1])
    index = jnp.broadcast_to(order[:count], (usage.shape[0], count)).astype(jnp.int32)
    return index, jnp.take_along_axis(score, index, axis=1)


def consolidate(store: LongTermStore, bank, slot, count: int, selection: str) -> LongTermStore:
    """Moves `count` prototypes of bank slot `slot` into the store: into free positions first, then
    over the least-used prototypes (mean usage per read over key sets). Prototypes keep their usage
    per read, so they compete fairly with older ones. With per-object keys each object chooses its
    own positions; with shared keys all objects take the same ones."""
    count = min(count, bank.keys.shape[2])
    frame_keys = jax.lax.dynamic_index_in_dim(bank.keys, slot, axis=1, keepdims=False)
    frame_values = jax.lax.dynamic_index_in_dim(bank.values, slot, axis=1, keepdims=False)
    frame_usage = jax.lax.dynamic_index_in_dim(bank.usage, slot, axis=1, keepdims=False)
    index, score = select_positions(
        frame_usage, bank.reads[slot], count, selection, bank.frame_index[slot]
    )
    chosen_keys = jnp.take_along_axis(frame_keys, index[..., None], axis=1)
    value_index = jnp.broadcast_to(index, (frame_values.shape[0], count))
    chosen_values = jnp.take_along_axis(frame_values, value_index[..., None], axis=1)
    stored_score = jnp.mean(store.usage, axis=0) / jnp.maximum(store.reads, 1)
    priority = jnp.where(store.valid, -stored_score, jnp.inf)  # free positions first
    _, target = jax.lax.top_k(priority, count)
    return store._replace(
        keys=store.keys.at[:, target].set(chosen_keys.astype(store.keys.dtype)),
        values=store.values.at[:, target].set(chosen_values.astype(store.values.dtype)),
        valid=store.valid.at[target].set(True),
        usage=store.usage.at[:, target].set(score),
        reads=store.reads.at[target].set(1),
    )


@POLICIES.register("long_term")
class LongTerm(MemoryPolicy):
    """'oldest', after consolidating the dropped frame into the long-term store, which every read
    visits with the bank (see the module docstring; sizes from `memory.long_term_*`)."""

    counts_usage = True

    def init_state(self, key_sets, num_objects, slots, positions, key_dim, value_dim, dtype):
        size = self.config.long_term_size
        return LongTermStore(
            keys=jnp.zeros((key_sets, size, key_dim), dtype),
            values=jnp.zeros((num_objects, size, value_dim), dtype),
            valid=jnp.zeros((size,), bool),
            usage=jnp.zeros((key_sets, size), jnp.float32),
            reads=jnp.zeros((size,), jnp.int32),
        )

    def victim(self, bank):
        return first_working_slot(bank)

    def before_drop(self, bank, slot):
        store = consolidate(
            bank.policy_state,
            bank,
            slot,
            self.config.long_term_prototypes,
            self.config.long_term_selection,
        )
        return bank._replace(policy_state=store)

    def extra_memory(self, bank):
        store = bank.policy_state
        return store.keys, store.values, store.valid

    def count_extra(self, bank, mass):
        store = bank.policy_state
        store = store._replace(usage=store.usage + mass, reads=store.reads + store.valid)
        return bank._replace(policy_state=store)
