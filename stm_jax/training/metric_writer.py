"""Training logs: JSON lines + TensorBoard scalars and images (process 0 only), and the resolved
config.

TensorBoard event files are written by tensorboardX's `SummaryWriter` (pure Python + protobuf, no
TensorFlow). Its tag rules apply: characters outside `[-/\\w.]` become `_` in TensorBoard (so the
JSONL key `eval/J&F` is the TensorBoard tag `eval/J_F`); the JSONL file keeps every key verbatim.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

# tensorboardX's background thread writes queued events to disk at least this often (and at close).
FLUSH_SECS = 5


class MetricWriter:
    """Writes `<workdir>/metrics.jsonl` (one {'step', ...} object per call) and TensorBoard events in
    `<workdir>/tensorboard/`. Inactive (no files) on processes other than 0.

    Args:
      workdir: the run folder.
      active: write anything at all (process 0).
    """

    def __init__(self, workdir, active: bool = True) -> None:
        self.active = active
        self.path = Path(workdir) / "metrics.jsonl"
        if active:
            # Imported here: tensorboardX imports torch when it is installed (dev environments),
            # which only the writing process needs to pay for.
            from tensorboardX import SummaryWriter

            self._jsonl = open(self.path, "a")
            self._events = SummaryWriter(str(Path(workdir) / "tensorboard"), flush_secs=FLUSH_SECS)

    def write(self, step: int, values: dict, prefix: str = "") -> None:
        """Logs scalars at `step` (non-numeric and non-finite values go to the JSON line only)."""
        if not self.active:
            return
        record = {"step": int(step), "time": time.time()}
        record.update({f"{prefix}{k}": v for k, v in values.items()})
        self._jsonl.write(json.dumps(record, default=float) + "\n")
        self._jsonl.flush()
        wall_time = record["time"]
        for k, v in values.items():
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v)):
                self._events.add_scalar(f"{prefix}{k}", float(v), int(step), walltime=wall_time)

    def write_images(self, step: int, images: dict, prefix: str = "") -> None:
        """Logs (H, W, 3) uint8 RGB images at `step` to TensorBoard (its Images tab), one per tag."""
        if not self.active:
            return
        for tag, image in images.items():
            self._events.add_image(f"{prefix}{tag}", image, int(step), dataformats="HWC")

    def close(self) -> None:
        """Closes the JSONL file and flushes + closes the TensorBoard event file."""
        if self.active:
            self._jsonl.close()
            self._events.close()


def read_jsonl(path) -> list[dict]:
    """Reads a metrics.jsonl file back."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def save_config(config, workdir, active: bool = True) -> Path:
    """Writes the resolved config as `<workdir>/config.json` (and .txt in ml_collections' format)."""
    path = Path(workdir) / "config.json"
    if active:
        path.write_text(config.to_json_best_effort(indent=1, sort_keys=True))
        (Path(workdir) / "config.txt").write_text(str(config))
    return path
