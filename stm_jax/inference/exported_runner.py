"""Segments a folder of frames with an exported step (configs/export.py): jax, numpy and pillow only.

    python run_exported.py ARTIFACT_DIR FRAMES_DIR FIRST_MASK.png OUT_DIR

Standalone on purpose (the export job copies it into the artifact as run_exported.py): no stm_jax,
no flax. Frames (.jpg/.jpeg/.png, natural name order) must have the exported size; the mask's
values are object ids (255 = void). Writes OUT_DIR/<frame name>.png palette masks, as the segment
job does, using slot 0 of the exported video slots.
"""

import json
import re
import sys
import time
from pathlib import Path

import jax
import numpy as np
from PIL import Image, ImageOps


def natural(path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def load(artifact):
    contract = json.loads((artifact / "contract.json").read_text())
    fns = {}
    for name, about in contract["functions"].items():
        exported = jax.export.deserialize(bytearray((artifact / about["file"]).read_bytes()))
        donate = [about["inputs"].index(d) for d in about.get("donates", [])]
        fns[name] = jax.jit(exported.call, donate_argnums=donate)
    with np.load(artifact / contract["weights"]["file"]) as stored:
        weights = jax.device_put([stored[f"w{i:05d}"] for i in range(contract["weights"]["count"])])
    return contract, fns, weights


def write_mask(path, labels, palette):
    image = Image.fromarray(labels, mode="P")
    image.putpalette(palette)
    image.save(path)


def main(artifact, frames_dir, first_mask, out_dir):
    contract, fns, weights = load(Path(artifact))
    size, videos = (contract["height"], contract["width"]), contract["videos"]
    paths = sorted(
        (p for p in Path(frames_dir).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
        key=natural,
    )
    paths = [p for p in paths if not p.name.startswith(".")]

    def read(path):
        frame = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        if frame.shape[:2] != size:
            sys.exit(f"{path}: frames must be {size[1]}x{size[0]} (exported)")
        return frame

    mask = Image.open(first_mask)
    labels = np.asarray(mask, np.uint8)
    labels = np.where(labels == 255, 0, labels).astype(np.uint8)
    objects = np.arange(1, contract["objects"] + 1)
    if labels.shape != size or labels.max() > objects.size:
        sys.exit(f"{first_mask}: needs {size[1]}x{size[0]} and ids <= {objects.size} (exported)")
    palette = mask.getpalette() or [v for i in range(256) for v in (i, i, i)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = fns["empty"]()
    state = fns["start"](
        weights, state, np.int32(0), read(paths[0]), labels, np.isin(objects, labels)
    )
    write_mask(out_dir / f"{paths[0].stem}.png", labels, palette)
    active, pending = np.arange(videos) == 0, None
    for index, path in enumerate(paths[1:]):
        if index == 1:
            start = time.perf_counter()  # frames 2.. (the first step compiles)
        frames = np.zeros((videos, *size, 3), np.uint8)  # new each step: jax may alias it
        frames[0] = read(path)  # decoded while the previous step runs
        out, _, state = fns["step"](weights, frames, state, active)
        if pending:  # the previous frame's mask, written while this step runs
            write_mask(out_dir / f"{pending[0].stem}.png", np.asarray(pending[1][0]), palette)
        pending = (path, out)
    if pending:
        write_mask(out_dir / f"{pending[0].stem}.png", np.asarray(pending[1][0]), palette)
    if len(paths) > 3:
        rate = (len(paths) - 2) / (time.perf_counter() - start)
        print(f"{len(paths)} frames segmented into {out_dir}; {rate:.1f} frames/s after the first")


if __name__ == "__main__":
    main(*sys.argv[1:5])
