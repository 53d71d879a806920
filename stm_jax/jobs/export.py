"""The 'export' job: a checkpoint's per-frame step as a serialized `jax.export` artifact for serving.

Run:
  python main.py --config configs/export.py --workdir exported/stm --config.checkpoint=weights/stm \
      --config.export.height=480 --config.export.width=854 --config.export.objects=2
Writes into the workdir the artifact of `stm_jax/inference/export_step.py` (contract.json, the
empty / start / step functions as .jaxexport files, weights.npz), lowered for every platform of
`export.platforms` (default cpu, cuda and tpu in one artifact), and run_exported.py, a runner that
needs only jax, numpy and pillow:
  python exported/stm/run_exported.py exported/stm FRAMES_DIR FIRST_MASK.png OUT_DIR
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax

from stm_jax.cli_errors import ConfigError
from stm_jax.inference import exported_runner
from stm_jax.inference.export_step import CONTRACT_FILE, export_step, write_artifact
from stm_jax.inference.lowering import PLATFORMS
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.settings import make_stepper

RUNNER_FILE = "run_exported.py"


def export_settings(config) -> dict:
    """`config.export` checked: sizes and counts >= 1, known platforms (one-line ConfigError)."""
    e = config.export
    settings = {k: e[k] for k in ("height", "width", "objects", "videos")}
    bad = [f"export.{k}={v!r}" for k, v in settings.items() if not isinstance(v, int) or v < 1]
    if bad:
        raise ConfigError(
            f"{', '.join(bad)}: give positive integers, e.g. --{bad[0].split('=')[0]}=1."
        )
    platforms = tuple(p.strip() for p in str(e.platforms).split(",") if p.strip())
    if (
        not platforms
        or any(p not in PLATFORMS for p in platforms)
        or len(set(platforms)) < len(platforms)
    ):
        raise ConfigError(
            f"export.platforms={e.platforms!r}: give distinct names among {', '.join(PLATFORMS)}, "
            "e.g. --config.export.platforms=cpu,cuda,tpu."
        )
    return {**settings, "platforms": platforms}


def run(config, workdir: str) -> None:
    settings = export_settings(config)
    model_config, variables = load_model(config)
    if settings["objects"] > model_config.max_objects:
        raise ConfigError(
            f"export.objects={settings['objects']} but model.max_objects="
            f"{model_config.max_objects}; pass --config.model.max_objects={settings['objects']}."
        )
    stepper = make_stepper(config, model_config)
    about = {
        "family": getattr(stepper.model_config, "family", "stm"),
        "checkpoint": str(config.checkpoint),
        "model": stepper.model_config.to_dict(),
        "memory": stepper.memory_config.to_dict(),
    }
    out_dir = Path(workdir)
    artifact = export_step(
        stepper,
        variables,
        settings["videos"],
        settings["height"],
        settings["width"],
        settings["objects"],
        settings["platforms"],
        about,
    )
    existing = out_dir / CONTRACT_FILE
    if existing.is_file() and not config.get("overwrite"):
        if json.loads(existing.read_text()) != json.loads(json.dumps(artifact.contract)):
            raise ConfigError(
                f"{out_dir} holds another exported step; use a new --workdir or "
                "--config.overwrite=True."
            )
    sizes = write_artifact(artifact, out_dir)
    shutil.copyfile(exported_runner.__file__, out_dir / RUNNER_FILE)
    total = sum(sizes.values())
    listed = ", ".join(f"{name} {size / 2**20:.2f} MiB" for name, size in sizes.items())
    print(
        f"Exported the step for {', '.join(settings['platforms'])} ({settings['videos']} video "
        f"slot(s) of {settings['height']}x{settings['width']}, {settings['objects']} object "
        f"slot(s), {stepper.model_config.dtype}) into {out_dir}: {total / 2**20:.2f} MiB "
        f"({listed}). jax {jax.__version__}.\n"
        f"Run it with jax, numpy and pillow: python {out_dir / RUNNER_FILE} {out_dir} "
        "FRAMES_DIR FIRST_MASK.png OUT_DIR"
    )
