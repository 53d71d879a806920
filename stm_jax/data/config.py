"""Default data configuration (`config.data` in the training configs).

Sources are keyed by name so a run can override one field from the command line, e.g.
`--config.data.sources.davis.root=/data/DAVIS`. A source takes part when its `ratio` is > 0; ratios are
relative mixing weights (normalised by grain). Fields other than kind/ratio go to the source's constructor.
"""

from __future__ import annotations

import ml_collections


def default_data_config() -> ml_collections.ConfigDict:
    """Stage-2 STM training data (DAVIS-2017 0.08 / YouTube-VOS 0.92, 3 frames, 384 crops).

    Returns:
      The ConfigDict; see the field comments.
    """
    c = ml_collections.ConfigDict()
    c.sources = ml_collections.ConfigDict(
        {
            "davis": {
                "kind": "davis",
                "root": "",
                "ratio": 0.08,
                "year": "2017",
                "split": "train",
                "resolution": "480p",
            },
            "youtube_vos": {"kind": "youtube_vos", "root": "", "ratio": 0.92, "split": "train"},
        }
    )
    c.batch_size = 4  # global; each process builds batch_size // process_count
    c.num_frames = 3
    c.crop_size = 384
    c.resize_shorter = 480  # frames are first brought to this shorter side (spec C.2)
    c.max_train_objects = 3  # O object slots per sample (+ background)
    c.min_object_pixels = 100  # objects smaller than this in frame 0 (after the crop) are not used
    # Max-skip curriculum in clips seen (original-video frames; YouTube-VOS uses skip // 5).
    # stm: Training-Code-of-STM, 0 -> 25, +1 every 3000 clips (750 updates at batch 4).
    # stcn: values switch at fractions of the run; total_clips 0 = train.num_steps x batch_size.
    c.max_skip = ml_collections.ConfigDict(
        {
            "kind": "stm",
            "start": 0,
            "end": 25,
            "every_clips": 3000,
            "total_clips": 0,
            "values": (5, 10, 15, 20, 25, 5),
            "fractions": (0.1, 0.2, 0.3, 0.4, 0.9),
            "value": 25,
        }
    )
    c.paste_prob = 0.5  # static images: chance of pasting 1..paste_max objects from other images
    c.paste_max = 3
    c.num_workers = 2  # grain worker processes (0: in the main process)
    c.worker_buffer_size = 2  # batches each worker prepares ahead
    c.read_threads = 2  # grain threads per process (or per worker) computing batches
    # A clip with no usable object is always redrawn (counted, never an error). Unreadable files met
    # while sampling: 'skip' (default: count, draw another record) or 'error' (stop the run).
    c.on_bad_sample = "skip"
    # Structural faults found when the sources are indexed at start-up (missing root, meta.json, a
    # listed but absent video): 'error' (default: stop before the first step) or 'skip'.
    c.on_bad_video = "error"
    c.max_retries = 20
    c.seed = 0
    return c
