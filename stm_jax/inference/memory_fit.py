"""The jobs' frame sizes from the memory check: each bucket's step must fit before anything compiles.

    plan = fit_tasks(config, stepper, variables, tasks, device)   # StepMemoryError if one does not
    run(plan.tasks, return_probs=plan.downscaled)                 # probabilities when any is smaller
    labels = plan.labels(task, index, output)                     # [H, W] ids at the input size

A bucket (one frame size) runs its videos with the most objects of any of them, so each size is
checked with that count (`stm_jax.inference.preflight.step_memory_size`). With
`inference.downscale` the videos of a size that does not fit are segmented at a smaller one: frame 0
comes back as the input mask itself, later frames as their probabilities resized to the input size,
then the argmax (`stm_jax.inference.rescale`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stm_jax.inference.memory_estimate import tree_bytes
from stm_jax.inference.preflight import step_memory_size
from stm_jax.inference.rescale import downscaled_task, upscale_probs
from stm_jax.inference.scheduler import segment_on_devices
from stm_jax.inference.settings import DEFAULT_MEMORY_FRACTION, VideosPerStep

FLAG = "--config.inference.downscale=True"


@dataclasses.dataclass
class SizePlan:
    """The tasks to run and, by id of a downscaled task, the input-size task it stands for."""

    tasks: list
    originals: dict

    @property
    def downscaled(self) -> bool:
        return bool(self.originals)

    def labels(self, task, index: int, output) -> np.ndarray:
        """A scheduler output (labels, or probabilities when `downscaled`) as ids at the input
        size."""
        original = self.originals.get(id(task))
        if original is None:
            output = np.asarray(output)
            return np.argmax(output, axis=-1).astype(np.uint8) if self.downscaled else output
        if index == 0:
            return np.asarray(original.first_labels, np.uint8)
        return upscale_probs(output, original.size, task.num_objects)


def with_downscale(job: dict, config) -> dict:
    """A job fingerprint that says when inference.downscale is on: its masks may come from smaller
    frames, so they are not the outputs of the same job without it (absent when off, so outputs
    written before the flag existed keep their fingerprint)."""
    inference = config.get("inference") or {}
    return {**job, "downscale": True} if inference.get("downscale") else job


def fit_tasks(config, stepper, variables, tasks, device, say=print) -> SizePlan:
    """Checks every frame size of `tasks` (scheduler `VideoTask`s) against the memory of `device`;
    raises StepMemoryError for a size that does not fit unless inference.downscale is on."""
    inference = config.get("inference") or {}
    objects = {}
    for task in tasks:
        objects[task.size] = max(objects.get(task.size, 1), task.num_objects)
    weight_bytes = tree_bytes(variables)
    sizes = {
        size: step_memory_size(
            stepper.model_config,
            stepper.memory_config,
            weight_bytes,
            *size,
            count,
            device,
            float(inference.get("memory_fraction", DEFAULT_MEMORY_FRACTION)),
            bool(inference.get("downscale", False)),
            FLAG,
        )
        for size, count in objects.items()
    }
    plan = SizePlan([], {})
    for task in tasks:
        if sizes[task.size] == task.size:
            plan.tasks.append(task)
            continue
        small = downscaled_task(task, sizes[task.size])
        plan.originals[id(small)] = task
        plan.tasks.append(small)
    for size, small in sizes.items():
        if small != size:
            say(
                f"[inference] {size[1]}x{size[0]} frames segmented at {small[1]}x{small[0]} "
                "(inference.downscale: the step does not fit in memory at the input size); "
                "masks are written at the input size."
            )
    return plan


def run_plan(stepper, devices, variables, config, plan: SizePlan, emit, on_error) -> None:
    """Segments the plan's tasks on `devices` with the config's host pipeline, `emit(task, index,
    output)` per frame; `on_error(error)` runs before any failure propagates (the jobs abort their
    staging folders there, so no video is left half-written)."""
    inference = config.get("inference") or {}
    try:
        segment_on_devices(
            stepper,
            devices,
            variables,
            plan.tasks,
            VideosPerStep(config, stepper),
            emit,
            prefetch=inference.get("prefetch", 4),
            decode_threads=inference.get("decode_threads", 4),
            return_probs=plan.downscaled,
        )
    except BaseException as error:
        on_error(error)
        raise
