"""Memory bank bookkeeping: temporary slot, commits, eviction that keeps the first frame."""

import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.memory.bank import commit_temporary, init_bank, write_temporary
from stm_jax.memory.config import MemoryConfig


def frame_kv(t):
    return jnp.full((1, 2, 3), float(t)), jnp.full((1, 2, 4), float(t))


def run_protocol(num_frames, capacity, eviction="oldest", mem_every=5, chunk=2):
    """The step's bookkeeping without the network: returns the frames held when reading frame t."""
    config = MemoryConfig(capacity=capacity, eviction=eviction, chunk_frames=chunk)
    bank = init_bank(config, 1, 1, 2, 3, 4)
    bank = write_temporary(bank, *frame_kv(0), 0)
    seen = {}
    for t in range(1, num_frames):
        seen[t] = [int(i) for i in np.asarray(bank.frame_index) if i >= 0]
        assert seen[t] == [int(v) for v in np.asarray(bank.keys[0, : len(seen[t]), 0, 0])]
        if (t - 1) % mem_every == 0:
            bank = commit_temporary(bank, config)
        bank = write_temporary(bank, *frame_kv(t), t)
    return seen


def test_official_protocol_when_video_fits():
    seen = run_protocol(23, capacity=10)
    for t in range(1, 23):
        kept = [f for f in range(0, 23, 5) if f <= t - 2]
        expected = sorted(set(kept) | {t - 1})
        assert seen[t] == expected, t
        if t >= 2:
            assert len(seen[t]) == (t - 2) // 5 + 2


def test_eviction_keeps_first_and_newest_kept_frames():
    seen = run_protocol(40, capacity=4)
    assert all(len(frames) <= 4 for frames in seen.values())
    assert seen[39] == [0, 30, 35, 38]
    assert seen[26] == [0, 15, 20, 25]


def test_no_eviction_policy_keeps_the_first_frames():
    seen = run_protocol(40, capacity=4, eviction="none")
    assert seen[39] == [0, 5, 10, 38]


def test_bad_capacity_and_policy():
    with pytest.raises(ValueError, match="capacity"):
        MemoryConfig(capacity=1)
    with pytest.raises(ValueError, match=r"memory.eviction='olde' .*did you mean 'oldest'"):
        MemoryConfig(eviction="olde")
