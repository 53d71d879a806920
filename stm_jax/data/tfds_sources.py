"""TFDS sources (ArrayRecord through `tfds.data_source`): no TensorFlow needed to read.

`tensorflow_datasets` is imported only when such a source is built, so `import stm_jax.data` stays
light. The data source is reopened lazily after pickling (grain workers), since it holds open files.
"""

from __future__ import annotations

import numpy as np

from stm_jax.data.errors import DataError
from stm_jax.data.video import ArrayVideo, ImageRecord


class _TfdsBase:
    def __init__(self, name: str, split: str, data_dir: str | None) -> None:
        self.name, self.split, self.data_dir = name, split, data_dir
        self._source = self._open()
        self._length = len(self._source)

    def _open(self):
        import tensorflow_datasets as tfds
        import tensorflow_datasets.image  # noqa: F401  (builders register lazily)
        import tensorflow_datasets.video  # noqa: F401

        try:
            return tfds.data_source(self.name, split=self.split, data_dir=self.data_dir)
        except Exception as error:  # tfds raises many types when data is missing
            raise DataError(
                f"tfds {self.name}/{self.split} (data_dir={self.data_dir}): cannot open "
                f"({error}). Prepare it "
                "once in ArrayRecord format (tfds build --file_format=array_record) on a machine "
                "with TensorFlow."
            ) from error

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_source"] = None
        return state

    def _get(self, index: int):
        if self._source is None:
            self._source = self._open()
        return self._source[index]

    def __len__(self) -> int:
        return self._length


class TfdsVideoSource(_TfdsBase):
    """A TFDS video dataset with the `davis` features (video/frames, video/segmentations, metadata).

    Args:
      name: e.g. 'davis/480p'.
      split: 'train' or 'validation'.
      data_dir: the TFDS data folder (None: the TFDS default).
    """

    def __init__(
        self, name: str = "davis/480p", split: str = "train", data_dir: str | None = None
    ) -> None:
        super().__init__(name, split, data_dir)

    def __getitem__(self, index: int) -> ArrayVideo:
        example = self._get(index)
        video = example["video"]
        meta = example.get("metadata", {})
        name = meta.get("video_name", f"{self.name}[{index}]")
        name = name.decode() if isinstance(name, bytes) else str(name)
        labels = np.asarray(video["segmentations"])
        if labels.ndim == 4:
            labels = labels[..., 0]
        return ArrayVideo(
            f"tfds:{self.name}/{name}",
            np.asarray(video["frames"], np.uint8),
            labels.astype(np.uint8),
        )


class TfdsImageSource(_TfdsBase):
    """A TFDS image dataset with an image and a mask feature.

    Args:
      name: the TFDS name.
      split: the split.
      data_dir: the TFDS data folder.
      image_key, mask_key: feature names of the RGB image and its (H, W[, 1]) mask.
      binary: object = mask > 0 (e.g. saliency); False keeps the mask's values as instance ids.
    """

    def __init__(
        self,
        name: str,
        split: str = "train",
        data_dir: str | None = None,
        image_key: str = "image",
        mask_key: str = "segmentation_mask",
        binary: bool = False,
    ) -> None:
        self.image_key, self.mask_key, self.binary = image_key, mask_key, binary
        super().__init__(name, split, data_dir)

    def __getitem__(self, index: int) -> ImageRecord:
        example = self._get(index)
        image = np.asarray(example[self.image_key], np.uint8)
        mask = np.asarray(example[self.mask_key])
        if mask.ndim == 3:
            mask = mask[..., 0]
        mask = (mask > 0).astype(np.uint8) if self.binary else mask.astype(np.uint8)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, -1)
        return ImageRecord(f"tfds:{self.name}[{index}]", image, mask)
