"""Scoring results: per-object per-frame J/F, global DAVIS numbers, merging partials, CSV output.

Global numbers follow the official toolkit (`evaluation_method.py`): every statistic (Mean, Recall,
Decay of J and of F) is computed per object, then averaged over *all objects of all sequences*
(object-weighted, not sequence-weighted); J&F-Mean = (J-Mean + F-Mean) / 2. Averages use `math.fsum`
so they do not depend on the order of the objects: merging per-process partial results gives exactly
the single-process numbers.

CSV layout (official): `global_results-<set>.csv` with columns
J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay (one row) and
`per-sequence_results-<set>.csv` with columns Sequence,J-Mean,F-Mean and one row per object named
`<sequence>_<object id>`. The official script writes both with pandas `to_csv(index=False,
float_format="%.3f")`; we write the same bytes with the csv module ("%.3f" floats, "\\n" line ends,
minimal quoting).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stm_jax.evaluation.metrics import db_statistics
from stm_jax.io.atomic import atomic_path, write_text_atomic

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


@dataclass(frozen=True)
class ObjectScores:
    """Per-frame scores of one object of one sequence.

    Attributes:
      sequence: sequence (video) name.
      object_id: object id in the annotation (1-based).
      j: (n,) float64 J over the evaluated frames (first and last frame excluded).
      f: (n,) float64 F over the same frames.
    """

    sequence: str
    object_id: int
    j: np.ndarray
    f: np.ndarray

    @property
    def name(self) -> str:
        """The official per-sequence row name `<sequence>_<object id>`."""
        return f"{self.sequence}_{self.object_id}"

    def j_statistics(self) -> tuple[float, float, float]:
        """(Mean, Recall, Decay) of J; see `metrics.db_statistics`."""
        return db_statistics(self.j)

    def f_statistics(self) -> tuple[float, float, float]:
        """(Mean, Recall, Decay) of F; see `metrics.db_statistics`."""
        return db_statistics(self.f)


@dataclass(frozen=True)
class Results:
    """Scores of a set of sequences: a list of ObjectScores in sequence order, then object order."""

    objects: tuple[ObjectScores, ...]

    @property
    def sequences(self) -> list[str]:
        """Sequence names in order of first appearance."""
        return list(dict.fromkeys(o.sequence for o in self.objects))

    def global_scores(self) -> dict[str, float]:
        """The seven official global numbers (object-weighted means of per-object statistics).

        Returns:
          dict keyed by GLOBAL_COLUMNS; NaN everywhere if there are no objects.
        """
        if not self.objects:
            return {column: float("nan") for column in GLOBAL_COLUMNS}
        j_stats = np.array([o.j_statistics() for o in self.objects])
        f_stats = np.array([o.f_statistics() for o in self.objects])
        n = len(self.objects)
        j_mean, j_recall, j_decay = (math.fsum(j_stats[:, i]) / n for i in range(3))
        f_mean, f_recall, f_decay = (math.fsum(f_stats[:, i]) / n for i in range(3))
        return dict(
            zip(
                GLOBAL_COLUMNS,
                ((j_mean + f_mean) / 2, j_mean, j_recall, j_decay, f_mean, f_recall, f_decay),
                strict=True,
            )
        )

    def per_object_means(self) -> list[tuple[str, float, float]]:
        """Rows (name, J-Mean, F-Mean) of the per-sequence table, one per object."""
        return [(o.name, o.j_statistics()[0], o.f_statistics()[0]) for o in self.objects]


def merge_results(partials: Iterable[Results], order: Sequence[str] | None = None) -> Results:
    """Combines results of disjoint sequence subsets (e.g. one per process) into one Results.

    Global numbers of the merge equal those of a single run over all sequences exactly (averages are
    order-independent); per-object rows follow `order` if given, else the order of `partials`.

    Args:
      partials: Results whose sequence sets are disjoint.
      order: optional full sequence order (e.g. the ImageSets list) for the merged rows.

    Returns:
      The merged Results.

    Raises:
      ValueError: if a sequence appears in two partials, or `order` misses a scored sequence.
    """
    objects: list[ObjectScores] = []
    owner: dict[str, int] = {}
    for index, partial in enumerate(partials):
        for sequence in partial.sequences:
            if sequence in owner:
                raise ValueError(
                    f"sequence {sequence!r} is in partial results {owner[sequence]} and {index}; "
                    "each process must score a disjoint subset of sequences."
                )
            owner[sequence] = index
        objects.extend(partial.objects)
    if order is not None:
        rank = {name: i for i, name in enumerate(order)}
        missing = sorted(set(owner) - set(rank))
        if missing:
            raise ValueError(f"sequences {missing} are scored but not in `order`")
        objects.sort(key=lambda o: (rank[o.sequence], o.object_id))
    return Results(tuple(objects))


def save_results(results: Results, path: str | Path) -> Path:
    """Saves per-frame scores as JSON (floats round-trip exactly), e.g. one file per process.

    Args:
      results: scores to save.
      path: output .json file.

    Returns:
      The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"sequence": o.sequence, "object_id": o.object_id, "j": o.j.tolist(), "f": o.f.tolist()}
        for o in results.objects
    ]
    write_text_atomic(path, json.dumps({"objects": rows}))
    return path


