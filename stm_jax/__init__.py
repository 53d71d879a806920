"""stm_jax: Space-Time Memory Networks (Oh et al., ICCV 2019) in JAX/Flax."""

__version__ = "0.1.0"
