"""The inference jobs' model: `config.checkpoint` read by `stm_jax.weights` (every source, as training's
init reads it), with the run's inference-only model switches applied."""

from __future__ import annotations

from pathlib import Path

import jax

from stm_jax.cli_errors import ConfigError
from stm_jax.inference.dtype_preset import AUTO, resolve_dtype
from stm_jax.model.config import ModelConfig
from stm_jax.weights import load_weights


def load_model(config) -> tuple[ModelConfig, dict]:
    """Returns (model config, variables on device) from `config.checkpoint`.

    A file (`.pth`, `.pt`) is read with PyTorch, recognised by its keys (STM, STCN, ...) and
    converted strictly for `config.model` (fields left at 0 / '' take the file's family defaults); a
    directory is a stm_jax checkpoint (a training workdir, a release export, or the workdir of
    configs/convert.py, which needs no PyTorch), which carries its own model config (only
    `max_objects` and `dtype` of `config.model`, which do not change the weights, are taken from the
    run config). `model.dtype='auto'` becomes this machine's preset here
    (`stm_jax.inference.dtype_preset`), so every later use, the fingerprint included, sees the
    dtype that runs.
    """
    path = config.get("checkpoint", "")
    if not path:
        raise ConfigError(
            "config.checkpoint is empty: pass --config.checkpoint=STM_weights.pth (official weights), "
            "the workdir of configs/convert.py, or a stm_jax training workdir."
        )
    model = dict(config.model)
    if "dtype" in model:
        inference = config.get("inference") or {}
        if model["dtype"] == AUTO and inference.get("preset") == "accelerator":
            model["dtype"] = "bfloat16"  # the preset chose it: no automatic choice to announce
        model["dtype"] = resolve_dtype(model["dtype"])
    weights = load_weights(path, model)
    if weights.kind == "torchvision":
        raise ConfigError(
            f"{path} is a torchvision ResNet: it holds no STM heads or decoder. Train from it "
            "(configs/pretrain_static.py, --config.init_from) and segment with the trained workdir."
        )
    model_config, variables = weights.model_config, weights.variables
    if weights.kind == "checkpoint":
        overrides = {k: model[k] for k in ("max_objects", "dtype") if k in model}
        model_config = ModelConfig(**{**model_config.to_dict(), **overrides})
        _warn_if_read_differs(Path(path), weights.meta, config.get("memory", {}), model_config)
    return model_config, jax.device_put(variables)


def _warn_if_read_differs(path: Path, meta: dict, memory, model_config: ModelConfig) -> None:
    """A checkpoint trained with one memory read and run with another still runs (the read has no
    weights), but rarely on purpose: say so. Unset fields on either side are the family's."""
    from stm_jax.memory.config import MemoryConfig
    from stm_jax.model.family import get_family

    default = get_family(model_config).memory_defaults.get("similarity", MemoryConfig.similarity)
    trained = meta.get("config", {}).get("memory", {}).get("similarity")
    trained = trained or meta.get("model", {}).get("similarity") or default  # older checkpoints
    running = memory.get("similarity") or default
    if trained != running:
        print(
            f"Warning: {path} was trained with memory.similarity={trained!r}, this run reads with "
            f"{running!r}. Pass --config.memory.similarity={trained} to read as in training."
        )
