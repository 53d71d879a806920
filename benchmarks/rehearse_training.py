"""Full-size rehearsal of both STM training stages on generated data, with the health reports.

    python benchmarks/rehearse_training.py [--out /tmp/rehearsal] [--stage1-steps 5] [--stage2-steps 10]

1. Writes a torchvision-layout ResNet-50 `.pth` whose BN statistics are calibrated on natural-statistics
   images (`stm_jax.convert.calibrated_resnet`: the stand-in for ImageNet weights).
2. Writes, in the real layouts and sizes, a saliency folder (stage 1), a DAVIS-2017 train tree (480p)
   and a YouTube-VOS train tree (720p) with real-data awkwardness: videos whose only object is tiny in
   every frame, objects appearing late, ids that meta.json does not list, frames without a PNG
   (`stm_jax.data.awkward_trees`).
3. Stage 1: `configs/pretrain_static.py` as shipped (ResNet-50, 384 crops, batch 4, Adam 1e-5) from the
   `.pth`; only the data roots and the number of steps are set.
4. Stage 2: `configs/main_davis_ytvos.py` as shipped (DAVIS 0.08 / YouTube-VOS 0.92, default data
   policy, curriculum), from stage 1; data roots, steps, and eval off are set.
Prints the health reports and the losses of both stages and writes them to OUT/summary.json.
Measured on 2 shared CPU cores: see docs/reproducing.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _losses(workdir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["train/loss"]) for r in rows if "train/loss" in r]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/stm_rehearsal")
    parser.add_argument("--stage1-steps", type=int, default=5)
    parser.add_argument("--stage2-steps", type=int, default=10)
    args = parser.parse_args(argv)

    import jax
    from absl import flags

    flags.FLAGS(sys.argv[:1])  # grain's worker processes read absl flags (main.py parses them too)
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(out / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

    from configs import main_davis_ytvos, pretrain_static
    from stm_jax.convert.calibrated_resnet import save_calibrated_resnet
    from stm_jax.data import awkward_trees
    from stm_jax.jobs import train as train_job

    start = time.perf_counter()
    timings = {}
    pth = out / "resnet50_calibrated.pth"
    if not pth.is_file():
        save_calibrated_resnet(pth, "resnet50", image_size=224, count=8)
    timings["weights_s"] = time.perf_counter() - start
    t0 = time.perf_counter()
    data = out / "data"
    if not (data / "done").is_file():
        awkward_trees.write_saliency_folder(data / "saliency", count=8)
        awkward_trees.write_davis_train(data / "DAVIS", num_videos=5)
        awkward_trees.write_youtube_vos_train(data / "YouTubeVOS", num_videos=8)
        (data / "done").write_text("ok")
    timings["data_s"] = time.perf_counter() - t0

    def stage1(steps: int, workdir: Path, dry_run: int = 0):
        c = pretrain_static.get_config()
        c.data.sources.coco.ratio = 0.0
        c.data.sources.msra10k.update({"root": str(data / "saliency"), "ratio": 1.0})
        c.init_from = str(pth)
        c.train.update(num_steps=steps, log_every=1, dry_run=dry_run)
        return train_job.run(c, str(workdir))

    summary = {}
    t0 = time.perf_counter()
    print(f"=== stage 1: configs/pretrain_static.py, {args.stage1_steps} updates ===")
    result1 = stage1(args.stage1_steps, out / "stage1")
    summary["stage1"] = {"losses": _losses(out / "stage1"), "reports": result1["health_reports"]}
    timings["stage1_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print(f"=== stage 2: configs/main_davis_ytvos.py from stage 1, {args.stage2_steps} updates ===")
    c = main_davis_ytvos.get_config()
    c.data.sources.davis.root = str(data / "DAVIS")
    c.data.sources.youtube_vos.root = str(data / "YouTubeVOS")
    c.init_from = str(out / "stage1")
    c.train.update(num_steps=args.stage2_steps, log_every=1, eval_every=0)
    result2 = train_job.run(c, str(out / "stage2"))
    rows = [json.loads(x) for x in (out / "stage2" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "train/loss" in r][-1]
    summary["stage2"] = {
        "losses": _losses(out / "stage2"),
        "reports": result2["health_reports"],
        "data_counts": {k: v for k, v in last.items() if k.startswith("train/data/")},
    }
    timings["stage2_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - start
    summary["timings"] = timings

    print("\n=== rehearsal summary ===")
    for stage in ("stage1", "stage2"):
        losses = ", ".join(f"{loss:.4f}" for _, loss in summary[stage]["losses"])
        print(f"{stage} losses (steps 1..): {losses}")
        print("\n".join(summary[stage]["reports"][:1]))  # empty when the stage resumed finished
    print("stage 2 data counters:", json.dumps(summary["stage2"]["data_counts"]))
    print("timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
