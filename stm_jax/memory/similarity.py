"""Affinities between memory keys and query keys: the one place a new memory read starts.

A similarity is a pure function `(memory_keys [..., N, D], query_keys [..., M, D]) -> [..., N, M]`
in float32, registered by name with `@register("name")` (here or in a plugin module). The read (`stm_jax.memory.read`) takes the
softmax over the memory axis N — whole, top-k, or streamed in chunks — in inference and in training
alike, so a function added here is trained and evaluated the same way, selected by
`--config.memory.similarity=name`. See docs/extending.md for a worked example and the test to copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from stm_jax.registry import Registry

Similarity = Callable[[jax.Array, jax.Array], jax.Array]
SIMILARITIES = Registry("memory similarity", "memory.similarity")


def register(name: str):
    """Decorator: makes a similarity selectable as `memory.similarity=name`."""
    return SIMILARITIES.register(name)


def _dots(memory_keys, query_keys):
    return jnp.einsum(
        "...nd,...md->...nm", memory_keys, query_keys, precision=jax.lax.Precision.HIGHEST
    )


@register("dot")
def dot(memory_keys, query_keys):
    """STM (spec A.4): k_m . k_q / sqrt(d)."""
    return _dots(memory_keys, query_keys) / math.sqrt(memory_keys.shape[-1])


@register("l2")
def l2(memory_keys, query_keys):
    """STCN: (2 k_m . k_q - |k_m|^2) / sqrt(d) = -|k_m - k_q|^2 / sqrt(d) + a query-only term, which
    the softmax over memory ignores."""
    squared = jnp.sum(memory_keys * memory_keys, axis=-1)[..., None]
    return (2.0 * _dots(memory_keys, query_keys) - squared) / math.sqrt(memory_keys.shape[-1])


@register("cosine")
def cosine(memory_keys, query_keys):
    """Cosine similarity scaled by sqrt(d), the magnitude `dot` has for unit-variance keys: only the
    keys' directions matter, so a bright or large memory frame cannot dominate the read."""
    eps = 1e-6
    mk = memory_keys / (jnp.linalg.norm(memory_keys, axis=-1, keepdims=True) + eps)
    qk = query_keys / (jnp.linalg.norm(query_keys, axis=-1, keepdims=True) + eps)
    return _dots(mk, qk) * math.sqrt(memory_keys.shape[-1])


def affinity(memory_keys, query_keys, similarity: str = "dot"):
    """The named similarity of every memory position with every query position, in float32.

    Args:
      memory_keys: [..., N, D]; query_keys: [..., M, D].
      similarity: a name in SIMILARITIES.
    Returns:
      [..., N, M] float32.
    """
    function = SIMILARITIES.get(similarity)
    return function(memory_keys.astype(jnp.float32), query_keys.astype(jnp.float32))
