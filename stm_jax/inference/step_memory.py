"""Device memory of the per-frame step, from XLA's own analysis of the compiled step, and how many
videos per step fit in a budget.

    memory = step_memory(stepper, variables, height, width, objects)  # compiles 1 and 2 videos
    memory.total(videos)             # bytes of the step with that many video slots
    memory.videos_within(budget)     # the most video slots whose step fits in `budget` bytes

The count is XLA's `memory_analysis()` of the compiled step: arguments + outputs + temporaries,
less the donated state that its output reuses. It grows linearly with the video slots: the state
(the memory bank), the frames, the labels and probabilities and the temporaries of each video's
encoders, read and decoder; the weights and, in bfloat16, their casts are shared. So the step is
compiled for 1 and 2 videos, their difference is one video's bytes and the rest is shared. A single
compilation would not do: with the tiny model at 64x96 in bfloat16, one video's step (1.09 MB)
extrapolated to 5 videos over-counts XLA's 3.07 MB by 32 % (the shared casts counted 5 times); the
two-point line predicts 3.09 MB (float32: 3.177 vs 3.180 MB).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class StepMemory:
    """Bytes of the step: `shared` once (weights, their casts), plus `per_video` per video slot."""

    shared: int
    per_video: int

    def total(self, videos: int) -> int:
        return self.shared + videos * self.per_video

    def videos_within(self, budget: float) -> int:
        """The most video slots whose step fits in `budget` bytes (0 if not even one)."""
        return max(0, int((budget - self.shared) // self.per_video))

    def describe(self) -> str:
        return f"{self.shared / GIB:.2f} GiB shared + {self.per_video / GIB:.2f} GiB per video"


def compiled_bytes(compiled) -> int:
    """Device bytes of a compiled computation, by XLA's memory analysis (donated inputs once)."""
    m = compiled.memory_analysis()
    return int(
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - m.alias_size_in_bytes
    )


def step_inputs(stepper, variables, videos: int, height: int, width: int, objects: int):
    """(frames, state, active) of the step as ShapeDtypeStructs: lowering allocates nothing."""
    frames = jax.ShapeDtypeStruct((videos, height, width, 3), jnp.uint8)
    state = stepper.state_shape(variables, videos, height, width, objects)
    return frames, state, jax.ShapeDtypeStruct((videos,), jnp.bool_)


def step_bytes(stepper, variables, videos: int, height: int, width: int, objects: int) -> int:
    """XLA's count of the step compiled for `videos` slots (on the device of `variables`)."""
    inputs = step_inputs(stepper, variables, videos, height, width, objects)
    return compiled_bytes(stepper.step.lower(variables, *inputs).compile())


def step_memory(stepper, variables, height: int, width: int, objects: int) -> StepMemory:
    """The step's bytes from its compilations for 1 and 2 video slots (see the module docstring)."""
    one, two = (step_bytes(stepper, variables, b, height, width, objects) for b in (1, 2))
    per_video = max(1, two - one)
    return StepMemory(shared=max(0, one - per_video), per_video=per_video)


def device_memory(device) -> int | None:
    """Bytes the device's allocator may hand out (JAX's pool on a GPU), or None if it does not say
    (a CPU)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    limit = (stats or {}).get("bytes_limit")
    return int(limit) if limit else None
