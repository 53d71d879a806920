"""Segment a video file frame by frame with `stm_jax.Segmenter` and write an overlay video.

    # from the repository root
    python -m docs.examples.segment_video_file VIDEO FIRST_MASK.png OUT.gif \
        [--checkpoint PATH] [--eviction long_term]

VIDEO is anything imageio reads (GIF; MP4 with `pip install imageio-ffmpeg`); FIRST_MASK.png holds
the objects of the first frame as ids (palette or 8-bit grayscale PNG, 0 = background). The default
checkpoint is the small one shipped with the package (trained on synthetic videos); pass an
official STM_weights.pth (with --backbone resnet50) or a training workdir for real videos.
OUT ends in .gif, or .mp4 with imageio-ffmpeg installed.
"""

import argparse

import imageio.v3 as iio
import numpy as np

from stm_jax import Segmenter, assets
from stm_jax.evaluation.overlay import caption, overlay, write_animation
from stm_jax.evaluation.overlay_colours import choose_colours
from stm_jax.io.images import read_label_mask


def rgb(frame: np.ndarray) -> np.ndarray:
    """Any decoded frame as uint8 RGB (grayscale replicated, alpha dropped)."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    return frame[..., :3].astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video")
    parser.add_argument("first_mask")
    parser.add_argument("out")
    parser.add_argument("--checkpoint", default=str(assets.path("synthetic_cpu")))
    parser.add_argument("--backbone", default="resnet50", help="for an official .pth only")
    parser.add_argument("--eviction", default="oldest", choices=["oldest", "none", "long_term"])
    parser.add_argument("--fps", type=float, default=10.0)
    args = parser.parse_args()

    overrides = {"eviction": args.eviction}
    if args.checkpoint.endswith(".pth"):
        overrides["backbone"] = args.backbone
    segmenter = Segmenter.from_checkpoint(args.checkpoint, **overrides)
    overlays = []
    for index, frame in enumerate(iio.imiter(args.video)):
        frame = rgb(frame)
        if index == 0:
            labels = segmenter.start(frame, read_label_mask(args.first_mask))
            colours = choose_colours(frame, labels)  # unlike the objects and the scene
        else:
            labels = segmenter.step(frame)  # [H, W] uint8 object ids
        overlays.append(caption(overlay(frame, labels, colours), f"frame {index}"))
    write_animation(args.out, np.stack(overlays), fps=args.fps)
    print(f"{len(overlays)} frames segmented; overlay written to {args.out}")


if __name__ == "__main__":
    main()
