"""stm_jax: Space-Time Memory Networks (Oh et al., ICCV 2019) in JAX/Flax.

`stm_jax.Segmenter` (streaming segmentation with corrections and late objects) is imported lazily,
so `import stm_jax` stays light.
"""

__version__ = "0.1.0"

__all__ = ["Segmenter"]


def __getattr__(name):
    if name == "Segmenter":
        from stm_jax.segmenter import Segmenter

        return Segmenter
    raise AttributeError(f"module 'stm_jax' has no attribute {name!r}")
