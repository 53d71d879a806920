"""The memory-policy registry (`memory.eviction`): what a full bank keeps, evicts or consolidates.

A policy is a `MemoryPolicy` subclass registered with `@POLICIES.register("name")`. The bank
(`stm_jax.memory.bank`) calls it at three moments, all inside the jitted step (pure functions of
static-shaped pytrees):
* when a frame is committed into a full bank: `keeps_frames_when_full` False leaves the bank as it is
  (the new frame is not kept); otherwise `victim(bank)` names the working slot to drop (a traced
  int32 in [first_working_slot(bank), bank.num_committed - 1]), `before_drop(bank, slot)` may act on
  it first (consolidate it somewhere), and the bank drops it. Pinning a corrected frame into a full
  bank drops `victim(bank)` too, whatever `keeps_frames_when_full` says;
* at every read: with `counts_usage`, the bank's `usage` [Ok, S, P] accumulates the attention each
  memory position received and `reads` [S] how many reads each slot was visible to (reset when a
  slot receives a new frame, moved with it); `extra_memory(bank)` may add positions that are read in
  the same softmax (keys [Ok, L, Dk], values [O, L, Dv], valid [L]), and `count_extra(bank, mass)`
  receives their attention [Ok, L];
* at start: `init_state(...)` gives the policy's own pytree, carried as `bank.policy_state`.
`needs_every_frame_encoded` True makes `Core.memorize` encode every frame even where the protocol
would never read or keep it (STCN's skips such frames' value encoding), for a policy that looks at
the temporary frame's keys or values itself.
`options` declares the policy's own config fields (`config.memory.<name>`, with defaults), read with
`MemoryConfig.option(name)`.

Built-in policies live in `stm_jax/memory/policies/`; register your own in a plugin module.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from stm_jax.registry import Registry

POLICIES = Registry("memory policy", "memory.eviction", builtins=("stm_jax.memory.policies.*",))


class MemoryPolicy:
    """Base class: 'oldest' behaviour (drop the oldest working frame), no usage, no extra memory.

    Args:
      config: the `MemoryConfig`.
    """

    counts_usage: ClassVar[bool] = False
    keeps_frames_when_full: ClassVar[bool] = True
    needs_every_frame_encoded: ClassVar[bool] = False
    options: ClassVar[dict] = {}

    def __init__(self, config):
        self.config = config

    def init_state(self, key_sets, num_objects, slots, positions, key_dim, value_dim, dtype):
        """The policy's own state for an empty bank (None: it has none)."""
        return None

    def victim(self, bank):
        """The working slot to drop from a full bank: the oldest one."""
        return first_working_slot(bank)

    def before_drop(self, bank, slot):
        """Acts on the frame in `slot` before the bank drops it."""
        return bank

    def extra_memory(self, bank):
        """(keys [Ok, L, Dk], values [O, L, Dv], valid [L]) read with the bank, or None."""
        return None

    def count_extra(self, bank, mass):
        """Receives the attention [Ok, L] that the extra memory's positions got in one read."""
        return bank


def first_working_slot(bank):
    """The first slot eviction may touch: after the pinned frames, never slot 0 (the first frame)."""
    return jnp.maximum(bank.num_pinned, 1)


def get_policy(config) -> MemoryPolicy:
    """The policy object of a `MemoryConfig`."""
    return POLICIES.get(config.eviction)(config)


def policy_option_names() -> set[str]:
    """Every option a registered policy declares (the keys `config.memory` may hold for them)."""
    return {name for key in POLICIES for name in POLICIES.get(key).options}


def policy_option_defaults() -> dict:
    """Every registered policy's options with their defaults (for the config block)."""
    defaults = {}
    for key in POLICIES:
        defaults.update(POLICIES.get(key).options)
    return defaults
