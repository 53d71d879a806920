"""Dataset layouts; every module here registers its layouts in `stm_jax.data.registry.DATASETS`."""
