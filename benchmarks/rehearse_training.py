"""Full-size rehearsal of the STM and STCN training stages on generated data, with the health reports.

    python benchmarks/rehearse_training.py [--family stm|stcn|both] [--out /tmp/rehearsal]
        [--stage1-steps 5] [--stage2-steps 10] [--stcn-stage0-steps 2] [--stcn-main-steps 2]
        [--stcn-micro-batch 2]

1. Writes torchvision-layout ResNet-50 (and, for STCN, ResNet-18) `.pth` files whose BN statistics are
   calibrated on natural-statistics images (`stm_jax.convert.calibrated_resnet`: the stand-in for
   ImageNet weights).
2. Writes, in the real layouts and sizes, a saliency folder (static stages), a DAVIS-2017 train tree
   (480p) and a YouTube-VOS train tree (720p) with real-data awkwardness: videos whose only object is
   tiny in every frame, objects appearing late, ids that meta.json does not list, frames without a PNG
   (`stm_jax.data.awkward_trees`).
3. STM (`--family stm` or `both`): stage 1, `configs/pretrain_static.py` as shipped (ResNet-50, 384
   crops, batch 4, Adam 1e-5) from the `.pth`, only the data roots and the number of steps set; stage 2,
   `configs/main_davis_ytvos.py` as shipped (DAVIS 0.08 / YouTube-VOS 0.92, default data policy,
   curriculum) from stage 1, with data roots, steps, and eval off set.
4. STCN (`--family stcn` or `both`): stage 0, `configs/stcn_static.py` as shipped (ResNet-50 key and
   ResNet-18 value encoders from the two `.pth`, batch 16, 384 crops; its six static sources all read
   the saliency folder); then `configs/stcn_main.py` as shipped from stage 0's workdir (batch 8, DAVIS
   x5 + YouTube-VOS, STCN's skip curriculum), eval off. Besides roots, init_from and steps, only
   `train.accumulate` is set (batch / --stcn-micro-batch), which splits the same global batch into
   micro-batches and averages their gradients: the same update in less memory.
Every stage runs through the train job (`stm_jax.jobs.train.run`, what main.py runs). Prints the
health reports and the losses and writes them to OUT/summary.json. Measured on 2 CPU cores: see
docs/reproducing.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _Tee(io.TextIOBase):
    """Writes to the real stdout and keeps a copy: the train job's start-up line says where the
    weights came from, and the summary keeps it."""

    def __init__(self, stream):
        self.stream, self.text = stream, []

    def write(self, s):
        self.text.append(s)
        return self.stream.write(s)

    def flush(self):
        self.stream.flush()


def _records(workdir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "train/loss" in r]


def _losses(workdir: Path) -> list[tuple[int, float]]:
    # The logged train/loss is the log window's mean; with log_every=1 it is the step's loss.
    return [(r["step"], r["train/loss"]) for r in _records(workdir)]


def _run_stage(train_job, config, workdir: Path) -> dict:
    """Trains `config` in `workdir`; returns its losses, health reports, per-step health numbers,
    the start-up line (where the weights came from) and the final data counters."""
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        result = train_job.run(config, str(workdir))
    started = [line for line in "".join(tee.text).splitlines() if line.startswith("[train] ")]
    records = _records(workdir)
    keys = ("train/loss_frame2", "train/loss_frame3", "train/saturated_fraction")
    keys += ("train/grad_norm", "train/param_norm", "train/max_skip")
    return {
        "losses": _losses(workdir),
        "reports": result["health_reports"],
        "steps": [{"step": r["step"], **{k[6:]: r.get(k) for k in keys}} for r in records],
        "origin": started[0] if started else "",
        "data_counts": {k: v for k, v in records[-1].items() if k.startswith("train/data/")},
    }


def _stm(args, out: Path, data: Path, pth: Path, summary: dict, timings: dict) -> None:
    from configs import main_davis_ytvos, pretrain_static
    from stm_jax.jobs import train as train_job

    t0 = time.perf_counter()
    print(f"=== stage 1: configs/pretrain_static.py, {args.stage1_steps} updates ===")
    c = pretrain_static.get_config()
    c.data.sources.coco.ratio = 0.0
    c.data.sources.msra10k.update({"root": str(data / "saliency"), "ratio": 1.0})
    c.init_from = str(pth)
    c.train.update(num_steps=args.stage1_steps, log_every=1)
    _tiny(args, c)
    summary["stage1"] = _run_stage(train_job, c, out / "stage1")
    timings["stage1_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print(f"=== stage 2: configs/main_davis_ytvos.py from stage 1, {args.stage2_steps} updates ===")
    c = main_davis_ytvos.get_config()
    c.data.sources.davis.root = str(data / "DAVIS")
    c.data.sources.youtube_vos.root = str(data / "YouTubeVOS")
    c.init_from = str(out / "stage1")
    c.train.update(num_steps=args.stage2_steps, log_every=1, eval_every=0)
    _tiny(args, c)
    summary["stage2"] = _run_stage(train_job, c, out / "stage2")
    timings["stage2_s"] = time.perf_counter() - t0


def _accumulate(batch: int, micro: int) -> int:
    if micro <= 0 or batch % micro:
        raise SystemExit(f"--stcn-micro-batch {micro} must divide the batch ({batch})")
    return batch // micro


def _stcn(args, out: Path, data: Path, pths: tuple[Path, Path], summary, timings) -> None:
    from configs import stcn_main, stcn_static
    from stm_jax.jobs import train as train_job

    t0 = time.perf_counter()
    c = stcn_static.get_config()
    for source in c.data.sources.values():  # the six static datasets, ratios as shipped
        source.root = str(data / "saliency")
    c.init_from = ",".join(str(p) for p in pths)  # ResNet-50 key encoder, ResNet-18 value encoder
    c.train.update(num_steps=args.stcn_stage0_steps, log_every=1)
    _tiny(args, c)
    c.train.accumulate = _accumulate(int(c.data.batch_size), args.stcn_micro_batch)
    print(
        f"=== STCN stage 0: configs/stcn_static.py, {args.stcn_stage0_steps} updates of batch "
        f"{c.data.batch_size} (accumulate {c.train.accumulate}) ==="
    )
    summary["stcn_stage0"] = _run_stage(train_job, c, out / "stcn_stage0")
    timings["stcn_stage0_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    c = stcn_main.get_config()
    c.data.sources.davis.root = str(data / "DAVIS")
    c.data.sources.youtube_vos.root = str(data / "YouTubeVOS")
    c.init_from = str(out / "stcn_stage0")
    c.train.update(num_steps=args.stcn_main_steps, log_every=1, eval_every=0)
    _tiny(args, c)
    c.train.accumulate = _accumulate(int(c.data.batch_size), args.stcn_micro_batch)
    print(
        f"=== STCN main: configs/stcn_main.py from stage 0, {args.stcn_main_steps} updates of batch "
        f"{c.data.batch_size} (accumulate {c.train.accumulate}) ==="
    )
    summary["stcn_main"] = _run_stage(train_job, c, out / "stcn_main")
    timings["stcn_main_s"] = time.perf_counter() - t0


def _tiny(args, config) -> None:
    """--tiny: the same configs and backbones at 64 px crops and batch 2, a check of the whole path
    in minutes before a full-size run."""
    if args.tiny:
        config.data.update(batch_size=2, crop_size=64, num_workers=0)
        if "resize_shorter" in config.data and config.data.resize_shorter:
            config.data.resize_shorter = 64
        config.data.min_object_pixels = 16
        config.train.progress_bar = False


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("stm", "stcn", "both"), default="both")
    parser.add_argument("--out", default="/tmp/stm_rehearsal")
    parser.add_argument("--stage1-steps", type=int, default=5)
    parser.add_argument("--stage2-steps", type=int, default=10)
    parser.add_argument("--stcn-stage0-steps", type=int, default=2)
    parser.add_argument("--stcn-main-steps", type=int, default=2)
    parser.add_argument(
        "--stcn-micro-batch", type=int, default=2, help="clips per micro-batch (train.accumulate)"
    )
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import jax
    from absl import flags

    flags.FLAGS(sys.argv[:1])  # grain's worker processes read absl flags (main.py parses them too)
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(out / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

    from stm_jax.convert.calibrated_resnet import save_calibrated_resnet
    from stm_jax.data import awkward_trees

    families = ("stm", "stcn") if args.family == "both" else (args.family,)
    size = 64 if args.tiny else 224
    scale = 6 if args.tiny else 1  # --tiny: trees at 1/6 of the real sizes
    start = time.perf_counter()
    timings = {}
    pths = {
        "resnet50": out / "resnet50_calibrated.pth",
        "resnet18": out / "resnet18_calibrated.pth",
    }
    for backbone in ("resnet50", "resnet18") if "stcn" in families else ("resnet50",):
        if not pths[backbone].is_file():
            save_calibrated_resnet(pths[backbone], backbone, image_size=size, count=8)
    timings["weights_s"] = time.perf_counter() - start
    t0 = time.perf_counter()
    data = out / "data"
    if not (data / "done").is_file():
        awkward_trees.write_saliency_folder(
            data / "saliency", count=8, height=480 // scale, width=640 // scale
        )
        awkward_trees.write_davis_train(
            data / "DAVIS", num_videos=5, height=480 // scale, width=854 // scale
        )
        awkward_trees.write_youtube_vos_train(
            data / "YouTubeVOS", num_videos=8, height=720 // scale, width=1280 // scale
        )
        (data / "done").write_text("ok")
    timings["data_s"] = time.perf_counter() - t0

    summary = {}
    if "stm" in families:
        _stm(args, out, data, pths["resnet50"], summary, timings)
    if "stcn" in families:
        _stcn(args, out, data, (pths["resnet50"], pths["resnet18"]), summary, timings)
    timings["total_s"] = time.perf_counter() - start
    summary["timings"] = timings

    print("\n=== rehearsal summary ===")
    for stage in ("stage1", "stage2", "stcn_stage0", "stcn_main"):
        if stage not in summary:
            continue
        losses = ", ".join(f"{loss:.4f}" for _, loss in summary[stage]["losses"])
        print(f"{stage} losses (steps 1..): {losses}")
        print(summary[stage]["origin"])
        print("\n".join(summary[stage]["reports"][:1]))  # empty when the stage resumed finished
    for stage in ("stage2", "stcn_main"):
        if stage in summary:
            print(f"{stage} data counters:", json.dumps(summary[stage]["data_counts"]))
    print("timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