def load_results(path: str | Path) -> Results:
    """Loads a file written by `save_results`.

    Args:
      path: the .json file.

    Returns:
      The Results, identical to the saved ones.
    """
    rows = json.loads(Path(path).read_text())["objects"]
    return Results(
        tuple(
            ObjectScores(
                r["sequence"],
                int(r["object_id"]),
                np.asarray(r["j"], dtype=np.float64),
                np.asarray(r["f"], dtype=np.float64),
            )
            for r in rows
        )
    )


def _fmt(value: float) -> str:
    # pandas float_format="%.3f" writes NaN as an empty field.
    return "" if math.isnan(value) else f"{value:.3f}"


def write_results_csv(
    results: Results, outdir: str | Path, set_name: str, source: dict[str, str] | None = None
) -> tuple[Path, Path]:
    """Writes the official `global_results-<set>.csv` and `per-sequence_results-<set>.csv`.

    Both are written atomically with the umask's mode.

    Args:
      results: scores to write.
      outdir: output folder (created if missing).
      set_name: the subset name in the file names (the official script uses its --set, e.g. 'val').
      source: extra columns appended after the official ones in the global CSV, e.g. the checkpoint
        and config fingerprint that produced the predictions (readers index columns by name).

    Returns:
      (global_csv_path, per_sequence_csv_path).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    global_path = outdir / f"global_results-{set_name}.csv"
    sequence_path = outdir / f"per-sequence_results-{set_name}.csv"
    scores = results.global_scores()
    source = dict(source or {})
    with atomic_path(global_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(GLOBAL_COLUMNS + tuple(source))
        writer.writerow([_fmt(scores[c]) for c in GLOBAL_COLUMNS] + list(source.values()))
    with atomic_path(sequence_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SEQUENCE_COLUMNS)
        for name, j_mean, f_mean in results.per_object_means():
            writer.writerow([name, _fmt(j_mean), _fmt(f_mean)])
    return global_path, sequence_path


def read_results_csv(outdir: str | Path, set_name: str) -> tuple[dict[str, float], dict]:
    """Reads back the two CSVs written by `write_results_csv` (or by the official toolkit).

    Args:
      outdir: folder holding the CSVs.
      set_name: subset name used in the file names.

    Returns:
      (global scores by column, {object row name: (J-Mean, F-Mean)}).
    """
    outdir = Path(outdir)
    with open(outdir / f"global_results-{set_name}.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
        global_scores = {c: float(row[c]) if row[c] else float("nan") for c in GLOBAL_COLUMNS}
    per_object = {}
    with open(outdir / f"per-sequence_results-{set_name}.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            per_object[row["Sequence"]] = (float(row["J-Mean"]), float(row["F-Mean"]))
    return global_scores, per_object


def format_results(results: Results, set_name: str, per_sequence: bool = True) -> str:
    """A printable table in the spirit of the official script's console output.

    Args:
      results: scores to format.
      set_name: subset name for the header.
      per_sequence: also list one row per object.

    Returns:
      The text (no trailing newline).
    """
    scores = results.global_scores()
    widths = [max(len(c), 8) for c in GLOBAL_COLUMNS]
    rule = "-" * 27
    lines = [f"{rule} Global results for {set_name} {rule}"]
    lines.append(" ".join(c.rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths, strict=True)))
    lines.append(
        " ".join(f"{scores[c]:.6f}".rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths, strict=True))
    )
    if per_sequence:
        rows = results.per_object_means()
        name_width = max([len("Sequence")] + [len(r[0]) for r in rows])
        lines.append("")
        lines.append(f"---------- Per sequence results for {set_name} ----------")
        lines.append(f"{'Sequence':>{name_width}}   J-Mean   F-Mean")
        lines.extend(f"{n:>{name_width}} {j:8.6f} {f:8.6f}" for n, j, f in rows)
    return "\n".join(lines)
