"""Built-in backbones; every module here registers its entries in `stm_jax.model.backbone.BACKBONES`."""
