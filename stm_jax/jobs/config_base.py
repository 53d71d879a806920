"""The one config base every job's config file starts from; blocks are built from the library's
dataclass defaults (`ModelConfig`, `MemoryConfig`) and default builders, so each default lives once.

    base_config(job)        job, distributed                     (what every job reads)
    model_config(job)       + model, memory                      (every job that runs STM)
    score_config()          + gt, pred and the split to score
    segment_config()        + checkpoint, data (DAVIS layout or one folder), overlays, num_devices,
                              inference (videos per step, preset, host pipeline, compile cache)
    youtubevos_config(year) + the YouTube-VOS valid layout
    train_config()          + data, train, eval, init_from, resume, resume_changed
    demo_config()           + checkpoint, data.frames/first_mask (yours), the generated video
    convert_config()        + the official .pth to convert once
    export_config()         + checkpoint, the exported step's shape and platforms, preset

A config file with variants (`get_config(arg)`, e.g. `synthetic_cpu.py:tiny`) checks its argument
with `config_variant`, so an unknown variant is refused instead of giving the full config.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections
from ml_collections import config_dict

from stm_jax.cli_errors import ConfigError
from stm_jax.data.config import default_data_config
from stm_jax.inference.dtype_preset import AUTO
from stm_jax.inference.settings import inference_block
from stm_jax.memory.config import PROTOCOL_FIELDS, MemoryConfig
from stm_jax.memory.policy import policy_option_defaults
from stm_jax.model.config import ModelConfig
from stm_jax.training.defaults import default_eval_config, default_train_config


def config_variant(arg: str, variants: tuple[str, ...], config_file: str) -> str:
    """`arg` of a config file's `get_config(arg)` if it is '' (the full config) or one of `variants`.

    Raises:
      ConfigError: an unknown variant, naming the file and the known ones.
    """
    if arg == "" or arg in variants:
        return arg
    path = Path(config_file)
    name = f"{path.parent.name}/{path.name}"
    raise ConfigError(
        f"unknown variant {arg!r} of {name}; its variants are {', '.join(variants)}. Pass "
        f"--config {name}:{variants[0]}, or --config {name} for the full config."
    )


def model_block(**overrides) -> ml_collections.ConfigDict:
    """`config.model`: the architecture (`ModelConfig` fields; 0 / '' = the family's default, so
    `--config.model.family=stcn` alone gives STCN as released)."""
    block = ml_collections.ConfigDict(ModelConfig.unresolved_defaults())
    block.update(overrides)
    return block


def memory_block(**overrides) -> ml_collections.ConfigDict:
    """`config.memory`: the read and the bank policy (`MemoryConfig` fields and defaults, every
    registered policy's options). The protocol fields (similarity, top_k, mem_every, read_previous)
    start unset: the model family's published protocol applies unless the run sets them."""
    values = MemoryConfig().to_dict()
    values.update(policy_option_defaults())
    for field in PROTOCOL_FIELDS:
        values[field] = config_dict.placeholder(type(values[field]))
    block = ml_collections.ConfigDict(values)
    block.update(overrides)
    return block


def base_config(job: str) -> ml_collections.ConfigDict:
    """Fields every job reads."""
    c = ml_collections.ConfigDict()
    c.job = job
    # Your own modules or .py files registering entries (similarities, policies, losses, dataset
    # layouts, backbones, model families), comma-separated; imported before the job runs.
    c.plugins = ""
    # Multi-host: empty coordinator_address = read JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES /
    # JAX_PROCESS_ID from the environment; none set = single process.
    c.distributed = ml_collections.ConfigDict(
        {"coordinator_address": "", "num_processes": 0, "process_id": -1, "cpu_collectives": "gloo"}
    )
    return c


def model_config(job: str) -> ml_collections.ConfigDict:
    """`base_config` plus the architecture and the memory: every job that runs STM."""
    c = base_config(job)
    c.model = model_block()
    c.memory = memory_block()
    return c


def score_config() -> ml_collections.ConfigDict:
    """The 'score' job: any method's PNGs against DAVIS ground truth."""
    c = base_config("score")
    # DAVIS root holding Annotations/<resolution>/<seq>/*.png and ImageSets/<year>/<split>.txt.
    c.gt = ""
    c.pred = ""  # predictions: <pred>/<seq>/<frame>.png (palette or grayscale ids)
    c.year = 2017  # 2016: all labels > 0 merged into one object
    c.split = "val"
    c.resolution = "480p"
    c.sequences = ""  # comma-separated subset; empty = the whole ImageSets list
    c.set_name = ""  # name in the CSV file names; empty = split
    c.num_threads = 0  # 0 = min(4, cpu count)
    c.overlays = False  # also write overlay GIFs + contact sheets (needs JPEGImages/)
    return c


def segment_config() -> ml_collections.ConfigDict:
    """The segment / evaluate jobs; dataset configs override `data`."""
    c = model_config("evaluate")  # segment, then score when the split has full annotations
    # float32 or bfloat16, whichever is measured faster on this machine (one line says which and
    # why; stm_jax.inference.dtype_preset); float32 / bfloat16 to choose.
    c.model.dtype = AUTO
    c.checkpoint = ""  # official STM_weights.pth, or a stm_jax training workdir / checkpoint dir
    c.data = ml_collections.ConfigDict(
        dict(
            # a dataset layout (stm_jax.data.registry.DATASETS): 'davis' (ImageSets split),
            # 'folder' (one video: frames + first mask), 'video_folders' (no split files), yours
            layout="davis",
            root="",
            year="2017",
            split="val",
            resolution="480p",
            sequences="",  # comma-separated subset of the split; empty = all
            frames="",  # layout='folder': folder of frames (.jpg or .png, natural order)
            first_mask="",  # layout='folder': palette PNG of the first frame's objects
            # frames (e.g. '10,40') whose annotation replaces the result and is pinned in memory,
            # as Segmenter.correct does: corrections from the ground truth
            correct_frames="",
        )
    )
    c.num_devices = 0  # local devices to spread videos over; 0 = all
    # videos per compiled step (0 = 1 on CPU, from the device memory on GPU/TPU), bf16 preset,
    # decoding, compile cache
    c.inference = inference_block()
    c.overlays = False  # also write an overlay GIF/MP4 + contact sheet per sequence
    # Outputs of another job (other checkpoint, config, inputs or code) in the workdir are refused;
    # True redoes them instead.
    c.overwrite = False
    return c


def youtubevos_config(year: str) -> ml_collections.ConfigDict:
    """The YouTube-VOS valid job (submission layout + zip) for `year` ('2018' or '2019')."""
    c = segment_config()
    c.job = "youtubevos"
    c.data.root = ""
    c.data.split = "valid"
    c.data.frames_split = ""  # e.g. 'valid_all_frames' for the 30 fps release
    c.data.year = year
    return c


def train_config() -> ml_collections.ConfigDict:
    """Everything the 'train' job reads; training config files override fields.

    Resume order (big_vision): a checkpoint in the workdir -> `resume` (a training workdir or
    checkpoint directory: full state incl. optimizer and data position) -> `init_from` (weights only:
    an official STM .pth, a torchvision ResNet-50 .pth, or one of our checkpoints) -> scratch.
    """
    c = model_config("train")
    c.data = default_data_config()
    c.train = default_train_config()
    c.eval = default_eval_config()
    c.init_from = ""  # weights only: official .pth, torchvision resnet50 .pth, or our checkpoint
    c.resume = ""  # full state from another run's workdir / checkpoint directory
    # A rerun in a workdir resumes its checkpoint; settings that change the results (lr, batch,
    # model, ...) must then be those in WORKDIR/config.json unless this is True (the old file is
    # kept as config.previous-<n>.json).
    c.resume_changed = False
    return c


def demo_config() -> ml_collections.ConfigDict:
    """The 'demo' job: a generated video (or yours) with the shipped checkpoint."""
    c = model_config("demo")
    c.model.dtype = AUTO  # as the segment job
    c.workdir = "demo_out"
    c.checkpoint = ""  # empty: the shipped synthetic_cpu checkpoint
    # Your video instead of the generated one, spelled as for the segment job.
    c.data = ml_collections.ConfigDict(
        dict(
            frames="",  # a folder of your frames (then first_mask is required)
            first_mask="",  # palette PNG of the first frame's objects
        )
    )
    c.input = ""  # deprecated spelling of data.frames (accepted with a note)
    c.first_mask = ""  # deprecated spelling of data.first_mask (accepted with a note)
    # The held-out synthetic videos: a seed the training never used, the training videos' format.
    c.seed = 7
    c.num_videos = 2
    c.video = ml_collections.ConfigDict(
        dict(num_frames=24, height=64, width=96, num_objects=(1, 3))
    )
    c.memory.update(dict(mem_every=3, capacity=12))
    c.overwrite = False  # True: redo outputs of another job in the workdir
    return c


def convert_config() -> ml_collections.ConfigDict:
    """The 'convert' job: an official .pth once into a stm_jax checkpoint (no PyTorch afterwards)."""
    c = model_config("convert")
    c.workdir = "weights/stm"
    c.checkpoint = ""  # the official STM_weights.pth (or a .pt with the same keys)
    c.overwrite = False  # True: replace another converted checkpoint in the workdir
    return c


def export_config() -> ml_collections.ConfigDict:
    """The 'export' job: a checkpoint's per-frame step as a `jax.export` artifact."""
    c = model_config("export")
    c.workdir = "exported/stm"
    c.checkpoint = ""  # a converted / trained stm_jax checkpoint, or the official .pth
    c.export = ml_collections.ConfigDict(
        dict(
            height=480,  # the frame size the step takes
            width=854,
            objects=2,  # object slots (videos with fewer objects leave the rest empty)
            videos=1,  # video slots per step
            platforms="cpu,cuda,tpu",  # lowered into one artifact: any of cpu, cuda, rocm, tpu
        )
    )
    # 'accelerator' exports the bfloat16 step; the compilation cache is not used (nothing compiles).
    c.inference = ml_collections.ConfigDict(dict(preset="default", compile_cache=False))
    c.overwrite = False  # True: replace another exported step in the workdir
    return c
