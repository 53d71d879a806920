"""Regenerates the pictures in docs/images/ from real runs (nothing is drawn by hand).

    # from the repository root (about 3 minutes on 2 idle CPU cores)
    python -m docs.render_images [--out docs/images] [--steps 1000]

* `demo_overlay.png`: frames of the demo's overlay animation (`stm-jax --config demo`).
* `demo_sheet.png`: the demo's side-by-side sheet of its first video (frame | prediction | ground
  truth).
* `tensorboard_images.png`: TensorBoard's Images panel of a short `configs/synthetic_cpu.py` run
  (`--steps` updates from scratch, evaluated twice): the images are read back from the run's event
  file with TensorBoard's own loader (`EventAccumulator`) and laid out as the panel shows them, one
  card per tag with its step.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, check=True)


def font(size: int):
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:  # no DejaVu on this machine: PIL's own font
        return ImageFont.load_default(size)


def demo_pictures(work: Path, out: Path) -> None:
    import imageio.v3 as iio

    run("--config", "demo", "--workdir", str(work / "demo"))
    overlays = work / "demo" / "overlays"
    first = sorted(overlays.glob("*_sheet.png"))[0]
    Image.open(first).save(out / "demo_sheet.png", optimize=True)
    frames = iio.imread(overlays / first.name.replace("_sheet.png", ".gif"), index=None)
    picks = [frames[t][..., :3] for t in (0, len(frames) // 2, len(frames) - 1)]
    gap = np.full((frames.shape[1], 6, 3), 255, np.uint8)
    strip = np.concatenate([picks[0], gap, picks[1], gap, picks[2]], axis=1)
    Image.fromarray(strip).save(out / "demo_overlay.png", optimize=True)


def train_run(work: Path, steps: int) -> Path:
    workdir = work / "train"
    run(
        "--config",
        "synthetic_cpu",
        "--workdir",
        str(workdir),
        f"--config.train.num_steps={steps}",
        f"--config.train.eval_every={steps // 2}",
        "--config.train.checkpoint_every=0",
        "--config.eval.source.num_videos=4",
    )
    return workdir / "tensorboard"


def tensorboard_panel(logdir: Path, out: Path, card_width: int = 620) -> None:
    """The Images panel as TensorBoard lays it out: a card per tag, its name, the step shown."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    tags = sorted(accumulator.Tags()["images"])
    jf = {e.step: e.value for e in accumulator.Scalars("eval/J_F")}
    cards = []
    for tag in tags:
        events = accumulator.Images(tag)
        last = events[-1]
        image = Image.open(io.BytesIO(last.encoded_image_string)).convert("RGB")
        image = image.resize((card_width, round(image.height * card_width / image.width)))
        card = Image.new("RGB", (card_width + 24, image.height + 78), (255, 255, 255))
        draw = ImageDraw.Draw(card)
        draw.text((12, 10), tag, fill=(33, 33, 33), font=font(16))
        steps = ", ".join(str(e.step) for e in events)
        caption = f"Step {last.step}   (steps logged: {steps}; eval/J_F {jf.get(last.step, 0):.3f})"
        draw.text((12, 34), caption, fill=(97, 97, 97), font=font(13))
        card.paste(image, (12, 62))
        cards.append(card)
    width = sum(c.width for c in cards) + 16 * (len(cards) + 1)
    height = max(c.height for c in cards) + 76
    panel = Image.new("RGB", (width, height), (245, 245, 245))
    bar = ImageDraw.Draw(panel)
    bar.rectangle((0, 0, width, 44), fill=(245, 124, 0))  # TensorBoard's orange top bar
    bar.text((16, 11), "TensorBoard      IMAGES", fill=(255, 255, 255), font=font(18))
    x = 16
    for card in cards:
        panel.paste(card, (x, 60))
        x += card.width + 16
    panel.save(out / "tensorboard_images.png", optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--work", default="", help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work or scratch)
        demo_pictures(work, out)
        tensorboard_panel(train_run(work, args.steps), out)
    print(f"written: {sorted(p.name for p in out.glob('*.png'))}")


if __name__ == "__main__":
    main()
