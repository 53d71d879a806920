"""Built-in model families; every module here registers its family in `stm_jax.model.family.FAMILIES`."""
