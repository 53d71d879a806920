"""Checks of the frames and masks given to the streaming API (`VideoStream`, `stm_jax.Segmenter`).

The step runs on uint8 RGB frames and uint8 object ids; anything else would be cast silently
(floats in [0, 1] become a black frame, ints above 255 wrap around). So every array is checked at
the boundary and converted only where the convention is unambiguous:

* frames: [H, W, 3] RGB. uint8 as is; other integer dtypes with values in 0..255 are cast; floats
  in [0, 1] are scaled by 255 (and rounded). Everything else is refused.
* masks: [H, W] object ids, 0 = background; integer dtypes with ids 0..N; a bool mask is one
  object (id 1). Floats, negative ids and 255 (DAVIS 'void') are refused.

A refusal is one `InputError` line naming the array, what is wrong and the fix.
"""

from __future__ import annotations

import numpy as np

from stm_jax.cli_errors import UserError

# The DAVIS annotations mark uncertain pixels with 255 ('void'); they are not an object.
VOID_ID = 255


class InputError(UserError, ValueError):
    """A frame, mask or state given to the streaming API that it cannot use; says how to fix it."""


def _size(shape) -> str:
    return f"{shape[0]}x{shape[1]}"


def check_frame(frame, size: tuple[int, int] | None = None, name: str = "frame") -> np.ndarray:
    """The frame as uint8 [H, W, 3] (see the module docstring for what is accepted).

    Args:
      frame: an array-like [H, W, 3].
      size: (H, W) the frame must have (the video's first frame), or None.
      name: how the message calls it.
    """
    frame = np.asarray(frame)
    shape = tuple(frame.shape)
    if frame.ndim == 2 or (frame.ndim == 3 and shape[-1] == 1):
        raise InputError(
            f"{name} is grayscale (shape {shape}); give RGB [H, W, 3], "
            "e.g. np.repeat(frame.reshape(H, W, 1), 3, axis=-1)."
        )
    if frame.ndim == 3 and shape[-1] == 4:
        raise InputError(f"{name} is RGBA (shape {shape}); drop the alpha channel: frame[..., :3].")
    if frame.ndim != 3 or shape[-1] != 3 or 0 in shape:
        raise InputError(f"{name} has shape {shape}; give one RGB image [H, W, 3].")
    if size is not None and shape[:2] != tuple(size):
        raise InputError(
            f"{name} is {_size(shape)} (HxW) but this video's first frame is {_size(size)}; "
            "give every frame at the first frame's size (resize it) or start() a new video."
        )
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype.kind in "iu":
        low, high = int(frame.min()), int(frame.max())
        if low < 0 or high > 255:
            raise InputError(
                f"{name} is {frame.dtype} with values in [{low}, {high}], outside 0..255; "
                "give uint8 RGB (0..255) or floats in [0, 1]."
            )
        return frame.astype(np.uint8)
    if frame.dtype.kind == "f":
        if np.isnan(frame).any():
            raise InputError(f"{name} has NaN values; give finite RGB values (uint8 or [0, 1]).")
        low, high = float(frame.min()), float(frame.max())
        if low < 0.0 or high > 1.0:
            raise InputError(
                f"{name} is {frame.dtype} with values in [{low:g}, {high:g}], outside [0, 1] "
                "(floats are scaled by 255); for 0..255 values give frame.astype(np.uint8)."
            )
        return np.rint(frame.astype(np.float32) * 255.0).astype(np.uint8)
    raise InputError(
        f"{name} has dtype {frame.dtype}; give uint8 RGB (0..255) or floats in [0, 1]."
    )


def check_mask(mask, size: tuple[int, int], max_id: int, limit: str, name: str = "mask"):
    """The mask as uint8 [H, W] object ids (see the module docstring for what is accepted).

    Args:
      mask: an array-like [H, W] of ids (0 = background) or a bool mask (one object, id 1).
      size: (H, W) of the video's frames.
      max_id: the largest id allowed; `limit` says where it comes from (for the message).
      name: how the message calls it.
    """
    mask = np.asarray(mask)
    shape = tuple(mask.shape)
    if mask.ndim != 2:
        raise InputError(
            f"{name} has shape {shape}; give [H, W] object ids (0 = background), "
            "e.g. a palette PNG read with stm_jax.io.images.read_label_mask."
        )
    if shape != tuple(size):
        raise InputError(
            f"{name} is {_size(shape)} (HxW) but the video's frames are {_size(size)}; "
            "give the mask at the frames' size."
        )
    if mask.dtype == np.bool_:
        return mask.astype(np.uint8)  # one object: id 1
    if mask.dtype.kind not in "iu":
        raise InputError(
            f"{name} has dtype {mask.dtype}; give integer object ids [H, W] (0 = background), "
            "e.g. (probability > 0.5).astype(np.uint8)."
        )
    low, high = int(mask.min(initial=0)), int(mask.max(initial=0))
    if low < 0:
        raise InputError(f"{name} has negative ids (min {low}); ids are 0 (background) to N.")
    if max_id < VOID_ID and np.any(mask == VOID_ID):
        raise InputError(
            f"{name} has id 255 (DAVIS 'void'); map it to background first: "
            "np.where(mask == 255, 0, mask) (a 0/255 binary mask is one object: mask > 0)."
        )
    if high > max_id:
        raise InputError(f"{name} has object id {high} > {limit}.")
    return mask.astype(np.uint8)
