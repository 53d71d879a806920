"""The dataset-layout registry (`data.sources.<name>.kind` in training, `data.layout` in the segment
and evaluate jobs) and `build_source`, which builds a training source from its config entry.

An entry is a class registered with `@DATASETS.register("name")`:
* as a training source, `Entry(**fields)` (the config entry's fields but kind/ratio; an
  `on_bad_sample` argument receives the run's policy) is a random-access sequence of records
  (`stm_jax.data.video.FileVideo` or the image records of `stm_jax.data.image_sets`): len + getitem,
  picklable;
* for the segment / evaluate jobs, the classmethod `segment_videos(data) -> list[Video]`
  (`stm_jax.io.videos.Video`: frame files + first-frame mask, `data` = `config.data`) and,
  optionally, `single_object(data) -> bool` (DAVIS-2016: all ids are one object).
An entry may offer one role only. Built-in layouts: 'davis', 'youtube_vos', 'image_folder', 'voc',
'coco', 'synthetic', 'tfds_video', 'tfds_image' (training); 'davis', 'folder', 'video_folders'
(segmenting). Add one as a file in `stm_jax/data/layouts/` or in a plugin module.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path

from stm_jax.cli_errors import ConfigError
from stm_jax.data.errors import DataError
from stm_jax.registry import Registry

DATASETS = Registry(
    "dataset layout",
    "data.sources.<name>.kind",
    builtins=(
        "stm_jax.data.davis",
        "stm_jax.data.youtube_vos",
        "stm_jax.data.image_sets",
        "stm_jax.data.synthetic",
        "stm_jax.data.layouts.*",
    ),
)


@DATASETS.register("tfds_video")
def _tfds_video(**kwargs):
    """A video dataset prepared by TensorFlow Datasets (imported only when used)."""
    from stm_jax.data.tfds_sources import TfdsVideoSource

    return TfdsVideoSource(**kwargs)


@DATASETS.register("tfds_image")
def _tfds_image(**kwargs):
    """An image segmentation dataset prepared by TensorFlow Datasets (imported only when used)."""
    from stm_jax.data.tfds_sources import TfdsImageSource

    return TfdsImageSource(**kwargs)


def build_source(name: str, spec: Mapping, on_bad_sample: str = "error"):
    """Builds one training source.

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
    builder = DATASETS.get(kind, f"data.sources.{name}.kind")
    if "root" in spec and not spec["root"]:
        raise DataError(f"data.sources.{name}.root is empty: set it to the {kind} folder.")
    if "root" in spec and not Path(spec["root"]).exists():
        raise DataError(
            f"data.sources.{name}.root={spec['root']}: no such folder. Set it to the {kind} folder."
        )
    if "on_bad_sample" in inspect.signature(builder).parameters:
        spec["on_bad_sample"] = on_bad_sample
    for key, value in list(spec.items()):
        if isinstance(value, list):
            spec[key] = tuple(value)
    return builder(**spec)


def segment_layout(name: str):
    """The layout entry that lists `data.layout`'s videos for the segment / evaluate jobs."""
    entry = DATASETS.get(name, "data.layout")
    if not hasattr(entry, "segment_videos"):
        usable = [n for n in DATASETS if hasattr(DATASETS.get(n), "segment_videos")]
        raise ConfigError(
            f"data.layout={name!r} is a training-only layout; the segment and evaluate jobs read "
            f"{', '.join(usable)}."
        )
    return entry
