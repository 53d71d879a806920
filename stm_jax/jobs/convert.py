"""The 'convert' job: a released `.pth` (STM, STCN) -> a stm_jax checkpoint, once, checked key by key.

Run:
  python main.py --config configs/convert.py --config.checkpoint=STM_weights.pth --workdir weights/stm
The .pth is read with PyTorch (weights_only), its family recognised by its keys
(`stm_jax.convert.formats`) and converted strictly (every key and shape of the model); the result is saved as an orbax checkpoint in the workdir,
read back and compared array by array. Later runs take `--config.checkpoint=weights/stm` and need
no PyTorch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from stm_jax import checkpoint_io
from stm_jax.cli_errors import MissingFileError
from stm_jax.convert.common import leaves
from stm_jax.convert.torch_files import CheckpointFileError
from stm_jax.inference.fingerprint import code_version, read_fingerprint
from stm_jax.io.atomic import write_text_atomic
from stm_jax.weights import load_weights

STEP = 0
SOURCE_FILE = "source.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_converted(out_dir: Path, variables: dict, meta: dict) -> None:
    """Writes {'params'} / batch_stats / meta as step 0 of an orbax checkpoint in `out_dir`."""
    with checkpoint_io.make_manager(out_dir, keep=1, async_save=False) as manager:
        manager.save(
            STEP,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave({"params": variables["params"]}),
                batch_stats=ocp.args.StandardSave(variables["batch_stats"]),
                meta=ocp.args.JsonSave(meta),
            ),
            force=True,
        )


def verify(out_dir: Path, expected: dict) -> int:
    """Reads the checkpoint back and compares every array; returns how many were checked."""
    _, restored = checkpoint_io.load_trained_model(out_dir)
    wanted = {(c, p): leaf for c, p, leaf in leaves(expected)}
    got = {(c, p): leaf for c, p, leaf in leaves(restored)}
    bad = sorted(set(wanted) ^ set(got))
    bad += sorted(k for k in set(wanted) & set(got) if not np.array_equal(wanted[k], got[k]))
    if bad:
        names = ["/".join((c, *p)) for c, p in bad[:10]]
        raise CheckpointFileError(
            f"{out_dir}: the saved checkpoint differs from the .pth at {names}."
        )
    return len(wanted)


def run(config, workdir: str) -> None:
    source = Path(config.checkpoint or "")
    if not config.checkpoint or not source.is_file():
        raise MissingFileError(
            f"{source}: .pth file not found; pass --config.checkpoint=STM_weights.pth (download it "
            "from the official repository seoungwugoh/STM)."
        )
    out_dir = Path(workdir).absolute()
    identity = {
        "path": str(source.resolve()),
        "size": source.stat().st_size,
        "sha256": sha256_of(source),
        "model": config.model.to_dict(),
    }
    if (out_dir / str(STEP)).exists():
        if read_fingerprint(out_dir, SOURCE_FILE) == identity:
            print(f"{out_dir} already holds this .pth converted; nothing to do.")
            return
        if not config.get("overwrite"):
            raise CheckpointFileError(
                f"{out_dir} already holds another converted checkpoint; use a new --workdir or "
                "--config.overwrite=True."
            )
    weights = load_weights(source, config.model)
    if weights.kind != "official":
        raise CheckpointFileError(
            f"{source} holds a {weights.kind} model, not a released STM/STCN checkpoint; "
            "a training run takes it as --config.init_from, no conversion needed."
        )
    model_config = weights.model_config
    variables = jax.tree.map(np.asarray, weights.variables)
    meta = {
        "model": model_config.to_dict(),
        "step": STEP,
        "score": None,
        "source": identity,
        "converted_by": code_version(),
    }
    save_converted(out_dir, variables, meta)
    checked = verify(out_dir, variables)
    write_text_atomic(out_dir / SOURCE_FILE, json.dumps(identity, indent=1) + "\n")
    print(
        f"Converted {source} ({checked} arrays, each checked after reading back) into {out_dir}.\n"
        f"Use it without PyTorch: --config.checkpoint={out_dir}"
    )
