"""The 'demo' job: STM on a generated video (or yours) with the small checkpoint shipped in the repo.

Run:  python main.py --config configs/demo.py
Generates a synthetic video in the DAVIS layout (textured shapes that move, occlude each other and
leave the frame), segments it with the checkpoint trained by configs/synthetic_cpu.py, writes the
masks, an overlay GIF and a side-by-side sheet (frame | prediction | ground truth) per video, scores
J&F and prints it beside the copy-the-first-frame baseline. With --config.data.frames=FRAMES_DIR
--config.data.first_mask=MASK.png (the segment job's spelling) it segments your video instead, and says
that the shipped model knows synthetic shapes only (for real videos: the official weights, converted
once with configs/convert.py). The older spellings --config.input / --config.first_mask still work,
with a deprecation note.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ml_collections

from stm_jax import assets
from stm_jax.evaluation.baselines import copy_first_frame
from stm_jax.evaluation.davis import score_davis
from stm_jax.inference.input_videos import VideoInputError
from stm_jax.io.images import read_label_mask, write_palette_png
from stm_jax.jobs.config_base import segment_config
from stm_jax.jobs.evaluate import evaluate_davis
from stm_jax.jobs.segment import list_videos, segment_videos, write_overlays

SHIPPED_CHECKPOINT = assets.path("synthetic_cpu")
DEPRECATED_SPELLINGS = {"input": "data.frames", "first_mask": "data.first_mask"}


def synthetic_only_note(frames: str, first_mask: str) -> str:
    """What the shipped checkpoint cannot do, and the command for the official weights instead."""
    return (
        "Note: the shipped checkpoint was trained on synthetic shapes only (configs/synthetic_cpu.py);"
        " on real videos its masks are poor (J&F ~0.18 measured, vs 0.11 for copying the first "
        "mask). For real videos use the official weights (STM_weights.pth from seoungwugoh/STM):\n"
        "  stm-jax --config convert --config.checkpoint=STM_weights.pth --workdir weights/stm\n"
        f"  stm-jax --config segment --config.checkpoint=weights/stm "
        f"--config.data.frames={frames} --config.data.first_mask={first_mask} --workdir OUT"
    )


def user_video(config) -> tuple[str, str]:
    """(frames folder, first-frame mask) of the user's video, '' when the demo generates one.

    `data.frames` / `data.first_mask` are the spelling; the deprecated `input` / `first_mask` are
    still read, with a one-line note on stderr."""
    data = config.get("data") or {}
    given = {"data.frames": data.get("frames", ""), "data.first_mask": data.get("first_mask", "")}
    for old, new in DEPRECATED_SPELLINGS.items():
        if config.get(old):
            print(
                f"note: --config.{old} is deprecated; use --config.{new} (same meaning).",
                file=sys.stderr,
                flush=True,
            )
            given[new] = given[new] or config.get(old)
    return given["data.frames"], given["data.first_mask"]


def _run_config(config, workdir: Path, frames: str, first_mask: str) -> ml_collections.ConfigDict:
    run = segment_config()
    run.checkpoint = config.checkpoint or str(SHIPPED_CHECKPOINT)
    run.model.update(config.model)
    run.memory.update(config.memory.to_dict())  # values, not the protocol placeholders
    run.overlays = True
    run.overwrite = bool(config.get("overwrite"))
    if frames:
        run.job = "segment"
        run.data.update({"layout": "folder", "frames": frames, "first_mask": first_mask})
    else:
        from stm_jax.data.synthetic import write_synthetic_davis

        root = workdir / "demo_video"
        if not (root / "ImageSets").is_dir():
            write_synthetic_davis(
                root, num_train=0, num_val=config.num_videos, seed=config.seed, **config.video
            )
        run.data.update({"layout": "davis", "root": str(root), "year": "2017", "split": "val"})
    return run


def copy_first_frame_baseline(run, workdir: Path):
    """J&F of predicting the first-frame mask for every frame (the trivial baseline)."""
    baseline = workdir / "baseline"
    for video in list_videos(run):
        predictions = copy_first_frame(
            read_label_mask(video.first_mask_path), len(video.frame_names)
        )
        for name, prediction in zip(video.frame_names, predictions):
            write_palette_png(baseline / video.name / f"{name}.png", prediction)
    return score_davis(run.data.root, baseline, progress=False)


def run(config, workdir: str) -> None:
    workdir = Path(workdir)
    frames, first_mask = user_video(config)
    if frames and not first_mask:
        raise VideoInputError(
            "--config.data.frames needs --config.data.first_mask=MASK.png: a palette PNG of the "
            "first frame's objects (0 = background, ids 1..N)."
        )
    run_config = _run_config(config, workdir, frames, first_mask)
    if frames:
        note = synthetic_only_note(frames, first_mask)
        if not config.checkpoint:
            print(note, flush=True)
        predictions = segment_videos(run_config, workdir)
        write_overlays(list_videos(run_config), predictions, workdir / "overlays")
        print(f"\nMasks:    {predictions}\nOverlays: {workdir / 'overlays'}")
        if not config.checkpoint:
            print(note)
        return
    results = evaluate_davis(run_config, str(workdir))
    baseline = copy_first_frame_baseline(run_config, workdir)
    ours, trivial = results.global_scores(), baseline.global_scores()
    print(
        f"\nJ&F {ours['J&F-Mean']:.3f} (J {ours['J-Mean']:.3f}, F {ours['F-Mean']:.3f}); "
        f"copy-the-first-frame baseline J&F {trivial['J&F-Mean']:.3f}"
    )
    print(f"Masks:    {workdir / 'predictions'}")
    print(f"Overlays: {workdir / 'overlays'} (GIF + side-by-side sheet per video)")
    print(f"Scores:   {workdir / 'global_results-val.csv'}")
