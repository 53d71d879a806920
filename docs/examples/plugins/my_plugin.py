"""A plugin kept outside stm_jax: a memory similarity and a memory policy of the user's own.

    python main.py --config configs/synthetic_cpu.py --workdir runs/mine \
        --config.plugins=docs/examples/plugins/my_plugin.py \
        --config.memory.similarity=sharp_dot --config.memory.eviction=second_oldest

Checkpoints record the plugins they were trained with; segmenting one needs the same plugins.
`tests/test_plugins.py` runs exactly this file.
"""

import jax.numpy as jnp

from stm_jax.memory.policy import POLICIES, MemoryPolicy, first_working_slot
from stm_jax.memory.similarity import dot, register


@register("sharp_dot")
def sharp_dot(memory_keys, query_keys):
    """STM's affinity times 2: a sharper softmax over memory."""
    return 2.0 * dot(memory_keys, query_keys)


@POLICIES.register("second_oldest")
class SecondOldest(MemoryPolicy):
    """A full bank drops its second-oldest working frame (keeps the oldest as an anchor)."""

    def victim(self, bank):
        first = first_working_slot(bank)
        return jnp.where(bank.num_committed - first >= 2, first + 1, first)
