"""One video segmented frame by frame, with corrections and late objects: the loop behind the public
`stm_jax.Segmenter` and `stm_jax.inference.whole_video.segment_video`.

    stream = VideoStream(stepper, variables)
    stream.start(frame0, labels0)        # frame 0 and its objects (pinned in memory)
    probs = stream.step(frame)           # predict + memorise, one compiled call
    stream.add_objects(labels)           # objects that appear at this frame join from here on
    stream.correct(labels)               # the user's mask replaces this frame's and is pinned

`add_objects` / `correct` act on the last frame, after `step` has memorised it: they re-encode it
with the new probabilities (`Stepper.rememorize`), so the next frame reads the corrected frame.
Frames and masks are checked on the way in (`stm_jax.inference.input_checks`): a frame or mask the
step cannot use is refused with one `InputError` line instead of being cast silently.
It runs the jobs' step (`stm_jax.inference.stepper.Stepper`) with one video slot, so a video gives
the same masks here and in the segment job. Everything compiles once per frame size and object-slot
count.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from stm_jax.core import VideoState
from stm_jax.inference.input_checks import InputError, check_frame, check_mask
from stm_jax.inference.stepper import Stepper


def labels_to_probs(labels: np.ndarray, num_slots: int) -> np.ndarray:
    """[H, W] object ids -> [H, W, K] one-hot float32 (ids >= K are an error)."""
    labels = np.asarray(labels)
    if labels.max(initial=0) >= num_slots:
        raise ValueError(f"object id {labels.max()} does not fit in {num_slots} slots")
    return np.eye(num_slots, dtype=np.float32)[labels]


class StreamState(NamedTuple):
    """A stream's whole state, a pytree of arrays: save it (e.g. `jax.device_get` + np.savez of its
    leaves) and give it back to `VideoStream.state` to continue exactly where it was."""

    video: VideoState  # memory bank, valid objects, next frame index (a batch of one video)
    frame: np.ndarray  # [H, W, 3] uint8: the last frame (for corrections of it)
    probs: np.ndarray  # [H, W, K] float32: its probabilities


class VideoStream:
    """Frame-by-frame segmentation of one video at a time (see the module docstring)."""

    def __init__(self, stepper: Stepper, variables):
        self.stepper = stepper
        self.variables = variables
        self.num_slots = stepper.model_config.num_slots
        self._state: StreamState | None = None
        self.last_labels = None  # [H, W] uint8 labels of the last step (a device array)

    @property
    def num_objects(self) -> int:
        return int(self._require().video.object_valid.shape[-1])

    def _require(self) -> StreamState:
        if self._state is None:
            raise RuntimeError("call start(frame, mask) first")
        return self._state

    def _ids(self, labels, name: str = "mask") -> np.ndarray:
        """A mask for the last frame checked: [H, W] uint8 ids within the object slots."""
        return check_mask(
            labels,
            self._require().frame.shape[:2],
            self.num_objects,
            f"the {self.num_objects} object slots given to start() (pass num_objects to start() "
            "to add objects later)",
            name,
        )

    def start(self, frame, labels, num_objects: int | None = None) -> np.ndarray:
        """Frame 0 and its [H, W] object ids (0 = background). `num_objects`: object slots
        (default: the largest id); ids up to it may be added later. Returns its probabilities."""
        max_objects = self.stepper.model_config.max_objects
        frame = check_frame(frame)
        labels = check_mask(
            labels,
            frame.shape[:2],
            max_objects,
            f"model.max_objects={max_objects} (raise max_objects: the weights do not depend on it)",
        )
        num_objects = int(labels.max(initial=0)) if num_objects is None else num_objects
        if not 1 <= num_objects <= max_objects or labels.max(initial=0) > num_objects:
            raise InputError(
                f"num_objects={num_objects} must be >= 1, >= the largest id in the mask and <= "
                f"model.max_objects={max_objects} (raise max_objects: the weights do not depend on it)"
            )
        # Objects absent from frame 0 stay out of aggregation and memory until they are added.
        present = np.isin(np.arange(1, num_objects + 1), np.unique(labels))
        probs = labels_to_probs(labels, self.num_slots)
        height, width = labels.shape
        video = self.stepper.empty(self.variables, 1, height, width, num_objects)
        video = self.stepper.reset_slot(self.variables, video, np.int32(0), frame, labels, present)
        self._state = StreamState(video, frame, probs)
        self.last_labels = labels
        return probs

    def step(self, frame, given: tuple[np.ndarray, list[int]] | None = None):
        """Segments the next frame and memorises it. `given`: (labels, ids) of objects given at
        this frame inside the same compiled step (the YouTube-VOS protocol). Returns [H, W, K]
        probabilities (a device array)."""
        state = self._require()
        frame = check_frame(frame, np.shape(state.frame)[:2])
        frames, active = frame[None], np.ones((1,), bool)
        if given is None:
            labels, probs, video = self.stepper.step(self.variables, frames, state.video, active)
        else:
            given_labels, ids = given
            given_objects = np.zeros((1, self.num_objects), bool)
            given_objects[0, np.asarray(ids, int) - 1] = True
            labels, probs, video = self.stepper.step_given(
                self.variables,
                frames,
                state.video,
                active,
                self._ids(given_labels, "given mask")[None],
                given_objects,
            )
        self._state = StreamState(video, frame, probs[0])
        self.last_labels = labels[0]
        return probs[0]

    def rememorize(self, probs, pin: bool = False) -> np.ndarray:
        """Re-encodes the last frame in memory with `probs` [H, W, K] (soft or one-hot) instead of
        its own prediction; objects present in them join. pin=True keeps it permanently."""
        state = self._require()
        video = self.stepper.rememorize(
            self.variables,
            np.asarray(state.frame)[None],
            probs[None],
            state.video,
            np.full((1,), pin, bool),
            np.ones((1,), bool),
        )
        self._state = StreamState(video, state.frame, probs)
        self.last_labels = np.argmax(probs, axis=-1).astype(np.uint8)
        return probs

    def add_objects(self, labels, pin: bool = False) -> np.ndarray:
        """Objects that appear in the last frame: [H, W] ids of the new objects (others 0). Their
        masks replace the prediction where present; they are segmented from the next frame on.
        pin=True also keeps this frame in a permanent slot. Returns the new probabilities."""
        labels = self._ids(labels)
        ids = [int(i) for i in np.unique(labels) if i > 0]
        if not ids:
            raise InputError("add_objects: the mask holds no object id; give the new objects' ids.")
        tracked = [i for i in ids if np.asarray(self._require().video.object_valid)[0, i - 1]]
        if tracked:
            which = f"objects {tracked} are" if len(tracked) > 1 else f"object {tracked[0]} is"
            raise InputError(
                f"add_objects: {which} already tracked; to replace a tracked object's mask in "
                "this frame use correct(mask) with every object's id."
            )
        given = np.zeros((self.num_slots,), bool)
        given[ids] = True
        given_probs = labels_to_probs(labels, self.num_slots)
        region = np.sum(given_probs * given, axis=-1, keepdims=True)
        probs = np.asarray(self._require().probs, np.float32)
        probs = np.where(given, given_probs, probs * (1.0 - region)).astype(np.float32)
        return self.rememorize(probs, pin)

    def correct(self, labels) -> np.ndarray:
        """The user's [H, W] ids for the last frame replace its prediction (objects in it that
        were not yet tracked join), and the frame is pinned: it stays in memory for the rest of the
        video (policy in `stm_jax.memory.bank.pin_temporary`). Returns its probabilities."""
        return self.rememorize(labels_to_probs(self._ids(labels), self.num_slots), True)

    def block_until_ready(self) -> None:
        """Waits for the device work of the last call (without copying the state to the host)."""
        jax.block_until_ready(self._require().video)

    @property
    def state(self) -> StreamState:
        """The whole state as host (numpy) arrays."""
        return jax.device_get(self._require())

    @state.setter
    def state(self, state: StreamState) -> None:
        video, frame, probs = state
        self._state = StreamState(
            jax.device_put(VideoState(*video)), np.asarray(frame), np.asarray(probs)
        )
