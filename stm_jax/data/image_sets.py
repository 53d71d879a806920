"""Static image + mask sources for the pre-training stage (spec C.1/C.2).

* `FolderImageSource`: images/ + masks/ folders paired by file stem: MSRA10K, ECSSD, DUTS, HRSOD
  (binary saliency masks, thresholded at 127) or any instance-id PNGs.
* `VocSource`: PASCAL VOC 2012 (JPEGImages/, SegmentationObject/, ImageSets/Segmentation/<split>)
  and SBD (img/, inst/*.mat, <split>.txt).
* `CocoSource`: COCO instances (annotations/instances_<split>.json, <split>/ images), crowd regions
  as void. Each returns an `ImageRecord` (uint8 ids, 0 background, 255 void).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from stm_jax.data.coco import segmentation_to_mask
from stm_jax.data.errors import DataError, SkipLog, check_on_bad_sample, handle_bad
from stm_jax.data.registry import DATASETS
from stm_jax.data.video import ImageRecord, read_image_record
from stm_jax.io.images import VOID_LABEL
from stm_jax.io.split_files import read_split_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@DATASETS.register("image_folder")
class FolderImageSource:
    """Images and masks in two folders, paired by stem.

    Args:
      root: dataset folder.
      images: image sub-folder (MSRA10K/ECSSD 'images', DUTS 'DUTS-TR-Image', HRSOD 'imgs').
      masks: mask sub-folder ('masks', 'DUTS-TR-Mask', 'gt', 'ground_truth_mask').
      binary: masks are saliency maps (0/255): object = mask > 127. False: masks hold instance ids.
      on_bad_sample: 'error' or 'skip' for images without a mask.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        images: str = "images",
        masks: str = "masks",
        binary: bool = True,
        on_bad_sample: str = "error",
    ) -> None:
        check_on_bad_sample(on_bad_sample)
        root = Path(root)
        self.binary = binary
        self.skips = SkipLog()
        image_dir, mask_dir = root / images, root / masks
        for folder in (image_dir, mask_dir):
            if not folder.is_dir():
                raise DataError(
                    f"{folder}: folder not found. Set the images/masks folder names for this "
                    "dataset."
                )
        mask_by_stem = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() == ".png"}
        self.pairs: list[tuple[str, str]] = []
        for path in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            if path.stem in mask_by_stem:
                self.pairs.append((str(path), str(mask_by_stem[path.stem])))
            else:
                error = DataError(
                    f"{path}: no mask {mask_dir / (path.stem + '.png')}. Add it or remove the "
                    "image."
                )
                handle_bad(error, str(path), on_bad_sample, self.skips)
        if not self.pairs:
            raise DataError(f"{root}: no image/mask pairs found.")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> ImageRecord:
        image, mask = self.pairs[index]
        return read_image_record(Path(image).stem, image, None, mask, binary=self.binary)


def _read_sbd_instances(path: Path) -> np.ndarray:
    import scipy.io  # only SBD needs scipy

    try:
        data = scipy.io.loadmat(str(path), squeeze_me=False)
        return np.asarray(data["GTinst"]["Segmentation"][0, 0], np.uint8)
    except Exception as error:  # scipy raises several types for broken .mat files
        raise DataError(
            f"{path}: not a readable SBD instance .mat ({error}). Re-extract SBD."
        ) from error


@DATASETS.register("voc")
class VocSource:
    """PASCAL VOC 2012 or SBD instance segmentation.

    Args:
      root: VOC2012 folder, or SBD's 'dataset' folder when `layout='sbd'`.
      split: split name ('train', 'val', 'trainval'; SBD 'train'/'val').
      layout: 'voc' or 'sbd'.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", layout: str = "voc") -> None:
        self.root = Path(root)
        self.layout = layout
        if layout == "voc":
            split_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        elif layout == "sbd":
            split_file = self.root / f"{split}.txt"
        else:
            raise ValueError(f"layout must be 'voc' or 'sbd', got {layout!r}")
        if not split_file.is_file():
            raise DataError(
                f"{split_file}: split file not found. Check the root and split ({layout} layout)."
            )
        self.ids = read_split_file(split_file)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> ImageRecord:
        name = self.ids[index]
        if self.layout == "voc":
            return read_image_record(
                name,
                str(self.root / "JPEGImages" / f"{name}.jpg"),
                None,
                str(self.root / "SegmentationObject" / f"{name}.png"),
            )
        label = _read_sbd_instances(self.root / "inst" / f"{name}.mat")
        return read_image_record(name, str(self.root / "img" / f"{name}.jpg"), label)


@DATASETS.register("coco")
class CocoSource:
    """COCO instance masks (crowd regions become void 255).

    Args:
      root: the COCO folder (annotations/ and image folders).
      split: e.g. 'train2017'.
      min_area: drop instances smaller than this many pixels (spec C.2: 2000).
      max_objects: keep at most this many (largest) instances per image.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train2017",
        min_area: float = 2000.0,
        max_objects: int = 254,
    ) -> None:
        self.root = Path(root)
        self.image_dir = self.root / split
        ann_path = self.root / "annotations" / f"instances_{split}.json"
        if not ann_path.is_file():
            raise DataError(f"{ann_path}: COCO annotation file not found. Check root and split.")
        data = json.loads(ann_path.read_text())
        per_image: dict[int, list] = {}
        for ann in data.get("annotations", []):
            if ann.get("iscrowd", 0) or ann.get("area", 0) >= min_area:
                per_image.setdefault(ann["image_id"], []).append(ann)
        self.images = []
        for info in sorted(data.get("images", []), key=lambda i: i["id"]):
            anns = [a for a in per_image.get(info["id"], []) if not a.get("iscrowd", 0)]
            if anns:
                crowd = [a["segmentation"] for a in per_image[info["id"]] if a.get("iscrowd", 0)]
                anns = sorted(anns, key=lambda a: -a.get("area", 0))[:max_objects]
                self.images.append(
                    (
                        info["file_name"],
                        info["height"],
                        info["width"],
                        [a["segmentation"] for a in anns],
                        crowd,
                    )
                )
        if not self.images:
            raise DataError(f"{ann_path}: no image has an instance of at least {min_area} px.")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> ImageRecord:
        file_name, h, w, segmentations, crowd = self.images[index]
        label = np.zeros((h, w), np.uint8)
        for segmentation in crowd:
            label[segmentation_to_mask(segmentation, h, w)] = VOID_LABEL
        for i, segmentation in enumerate(segmentations):
            label[segmentation_to_mask(segmentation, h, w)] = i + 1
        return read_image_record(file_name, str(self.image_dir / file_name), label)
