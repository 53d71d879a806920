"""`stm_jax.Segmenter`: the public Python API for streaming video object segmentation.

    from stm_jax import Segmenter, assets

    seg = Segmenter.from_checkpoint(assets.path("synthetic_cpu"), permanent_slots=4)
    labels = seg.start(frame0, mask0)          # RGB [H, W, 3] and [H, W] ids (0 = background)
    for frame in frames:
        labels = seg.step(frame)               # [H, W] uint8 ids (or probs: return_probs=True)
    seg.add_objects(mask)                      # objects appearing in the last frame
    seg.correct(mask)                          # replace the last frame's result, pinned in memory
    snapshot = seg.state                       # a pytree of numpy arrays; seg.state = snapshot

It is `stm_jax.inference.stream.VideoStream` — the jobs' compiled step (`Stepper`) with one video
slot — plus checkpoint loading, so a video gives identical masks here and in the segment job. One
compiled step serves every frame of a given size and object-slot count. Memory settings
(`MemoryConfig` fields, e.g. eviction='long_term', capacity, permanent_slots) are keyword overrides
of `from_checkpoint`; the ones not given follow the model family's published protocol.

Inputs (checked in `stm_jax.inference.input_checks`; anything else is a one-line `InputError`):
frames are RGB [H, W, 3], uint8, or integers in 0..255, or floats in [0, 1] (scaled by 255), all
at the first frame's size; masks are [H, W] integer ids 0..N (0 = background, 255 'void' refused)
or a bool mask (one object, id 1).

`start` first checks that the per-frame step fits in the memory available (host RAM on a CPU, the
device's allocator limit on a GPU/TPU) at the video's frame size, by an estimate that compiles
nothing (`stm_jax.inference.memory_estimate`): a video that does not fit (e.g. 4K at the default
settings) is refused with one line naming the fixes. With `downscale=True` it is segmented at the
largest stride-16 size that fits instead: frames and masks given are resized down (bilinear /
nearest), and every result comes back at the input size (probabilities resized bilinearly, then
argmax for labels); `state` stays at the smaller size.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from stm_jax.inference.dtype_preset import AUTO
from stm_jax.inference.input_checks import InputError, check_frame, check_mask
from stm_jax.inference.memory_estimate import tree_bytes
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.preflight import step_memory_size
from stm_jax.inference.rescale import (
    downscale_frame,
    downscale_labels,
    upscale_probs,
    upscale_probs_full,
)
from stm_jax.inference.settings import DEFAULT_MEMORY_FRACTION
from stm_jax.inference.state_settings import check_same_settings, encode, stream_settings
from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import StreamState, VideoStream
from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.policy import policy_option_names
from stm_jax.model.config import ModelConfig
from stm_jax.plugins import load_plugins

__all__ = ["Segmenter"]

_MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}
_MEMORY_FIELDS = {f.name for f in dataclasses.fields(MemoryConfig)} - {"options"}


def _labels(probs) -> np.ndarray:
    return np.asarray(jnp.argmax(probs, axis=-1).astype(jnp.uint8))


class Segmenter:
    """Frame-by-frame segmentation of one video at a time with corrections and late objects.

    Args:
      model_config: the architecture; variables: its weights (e.g. from `load_model`).
      memory_config: the memory read and policy: a `MemoryConfig`, or a dict of its fields (unset
        ones follow the model family's protocol, as in the jobs).
      downscale: a video whose step does not fit in memory at its size is segmented at the largest
        size that fits, results resized back (False: `start` refuses it with a StepMemoryError).
      memory_fraction: the share of the available memory the step may fill.
    """

    def __init__(
        self,
        model_config: ModelConfig,
        variables,
        memory_config=None,
        downscale: bool = False,
        memory_fraction: float = DEFAULT_MEMORY_FRACTION,
    ):
        self.stepper = Stepper(model_config, memory_config or {})
        self.memory_config = self.stepper.memory_config
        self.stream = VideoStream(self.stepper, variables)
        self.downscale, self.memory_fraction = downscale, memory_fraction
        self.input_size = self.run_size = None  # (H, W) of the video, and the size it runs at

    @classmethod
    def from_checkpoint(cls, path, plugins=None, downscale: bool = False, **overrides) -> Segmenter:
        """Loads any checkpoint the jobs accept: an official STM `.pth` (architecture from the
        `ModelConfig` overrides, e.g. backbone='resnet50'), a stm_jax training workdir or a
        release export (their own architecture; only max_objects and dtype are taken).

        Overrides: `ModelConfig` fields (max_objects, dtype ('auto' by default: float32 or
        bfloat16, whichever is measured faster on this machine, said in one line), ...) and `MemoryConfig` fields
        (capacity, mem_every, eviction, permanent_slots, long_term_prototypes, ...). `plugins`:
        modules or .py files to import first (`stm_jax.plugins`), e.g. those the checkpoint was
        trained with. `downscale`: see the class."""
        load_plugins(plugins)
        memory_fields = _MEMORY_FIELDS | policy_option_names()
        unknown = set(overrides) - _MODEL_FIELDS - memory_fields
        if unknown:
            raise TypeError(
                f"unknown overrides {sorted(unknown)}; use ModelConfig or MemoryConfig fields"
            )
        model = {
            **ModelConfig.unresolved_defaults(),
            "dtype": AUTO,  # this machine's preset unless given (stm_jax.inference.dtype_preset)
            **{k: v for k, v in overrides.items() if k in _MODEL_FIELDS},
        }
        memory = {k: v for k, v in overrides.items() if k in memory_fields}
        config = ml_collections.ConfigDict(
            {"checkpoint": str(path), "model": model, "memory": memory}
        )
        model_config, variables = load_model(config)
        return cls(model_config, variables, memory, downscale=downscale)

    @property
    def model_config(self) -> ModelConfig:
        return self.stepper.model_config

    def _device(self):
        leaf = jax.tree.leaves(self.stream.variables)[0]
        devices = leaf.devices() if isinstance(leaf, jax.Array) else set()
        return next(iter(devices)) if len(devices) == 1 else jax.local_devices()[0]

    @property
    def downscaled(self) -> bool:
        return self.run_size != self.input_size

    def _small(self, labels):
        if not self.downscaled:
            return labels  # the stream checks it
        labels = np.asarray(labels)
        if tuple(labels.shape) != tuple(self.input_size):
            raise InputError(
                f"mask is {labels.shape[-1]}x{labels.shape[0]} but the video's frames are "
                f"{self.input_size[1]}x{self.input_size[0]}; give it at the frames' size."
            )
        return downscale_labels(labels, self.run_size)

    def _labels(self, probs) -> np.ndarray:
        if self.downscaled:
            return upscale_probs(probs, self.input_size, self.stream.num_objects)
        return _labels(probs)

    def start(self, frame, mask, num_objects: int | None = None) -> np.ndarray:
        """Frame 0 (RGB [H, W, 3]) and its object ids ([H, W], 0 = background, 1..N; a bool mask
        is object 1). `num_objects`: object slots (default: the largest id in `mask`); raise it to
        add objects later. Returns the mask as uint8 labels. Raises StepMemoryError if the step
        does not fit in memory at this size (unless `downscale`)."""
        # Checked at the input size, before any downscaling could hide a size mismatch.
        frame = check_frame(frame)
        max_objects = self.model_config.max_objects
        mask = check_mask(
            mask,
            frame.shape[:2],
            max_objects,
            f"model.max_objects={max_objects} (raise max_objects: the weights do not depend on it)",
        )
        height, width = mask.shape
        objects = int(mask.max(initial=0)) if num_objects is None else num_objects
        self.run_size = step_memory_size(
            self.model_config,
            self.memory_config,
            tree_bytes(self.stream.variables),
            height,
            width,
            max(1, objects),
            self._device(),
            self.memory_fraction,
            self.downscale,
            "Segmenter(..., downscale=True)",
        )
        self.input_size = (height, width)
        self.stream.start(downscale_frame(frame, self.run_size), self._small(mask), num_objects)
        return mask.astype(np.uint8)

    def step(self, frame, return_probs: bool = False) -> np.ndarray:
        """Segments the next frame (RGB [H, W, 3], the first frame's size): [H, W] uint8 ids, or
        [H, W, K] float32 probabilities."""
        if self.downscaled:  # checked at the input size, then made smaller
            frame = downscale_frame(check_frame(frame, self.input_size), self.run_size)
        probs = self.stream.step(frame)
        if not self.downscaled:
            return np.asarray(probs) if return_probs else np.asarray(self.stream.last_labels)
        if return_probs:
            return upscale_probs_full(probs, self.input_size)
        return self._labels(probs)

    def add_objects(self, mask, pin: bool = False) -> np.ndarray:
        """New objects in the last frame ([H, W] ids of the new objects, 0 elsewhere): tracked from
        the next frame on. pin=True keeps this frame permanently. Returns the frame's new labels.
        An id already tracked is refused: `correct` replaces tracked objects' masks."""
        return self._labels(self.stream.add_objects(self._small(np.asarray(mask)), pin))

    def correct(self, mask) -> np.ndarray:
        """Replaces the last frame's result with `mask` ([H, W] ids) and pins it in memory (see
        `MemoryConfig.permanent_slots`). Returns the mask as labels."""
        probs = self.stream.correct(self._small(np.asarray(mask)))
        return np.asarray(mask, np.uint8) if self.downscaled else _labels(probs)

    @property
    def state(self) -> StreamState:
        """The whole state (memory bank, objects, frame counter, last frame) as numpy arrays."""
        return self.stream.state

    @state.setter
    def state(self, state: StreamState) -> None:
        self.stream.state = state

    def save_state(self, path) -> Path:
        """Writes the state to an .npz file: leaves in pytree order, the shapes it needs and the
        model and memory settings it was made with (`load_state` compares them)."""
        state = self.state
        leaves = jax.tree.leaves(state)
        path = Path(path)
        settings = encode(stream_settings(self.stepper))
        with open(path, "wb") as f:
            np.savez(f, *leaves, num_objects=self.stream.num_objects, settings=np.array(settings))
        return path

    def load_state(self, path) -> None:
        """Restores a state written by `save_state`. A state saved with other model or memory
        settings is refused with one line naming every field that differs."""
        with np.load(path) as data:
            if "settings" in data.files:  # files saved before settings were recorded have none
                check_same_settings(str(data["settings"]), stream_settings(self.stepper), path)
            count = sum(name.startswith("arr_") for name in data.files)
            leaves = [data[f"arr_{i}"] for i in range(count)]
            num_objects = int(data["num_objects"])
        frame, probs = leaves[-2], leaves[-1]
        height, width = frame.shape[:2]
        template = self.stepper.state_shape(self.stream.variables, 1, height, width, num_objects)
        treedef = jax.tree.structure(StreamState(template, frame, probs))
        self.state = jax.tree.unflatten(treedef, leaves)
        if self.run_size is None:  # a fresh Segmenter continues at the state's frame size
            self.input_size = self.run_size = (height, width)
