"""Video and image records returned by the sources: small, picklable, and read lazily.

A video source's `__getitem__` returns a `FileVideo` (paths on disk, read per sampled frame) or an
`ArrayVideo` (decoded arrays: synthetic and TFDS data). An image source returns an `ImageRecord`.
Every read checks what would otherwise give a silently wrong sample (frame/mask size mismatch,
unknown object ids, unreadable files) and raises `DataError` naming the file.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stm_jax.data.errors import DataError
from stm_jax.io.images import VOID_LABEL, ImageFileError, read_label_mask, read_rgb


def merge_labels(label: np.ndarray) -> np.ndarray:
    """DAVIS-2016 view of a multi-object mask: every id > 0 and != 255 becomes object 1."""
    return np.where((label > 0) & (label != VOID_LABEL), 1, label).astype(np.uint8)


def check_ids(label: np.ndarray, allowed: set[int] | None, where: str) -> None:
    """Raises `DataError` if `label` holds ids outside `allowed` (void 255 is always allowed).

    Args:
      label: uint8 (H, W) ids.
      allowed: the known object ids (background 0 implied), or None to accept any id.
      where: the file name for the message.
    """
    if allowed is None:
        return
    ids = set(np.unique(label).tolist()) - {0, VOID_LABEL}
    unknown = sorted(ids - allowed)
    if unknown:
        raise DataError(
            f"{where}: object ids {unknown} are not among the sequence's objects {sorted(allowed)} "
            "(ids must be those of the first-frame annotation / meta.json). Re-export the mask "
            "as a "
            "palette PNG with the dataset's ids (a JPEG-compressed or RGB-converted mask "
            "produces stray ids)."
        )


def contiguous_ids(label: np.ndarray, where: str) -> set[int]:
    """Returns the ids 1..n of a first-frame annotation, or raises if they are not contiguous.

    Args:
      label: uint8 (H, W) first-frame ids.
      where: the file name for the message.

    Returns:
      The set {1, ..., n}.
    """
    ids = sorted(set(np.unique(label).tolist()) - {0, VOID_LABEL})
    if ids != list(range(1, len(ids) + 1)):
        raise DataError(
            f"{where}: first-frame object ids {ids} are not contiguous 1..n as DAVIS requires. "
            "Renumber the objects 1..n in every annotation of this sequence."
        )
    return set(ids)


def _read_pair(frame_path: str, label_path: str | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        frame = read_rgb(frame_path)
        if label_path is None:
            raise DataError(
                f"{frame_path}: this frame has no annotation; training needs a mask for every "
                "sampled "
                "frame. Add the PNG or remove the frame."
            )
        label = read_label_mask(label_path)
    except ImageFileError as error:
        raise DataError(str(error)) from error
    if frame.shape[:2] != label.shape:
        raise DataError(
            f"{label_path}: mask size {label.shape} differs from frame {frame_path} size "
            f"{frame.shape[:2]}. Resize the mask with nearest-neighbour interpolation or use the "
            "matching resolution folder."
        )
    return frame, label


@dataclasses.dataclass(frozen=True)
class FileVideo:
    """A video on disk.

    Attributes:
      name: sequence name.
      frame_paths: one JPEG per stored frame, in temporal order.
      label_paths: the matching annotation PNG, or None where the dataset has none.
      frame_step: original-video frames between two stored frames (YouTube-VOS train: 5); the
      max-skip
        curriculum is divided by it.
      merge_objects: DAVIS-2016 view (all objects merged into id 1).
      object_ids: the known object ids (from meta.json), or None to take them from the first frame's
        annotation, which must then number them 1..n.
      object_frames: for each object id, the indices of the stored frames where it is annotated
      (YouTube-VOS
        meta.json), used to start clips where objects exist; empty if unknown.
    """

    name: str
    frame_paths: tuple[str, ...]
    label_paths: tuple[str | None, ...]
    frame_step: int = 1
    merge_objects: bool = False
    object_ids: tuple[int, ...] | None = None
    object_frames: tuple[tuple[int, tuple[int, ...]], ...] = ()

    def __len__(self) -> int:
        return len(self.frame_paths)

    def _allowed_ids(self) -> set[int] | None:
        if self.merge_objects:
            return None
        if self.object_ids is not None:
            return set(self.object_ids)
        first = self.label_paths[0]
        if first is None:
            raise DataError(
                f"{self.frame_paths[0]}: the first frame of {self.name} has no annotation. "
                "Add the first-frame PNG (it defines the objects)."
            )
        try:
            return contiguous_ids(read_label_mask(first), first)
        except ImageFileError as error:
            raise DataError(str(error)) from error

    def read(self, indices: list[int], counts: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Reads frames and masks.

        Args:
          indices: stored-frame indices.
          counts: None: ids outside the known objects raise `DataError`. A dict (training): those
            ids become background and counts['unlisted_ids'] counts the frames that held some.

        Returns:
          frames uint8 (T, H, W, 3) and labels uint8 (T, H, W) (void stays 255).
        """
        allowed = self._allowed_ids()
        frames, labels = [], []
        for i in indices:
            frame, label = _read_pair(self.frame_paths[i], self.label_paths[i])
            if self.merge_objects:
                label = merge_labels(label)
            if counts is not None and allowed is not None:
                unlisted = ~np.isin(label, [0, VOID_LABEL, *sorted(allowed)])
                if unlisted.any():
                    label = np.where(unlisted, 0, label).astype(np.uint8)
                    counts["unlisted_ids"] = counts.get("unlisted_ids", 0) + 1
            check_ids(label, allowed, str(self.label_paths[i]))
            if frames and frame.shape != frames[0].shape:
                raise DataError(
                    f"{self.frame_paths[i]}: frame size {frame.shape[:2]} differs from the "
                    "sequence's "
                    f"{frames[0].shape[:2]}. All frames of a video must have one size."
                )
            frames.append(frame)
            labels.append(label)
        return np.stack(frames), np.stack(labels)

    def frames_with_objects(self) -> list[int]:
        """Stored-frame indices where at least one object is annotated (all frames if unknown)."""
        if not self.object_frames:
            return list(range(len(self)))
        present = sorted({i for _, frames in self.object_frames for i in frames})
        return present or list(range(len(self)))


