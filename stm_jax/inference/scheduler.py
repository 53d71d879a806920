"""Feeding many videos through the batched step: buckets by frame size, slots refilled as videos end.

    tasks = [VideoTask(key, frames, first_labels, num_objects), ...]
    for task, index, labels in segment_tasks(stepper, variables, tasks, videos_per_step=8):
        write(task.key, index, labels)        # frames of one video arrive in order

Videos are grouped by frame size (a bucket); a bucket runs B = min(videos_per_step, its videos) slots
with one object-slot count O (the largest object count in the bucket, unless given), so it compiles
once. videos_per_step is a number, or a function of (variables, height, width, objects) choosing
it per bucket (`stm_jax.inference.settings.VideosPerStep`: from the device's memory). When a video
ends its slot takes the next video of the bucket at once, so the device stays full whatever the
lengths. Frames are decoded ahead on a thread pool; the host reads step t's labels only
after step t+1 has been dispatched, so the device never waits for the host to copy or write.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax.numpy as jnp
import numpy as np

from stm_jax.inference.devices import map_over_devices
from stm_jax.inference.host_pipeline import FramePrefetcher
from stm_jax.inference.stepper import Stepper


@dataclasses.dataclass
class VideoTask:
    """One video to segment.

    Attributes:
      key: the caller's name for it (returned with every output).
      frames: [H, W, 3] uint8 arrays, or zero-argument callables loading them.
      first_labels: [H, W] object ids of frame 0 (0 = background).
      num_objects: ids 1..num_objects are objects (some may be absent from frame 0).
      given_labels: {frame index: (labels [H, W], object ids)}: objects given at later frames
        (YouTube-VOS first appearances); their masks replace the prediction there.
      corrections: {frame index: labels [H, W]}: the whole result of that frame is replaced by
        these ids and the frame is pinned in memory, as `Segmenter.correct` does after `step`
        (a user's corrections, or the ground truth at chosen frames).
    """

    key: Hashable
    frames: Sequence[np.ndarray] | Sequence[Callable[[], np.ndarray]]
    first_labels: np.ndarray
    num_objects: int
    given_labels: dict[int, tuple[np.ndarray, Sequence[int]]] | None = None
    corrections: dict[int, np.ndarray] | None = None

    @property
    def size(self) -> tuple[int, int]:
        return tuple(np.shape(self.first_labels))


def buckets(tasks: Sequence[VideoTask]) -> dict[tuple[int, int], list[VideoTask]]:
    """Tasks grouped by frame size, in first-seen order (each bucket keeps the tasks' order)."""
    groups: dict[tuple[int, int], list[VideoTask]] = {}
    for task in tasks:
        groups.setdefault(task.size, []).append(task)
    return groups


def _valid_objects(labels: np.ndarray, num_objects: int, slots: int) -> np.ndarray:
    """[slots] bool: objects present in `labels` (absent and padded object slots are False)."""
    valid = np.zeros((slots,), bool)
    valid[:num_objects] = np.isin(np.arange(1, num_objects + 1), np.unique(labels))
    return valid


class _Slot:
    """The video in one slot and the index of its next frame."""

    def __init__(self, task: VideoTask, pool, ahead: int):
        self.task = task
        self.reader = FramePrefetcher(task.frames, pool, ahead)
        self.next = 1

    @property
    def done(self) -> bool:
        return self.next >= len(self.task.frames)


BatchSize = int | Callable[..., int]  # videos per step, or a function of the bucket's shape


def segment_bucket(
    stepper: Stepper,
    variables,
    tasks: Sequence[VideoTask],
    videos_per_step: BatchSize,
    objects: int | None = None,
    return_probs: bool = False,
    pool: ThreadPoolExecutor | None = None,
    prefetch: int = 4,
) -> Iterator[tuple[VideoTask, int, np.ndarray]]:
    """Segments videos of one frame size; yields (task, frame index, output) with each video's
    frames in order (frame 0 = its given mask). Output: [H, W] uint8 labels, or [H, W, K] float32
    probabilities with return_probs."""
    if not tasks:
        return
    height, width = tasks[0].size
    if any(task.size != (height, width) for task in tasks):
        raise ValueError("segment_bucket takes videos of one frame size; use segment_tasks.")
    objects = objects or max(task.num_objects for task in tasks)
    num_slots = stepper.num_slots
    if callable(videos_per_step):
        videos_per_step = videos_per_step(variables, height, width, objects)
    batch = max(1, min(videos_per_step, len(tasks)))
    waiting = deque(tasks)
    slots: list[_Slot | None] = [None] * batch
    state = stepper.empty(variables, batch, height, width, objects)
    blank = np.zeros((height, width, 3), np.uint8)

    def first_output(task):
        labels = np.asarray(task.first_labels, np.uint8)
        return np.eye(num_slots, dtype=np.float32)[labels] if return_probs else labels

    def fill(index):
        """Puts the next waiting video (with more than one frame) into slot `index`."""
        nonlocal state
        slots[index] = None
        while waiting:
            task = waiting.popleft()
            yield task, 0, first_output(task)
            if len(task.frames) < 2:
                continue
            slot = _Slot(task, pool, prefetch)
            valid = _valid_objects(task.first_labels, task.num_objects, objects)
            labels0 = np.asarray(task.first_labels, np.uint8)
            state = stepper.reset_slot(
                variables, state, np.int32(index), slot.reader.get(0), labels0, valid
            )
            slots[index] = slot
            return

    def emit(pending):
        labels, probs, owners = pending
        host = np.asarray(probs if return_probs else labels)
        for index, (task, frame_index) in owners.items():
            yield task, frame_index, host[index]

    for index in range(batch):
        yield from fill(index)
    pending = None
    while any(slot is not None for slot in slots):
        active = np.array([slot is not None for slot in slots])
        frames = np.stack([slot.reader.get(slot.next) if slot else blank for slot in slots])
        given = [(slot.task.given_labels or {}).get(slot.next) if slot else None for slot in slots]
        if any(g is not None for g in given):
            given_labels = np.zeros((batch, height, width), np.uint8)
            given_objects = np.zeros((batch, objects), bool)
            for index, item in enumerate(given):
                if item is not None:
                    given_labels[index] = item[0]
                    given_objects[index, np.asarray(item[1], int) - 1] = True
            labels, probs, state = stepper.step_given(
                variables, frames, state, active, given_labels, given_objects
            )
        else:
            labels, probs, state = stepper.step(variables, frames, state, active)
        corrected = [
            (slot.task.corrections or {}).get(slot.next) if slot else None for slot in slots
        ]
        if any(c is not None for c in corrected):
            labels, probs, state = correct_frames(
                stepper, variables, frames, labels, probs, state, corrected
            )
        owners = {i: (slot.task, slot.next) for i, slot in enumerate(slots) if slot is not None}
        for index, slot in enumerate(slots):
            if slot is not None:
                slot.next += 1
                if slot.done:
                    slot.reader.close()
                    yield from fill(index)
        if pending is not None:  # step t's outputs, read while step t+1 runs
            yield from emit(pending)
        pending = (labels, probs, owners)
    if pending is not None:
        yield from emit(pending)


def correct_frames(stepper: Stepper, variables, frames, labels, probs, state, corrected):
    """Re-memorises, pinned, the frames of the slots with a correction (`corrected`: per slot,
    [H, W] ids or None) with those ids as their result, as `VideoStream.correct` does; returns the
    batch's (labels, probs, state) with those slots corrected and the others as they were."""
    num_slots = stepper.num_slots
    which = np.array([c is not None for c in corrected])
    ids = np.zeros(frames.shape[:3], np.uint8)
    for index, item in enumerate(corrected):
        if item is not None:
            ids[index] = item
    given = np.eye(num_slots, dtype=np.float32)[ids]
    state = stepper.rememorize(variables, frames, given, state, which, which)
    labels = jnp.where(which[:, None, None], ids, labels)
    probs = jnp.where(which[:, None, None, None], given, probs)
    return labels, probs, state


def segment_tasks(
    stepper: Stepper,
    variables,
    tasks: Sequence[VideoTask],
    videos_per_step: BatchSize,
    objects: int | None = None,
    return_probs: bool = False,
    prefetch: int = 4,
    decode_threads: int = 4,
) -> Iterator[tuple[VideoTask, int, np.ndarray]]:
    """`segment_bucket` over every frame-size bucket of `tasks`, frames decoded ahead on
    `decode_threads` threads."""
    with ThreadPoolExecutor(max(1, decode_threads), thread_name_prefix="stm-decode") as pool:
        for group in buckets(tasks).values():
            yield from segment_bucket(
                stepper, variables, group, videos_per_step, objects, return_probs, pool, prefetch
            )


def segment_on_devices(
    stepper: Stepper,
    devices: Sequence,
    variables,
    tasks: Sequence[VideoTask],
    videos_per_step: BatchSize,
    emit: Callable[[VideoTask, int, np.ndarray], None],
    prefetch: int = 4,
    decode_threads: int = 4,
    return_probs: bool = False,
) -> None:
    """The jobs' entry: every bucket's videos shared over `devices` (one thread each, its own
    replica of the weights), emit(task, frame index, labels) called from those threads (with
    return_probs: [H, W, K] probabilities instead of labels).

    A bucket's object-slot count is the most objects of any of its videos, whatever the device
    count, so one device and many give the same compiled shapes (with one video per step)."""
    items = []
    count = max(1, len(devices))
    for group in buckets(tasks).values():
        objects = max(task.num_objects for task in group)
        items += [(group[i::count], objects) for i in range(count) if group[i::count]]
    with ThreadPoolExecutor(max(1, decode_threads), thread_name_prefix="stm-decode") as pool:

        def work(item, replica):
            share, objects = item
            outputs = segment_bucket(
                stepper,
                replica,
                share,
                videos_per_step,
                objects,
                return_probs=return_probs,
                pool=pool,
                prefetch=prefetch,
            )
            for task, index, labels in outputs:
                emit(task, index, labels)

        map_over_devices(devices, variables, items, work)
