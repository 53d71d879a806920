"""Job registry: maps `config.job` to the function that runs it.

Entries are 'module:function' strings so that importing one job never imports another's dependencies.
"""

from __future__ import annotations

import importlib

JOBS = {
    "segment": "stm_jax.jobs.segment:run",
    "evaluate": "stm_jax.jobs.evaluate:run",
    "score": "stm_jax.jobs.score:run",
    "youtubevos": "stm_jax.jobs.youtubevos:run",
    "train": "stm_jax.jobs.train:run",
    "demo": "stm_jax.jobs.demo:run",
    "convert": "stm_jax.jobs.convert:run",
    "export": "stm_jax.jobs.export:run",
}


def run_job(config, workdir: str | None) -> None:
    """Runs the job named by `config.job` with `workdir` (default: config.workdir or ./workdir)."""
    from stm_jax.cli_errors import ConfigError
    from stm_jax.config_checks import check_config
    from stm_jax.plugins import load_plugins

    load_plugins(config.get("plugins", ""))  # before any name is checked or looked up

    name = config.get("job")
    if name not in JOBS:
        raise ConfigError(f"config.job={name!r} is not one of {sorted(JOBS)}; fix the config file.")
    from stm_jax.training.loss import LOSSES

    check_config(config, {("train", "loss"): LOSSES})
    # Multi-host runs (config.distributed.* or JAX_COORDINATOR_ADDRESS etc.) start JAX's
    # distributed runtime before any job touches a device.
    from stm_jax.training.distributed import distributed_settings, maybe_initialize

    maybe_initialize(config.get("distributed"))
    settings = distributed_settings(config.get("distributed"))
    module_name, function_name = JOBS[name].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    workdir = workdir or config.get("workdir") or "workdir"
    from stm_jax.workdir_lock import holding

    # One writer per workdir: a second job into it is refused before it touches anything.
    with holding(workdir, name, process=settings["process_id"] if settings else 0):
        function(config, str(workdir))
