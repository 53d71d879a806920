"""Loading model weights for inference: an official `.pth` or a stm_jax training checkpoint."""

from __future__ import annotations

from pathlib import Path

import jax

from stm_jax.cli_errors import ConfigError, MissingFileError
from stm_jax.model.config import ModelConfig


def load_model(config) -> tuple[ModelConfig, dict]:
    """Returns (model config, variables on device) from `config.checkpoint`.

    A file (`.pth`, `.pt`) is read with PyTorch and converted strictly with `config.model`; a
    directory is a stm_jax checkpoint (a training workdir, a release export, or the workdir of
    configs/convert.py, which needs no PyTorch), which carries its own model config (only
    `max_objects` and `dtype` of `config.model`, which do not change the weights, are taken from the
    run config).
    """
    path = config.get("checkpoint", "")
    if not path:
        raise ConfigError(
            "config.checkpoint is empty: pass --config.checkpoint=STM_weights.pth (official weights), "
            "the workdir of configs/convert.py, or a stm_jax training workdir."
        )
    path = Path(path)
    if path.is_file():  # .pth, .pt or any other name: a PyTorch weights file
        from stm_jax.convert.official import load_official_checkpoint

        model_config = ModelConfig.from_config(config.model)
        variables = load_official_checkpoint(path, model_config)
    elif path.is_dir():
        from stm_jax.checkpoint_io import load_trained_model

        model_config, variables = load_trained_model(path)
        overrides = {k: config.model[k] for k in ("max_objects", "dtype") if k in config.model}
        model_config = ModelConfig(**{**model_config.to_dict(), **overrides})
        _warn_if_read_differs(path, config.get("memory", {}))
    else:
        raise MissingFileError(
            f"{path}: checkpoint not found; expected an official .pth/.pt file, the workdir of "
            "configs/convert.py, or a training workdir."
        )
    return model_config, jax.device_put(variables)


def _warn_if_read_differs(path: Path, memory) -> None:
    """A checkpoint trained with one memory read and run with another still runs (the read has no
    weights), but rarely on purpose: say so."""
    from stm_jax.checkpoint_io import read_meta

    meta = read_meta(path)
    trained = meta.get("config", {}).get("memory", {}).get("similarity")
    trained = trained or meta.get("model", {}).get("similarity", "dot")  # older checkpoints
    running = memory.get("similarity", "dot")
    if trained != running:
        print(
            f"Warning: {path} was trained with memory.similarity={trained!r}, this run reads with "
            f"{running!r}. Pass --config.memory.similarity={trained} to read as in training."
        )
