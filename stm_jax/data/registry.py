"""Builds a source from its config entry (`config.data.sources.<name>`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from stm_jax.data.davis import DavisSource
from stm_jax.data.errors import DataError
from stm_jax.data.image_sets import CocoSource, FolderImageSource, VocSource
from stm_jax.data.synthetic import SyntheticVideoSource
from stm_jax.data.youtube_vos import YouTubeVOSSource


def _tfds_video(**kwargs):
    from stm_jax.data.tfds_sources import TfdsVideoSource

    return TfdsVideoSource(**kwargs)


def _tfds_image(**kwargs):
    from stm_jax.data.tfds_sources import TfdsImageSource

    return TfdsImageSource(**kwargs)


_BUILDERS = {
    "davis": (DavisSource, True),
    "youtube_vos": (YouTubeVOSSource, True),
    "image_folder": (FolderImageSource, True),
    "voc": (VocSource, False),
    "coco": (CocoSource, False),
    "synthetic": (SyntheticVideoSource, False),
    "tfds_video": (_tfds_video, False),
    "tfds_image": (_tfds_image, False),
}


def build_source(name: str, spec: Mapping, on_bad_sample: str = "error"):
    """Builds one source.

    Args:
      name: the source's key in the config (for messages).
      spec: its entry: 'kind', 'ratio', and constructor arguments ('root', 'split', ...).
      on_bad_sample: forwarded to sources that check their index at construction.

    Returns:
      The source (len + getitem, picklable).
    """
    spec = dict(spec)
    kind = spec.pop("kind")
    spec.pop("ratio", None)
    if kind not in _BUILDERS:
        raise ValueError(f"data.sources.{name}: unknown kind {kind!r}; one of {sorted(_BUILDERS)}")
    builder, takes_policy = _BUILDERS[kind]
    if "root" in spec and not spec["root"]:
        raise DataError(f"data.sources.{name}.root is empty: set it to the {kind} folder.")
    if "root" in spec and not Path(spec["root"]).exists():
        raise DataError(
            f"data.sources.{name}.root={spec['root']}: no such folder. Set it to the {kind} folder."
        )
    if takes_policy:
        spec["on_bad_sample"] = on_bad_sample
    for key, value in list(spec.items()):
        if isinstance(value, list):
            spec[key] = tuple(value)
    return builder(**spec)