@dataclasses.dataclass(frozen=True)
class ArrayVideo:
    """A decoded video (synthetic or TFDS): frames uint8 (T, H, W, 3), labels uint8 (T, H, W)."""

    name: str
    frames: np.ndarray
    labels: np.ndarray
    frame_step: int = 1
    merge_objects: bool = False

    def __post_init__(self) -> None:
        f, m = self.frames, self.labels
        if f.ndim != 4 or f.shape[-1] != 3 or m.ndim != 3:
            raise DataError(
                f"{self.name}: frames must be (T,H,W,3) and labels (T,H,W); got {f.shape}, "
                f"{m.shape}"
            )
        if f.shape[:3] != m.shape:
            raise DataError(
                f"{self.name}: frames {f.shape[:3]} and labels {m.shape} differ in length or size. "
                "Every frame needs a mask of the same size."
            )
        if len(f) == 0:
            raise DataError(f"{self.name}: empty video (no frames).")

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Returns frames (T, H, W, 3) and labels (T, H, W) at `indices` (see `FileVideo.read`)."""
        labels = self.labels[indices]
        if self.merge_objects:
            labels = merge_labels(labels)
        else:
            check_ids(labels, contiguous_ids(self.labels[0], f"{self.name} frame 0"), self.name)
        return self.frames[indices], labels

    def frames_with_objects(self) -> list[int]:
        """All frames (decoded videos carry no per-object frame lists)."""
        return list(range(len(self)))


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """One static image with its instance ids (uint8 (H, W), 0 background, 255 void)."""

    name: str
    image: np.ndarray
    label: np.ndarray

    def __post_init__(self) -> None:
        if self.image.shape[:2] != self.label.shape:
            raise DataError(
                f"{self.name}: mask size {self.label.shape} differs from image size "
                f"{self.image.shape[:2]}. Resize the mask with nearest-neighbour interpolation."
            )


def read_image_record(
    name: str,
    image_path: str,
    label: np.ndarray | None,
    label_path: str | None = None,
    binary: bool = False,
) -> ImageRecord:
    """Reads an image (+ mask file) into an `ImageRecord`, turning file problems into `DataError`.

    Args:
      name: record name for messages.
      image_path: the image file.
      label: an already decoded mask, or None to read `label_path`.
      label_path: the mask file when `label` is None.
      binary: saliency masks (0/255 with soft edges): ids = mask > 127.

    Returns:
      The record.
    """
    try:
        image = read_rgb(image_path)
        if label is None:
            label = read_label_mask(label_path)
            if binary:
                label = (label > 127).astype(np.uint8)
    except ImageFileError as error:
        raise DataError(str(error)) from error
    if image.shape[:2] != label.shape:
        raise DataError(
            f"{label_path or name}: mask size {label.shape} differs from image {image_path} size "
            f"{image.shape[:2]}. Resize the mask with nearest-neighbour interpolation."
        )
    return ImageRecord(name, image, label)
