"""DAVIS semi-supervised scoring of predicted PNG folders (or in-memory label maps) against GT.

Protocol (official DAVIS 2017 toolkit, semi-supervised task):
* Objects: ids 1..K with K = max id of the *first* ground-truth frame (after void -> background); GT
  ids above K in later frames are ignored (background for every object).
* Void: GT label 255 is set to background before anything else, as the official reader does (its
  void mask is computed after the masks are binarised, so it never excludes any pixel).
* Evaluated frames: all but the first and the last (frames 1..N-2 of the sorted GT PNGs).
  Predictions are needed for exactly those frames, named like the GT PNGs.
* Predicted ids above K are an error (official: "there is an index higher than the number of
  objects"); an object never predicted simply gets empty masks. (The official script also stops when
  *fewer* ids are predicted than there are objects, which punishes nothing but a lost object; we
  score it as empty.)
* year=2016 (single object, DAVIS-2016 val read from a DAVIS-2017 root as in STM's `eval_DAVIS.py -y
  16`): all GT labels > 0 are merged into one object, and so are all predicted labels > 0 (so
  predictions written as 0/1 or as 0/255 both work). Unlike STM's loader, a GT 255 here counts as
  object, which also makes the original DAVIS-2016 0/255 annotations score correctly.
Layout: GT in `<root>/Annotations/<resolution>/<seq>/*.png`, sequence lists in
`<root>/ImageSets/<year>/<split>.txt`, predictions in `<pred_root>/<seq>/<frame>.png`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stm_jax.cli_errors import UserError
from stm_jax.evaluation.metrics import sequence_scores
from stm_jax.evaluation.results import ObjectScores, Results
from stm_jax.io.images import VOID_LABEL, read_label_mask
from stm_jax.io.split_files import read_split_file


class ScoringError(UserError, ValueError):
    """Inputs that cannot be scored; the message names the file and what to do."""


def read_sequence_list(
    gt_root: str | Path, year: int | str = 2017, split: str = "val"
) -> list[str]:
    """Reads `<gt_root>/ImageSets/<year>/<split>.txt` (one sequence name per line).

    Args:
      gt_root: DAVIS root folder.
      year: 2016 or 2017.
      split: 'train', 'val', ...

    Returns:
      Sequence names in file order.
    """
    path = Path(gt_root) / "ImageSets" / str(year) / f"{split}.txt"
    if not path.is_file():
        raise ScoringError(
            f"{path}: sequence list not found. Point --config.gt at the DAVIS root (the folder "
            "holding Annotations/ and ImageSets/) or check --config.year/--config.split."
        )
    return read_split_file(path)


def prepare_labels(gt: np.ndarray, pred: np.ndarray, year: int | str = 2017):
    """Applies the void and 2016-merge rules to label maps (see module docstring).

    Args:
      gt: (T, H, W) ground-truth label maps of the *whole* sequence (frame 0 defines the objects).
      pred: (T', H, W) predicted label maps of the frames to evaluate.
      year: 2017 (multi-object) or 2016 (all labels > 0 merged into object 1).

    Returns:
      (gt, pred, num_objects) with gt/pred as uint8 arrays.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if str(year) == "2016":
        return (gt > 0).astype(np.uint8), (pred > 0).astype(np.uint8), 1
    gt = np.where(gt == VOID_LABEL, 0, gt).astype(np.uint8)
    return gt, pred, int(gt[0].max(initial=0))


def score_sequence_arrays(
    name: str, gt: np.ndarray, pred: np.ndarray, year: int | str = 2017
) -> list[ObjectScores]:
    """Scores one sequence held in memory (whole-sequence GT and predictions, same frames).

    Args:
      name: sequence name.
      gt: (N, H, W) GT label maps of all N frames.
      pred: (N, H, W) predicted label maps of the same frames (frames 0 and N-1 are not used).
      year: 2017 or 2016 (see module docstring).

    Returns:
      One ObjectScores per GT object, scored on frames 1..N-2.
    """
    if np.shape(gt) != np.shape(pred):
        raise ScoringError(f"{name}: GT shape {np.shape(gt)} != prediction shape {np.shape(pred)}")
    gt, pred, num_objects = prepare_labels(gt, pred, year)
    gt, pred = gt[1:-1], pred[1:-1]
    top = int(pred.max(initial=0))
    if top > num_objects:
        raise ScoringError(
            f"{name}: predictions contain id {top} but the first GT frame has "
            f"{num_objects} objects."
        )
    j, f = sequence_scores(gt, pred, num_objects)
    return [ObjectScores(name, k + 1, j[k], f[k]) for k in range(num_objects)]


def _score_folder(gt_dir: Path, pred_dir: Path, name: str, year: int | str) -> list[ObjectScores]:
    gt_files = sorted(gt_dir.glob("*.png"))
    if not gt_files:
        raise ScoringError(
            f"{gt_dir}: no ground-truth PNGs; check --config.gt and --config.resolution."
        )
    gt = np.stack([read_label_mask(p) for p in gt_files])
    gt, _, num_objects = prepare_labels(gt, gt[:0], year)
    evaluated = gt_files[1:-1]
    pred = np.zeros((len(evaluated), *gt.shape[1:]), dtype=np.uint8)
    for t, gt_file in enumerate(evaluated):
        pred_file = pred_dir / gt_file.name
        if not pred_file.is_file():
            raise ScoringError(
                f"{pred_file}: missing prediction (needed for every GT frame but the first "
                f"and last of {name}); write one PNG per frame named like the GT."
            )
        labels = read_label_mask(pred_file)
        if labels.shape != gt.shape[1:]:
            raise ScoringError(
                f"{pred_file}: prediction size {labels.shape[1]}x{labels.shape[0]} differs "
                f"from the GT size {gt.shape[2]}x{gt.shape[1]} ({gt_file}); write predictions "
                "at GT resolution."
            )
        if str(year) == "2016":
            labels = (labels > 0).astype(np.uint8)
        elif int(labels.max(initial=0)) > num_objects:
            raise ScoringError(
                f"{pred_file}: contains object id {int(labels.max())} but {gt_files[0]} has only "
                f"{num_objects} objects (official toolkit: error). Ids must be 1..{num_objects}."
            )
        pred[t] = labels
    j, f = sequence_scores(gt[1:-1], pred, num_objects)
    return [ObjectScores(name, k + 1, j[k], f[k]) for k in range(num_objects)]


def score_davis(
    gt_root: str | Path,
    pred_root: str | Path,
    sequences: Sequence[str] | None = None,
    year: int | str = 2017,
    resolution: str = "480p",
    *,
    split: str = "val",
    num_threads: int | None = None,
    progress: bool = True,
) -> Results:
    """Scores predicted PNG folders against a DAVIS root (protocol in the module docstring).

    Args:
      gt_root: DAVIS root with Annotations/<resolution>/ and ImageSets/.
      pred_root: folder with one subfolder of PNGs per sequence.
      sequences: names to score; None reads ImageSets/<year>/<split>.txt.
      year: 2017 (multi-object) or 2016 (single merged object).
      resolution: annotation folder, '480p' or 'Full-Resolution'.
      split: subset used when `sequences` is None.
      num_threads: threads over sequences (PNG decoding and cv2 release the GIL);
        default min(4, cpu count).
      progress: show a tqdm bar over sequences.

    Returns:
      Results with one ObjectScores per object, in sequence order.

    Raises:
      ScoringError: missing or mismatching files, naming the file.
    """
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    if sequences is None:
        sequences = read_sequence_list(gt_root, year, split)
    annotations = gt_root / "Annotations" / resolution
    if not annotations.is_dir():
        raise ScoringError(f"{annotations}: not found; check --config.gt and --config.resolution.")
    folders = [(name, annotations / name, pred_root / name) for name in sequences]
    return score_folders(folders, year, num_threads=num_threads, progress=progress)


def score_folders(
    folders: Sequence[tuple[str, Path, Path]],
    year: int | str = 2017,
    *,
    num_threads: int | None = None,
    progress: bool = True,
) -> Results:
    """Scores (name, ground-truth folder, prediction folder) triples with the DAVIS protocol, in
    order (any dataset layout whose annotations are DAVIS-style palette PNGs)."""
    if not folders:  # the mean of nothing is a NaN table
        raise ScoringError("no sequences to score; check the split file or --config.sequences.")
    for name, _, pred_dir in folders:
        if not Path(pred_dir).is_dir():
            raise ScoringError(f"{pred_dir}: no prediction folder for sequence {name!r}.")

    def job(folder) -> list[ObjectScores]:
        name, gt_dir, pred_dir = folder
        return _score_folder(Path(gt_dir), Path(pred_dir), name, year)

    threads = num_threads or min(4, os.cpu_count() or 1)
    bar = tqdm(total=len(folders), desc="scoring", unit="seq", disable=not progress)
    objects: list[ObjectScores] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for scored in pool.map(job, folders):  # map keeps the sequence order
            objects.extend(scored)
            bar.update(1)
    bar.close()
    return Results(tuple(objects))
