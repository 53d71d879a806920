"""Multi-process (multi-host) start-up from the config or the environment.

`config.distributed.coordinator_address` (with num_processes, process_id) wins; otherwise the
environment variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID are used; with neither
the run is single-process. On CPU, cross-process collectives need an implementation: gloo
(`stm_jax.training.cpu_compile.use_cpu_collectives`, with the project's other CPU-only settings).
"""

from __future__ import annotations

import os

import jax

from stm_jax.training.cpu_compile import use_cpu_collectives


def distributed_settings(distributed_config) -> dict | None:
    """The arguments for `jax.distributed.initialize`, or None for a single-process run."""
    d = distributed_config
    address = (d.get("coordinator_address") if d else "") or os.environ.get(
        "JAX_COORDINATOR_ADDRESS", ""
    )
    if not address:
        return None
    num = int((d.get("num_processes") if d else 0) or os.environ.get("JAX_NUM_PROCESSES", 0))
    pid = d.get("process_id", -1) if d else -1
    pid = int(pid if pid is not None and pid >= 0 else os.environ.get("JAX_PROCESS_ID", -1))
    if num < 1 or pid < 0:
        raise ValueError(
            f"distributed: coordinator {address} given but num_processes={num}, process_id={pid}; "
            "set config.distributed.* or JAX_NUM_PROCESSES / JAX_PROCESS_ID."
        )
    return {"coordinator_address": address, "num_processes": num, "process_id": pid}


def maybe_initialize(distributed_config) -> bool:
    """Calls `jax.distributed.initialize` once if the config / environment asks for it.

    Returns:
      True when running multi-process.
    """
    settings = distributed_settings(distributed_config)
    if settings is None:
        return False
    if jax.distributed.is_initialized():
        return True
    use_cpu_collectives((distributed_config or {}).get("cpu_collectives", "gloo"))
    jax.distributed.initialize(**settings)
    return True
