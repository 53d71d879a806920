"""COCO instance masks without pycocotools: polygons via cv2.fillPoly, RLE decoded in numpy.

Supports polygon lists, uncompressed RLE ({'counts': [int, ...], 'size': [h, w]}) and compressed RLE
(the COCO string format, decoded as in pycocotools' rleFrString). RLE runs are column-major and
start with a run of zeros.
"""

from __future__ import annotations

import cv2
import numpy as np


def rle_string_to_counts(text: str) -> list[int]:
    """Decodes COCO's compressed RLE string into run lengths.

    Args:
      text: the 'counts' string of a compressed RLE.

    Returns:
      The run lengths.
    """
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            c = ord(text[pos]) - 48
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and (c & 0x10):
                value |= -1 << (5 * shift)
        if len(counts) > 2:  # runs after the second are stored as differences
            value += counts[-2]
        counts.append(value)
    return counts


def counts_to_rle_string(counts: list[int]) -> str:
    """Encodes run lengths as COCO's compressed RLE string (inverse of `rle_string_to_counts`)."""
    out = []
    for i, value in enumerate(counts):
        x = value - counts[i - 2] if i > 2 else value
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_to_mask(counts: list[int], height: int, width: int) -> np.ndarray:
    """Expands column-major run lengths to a bool (H, W) mask."""
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    if flat.size != height * width:
        raise ValueError(f"RLE covers {flat.size} pixels, expected {height}x{width}")
    return flat.reshape(width, height).T


def mask_to_rle_counts(mask: np.ndarray) -> list[int]:
    """Column-major run lengths of a bool mask, starting with zeros (inverse of `rle_to_mask`)."""
    flat = np.asarray(mask, bool).T.ravel()
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def segmentation_to_mask(segmentation, height: int, width: int) -> np.ndarray:
    """Decodes one COCO 'segmentation' (polygons or RLE) into a bool (H, W) mask.

    Args:
      segmentation: list of flat [x0, y0, x1, y1, ...] polygons, or an RLE dict.
      height, width: the image size.

    Returns:
      The mask.
    """
    if isinstance(segmentation, list):
        mask = np.zeros((height, width), np.uint8)
        polygons = [
            np.round(np.asarray(p, np.float64).reshape(-1, 2) * 8).astype(np.int32)
            for p in segmentation
            if len(p) >= 6
        ]
        if polygons:
            cv2.fillPoly(mask, polygons, 1, lineType=cv2.LINE_8, shift=3)
        return mask.astype(bool)
    counts = segmentation["counts"]
    h, w = segmentation.get("size", (height, width))
    if isinstance(counts, str | bytes):
        counts = rle_string_to_counts(counts.decode() if isinstance(counts, bytes) else counts)
    return rle_to_mask(list(counts), int(h), int(w))
