"""Shared config blocks: the model architecture and the inference / memory protocol.

Variant configs import these and override a few fields.
"""

import ml_collections


def model_config(**overrides) -> ml_collections.ConfigDict:
    """STM architecture (official defaults); see stm_jax/model/config.py for each field."""
    config = ml_collections.ConfigDict(
        dict(
            backbone="resnet50",
            key_dim=128,
            value_dim=512,
            decoder_dim=256,
            max_objects=10,  # K = 11 aggregation slots; not tied to the weights, may be raised
            similarity="dot",
            top_k=0,
            dtype="float32",
        )
    )
    config.update(overrides)
    return config


def memory_config(**overrides) -> ml_collections.ConfigDict:
    """Official protocol: first + every 5th frame kept, previous frame as a temporary slot.

    capacity counts every frame held (kept + temporary); with 40 the official protocol is exact for
    videos up to 190 frames, after which the oldest kept frame except the first is evicted.
    """
    config = ml_collections.ConfigDict(
        dict(mem_every=5, capacity=40, eviction="oldest", chunk_frames=4)
    )
    config.update(overrides)
    return config


def segment_config() -> ml_collections.ConfigDict:
    """Everything the segment job reads; datasets override `data`."""
    config = ml_collections.ConfigDict()
    config.job = "evaluate"  # segment, then score when the split has full annotations
    config.checkpoint = (
        ""  # official STM_weights.pth, or a stm_jax training workdir / checkpoint dir
    )
    config.model = model_config()
    config.memory = memory_config()
    config.data = ml_collections.ConfigDict(
        dict(
            layout="davis",  # 'davis' (ImageSets split) or 'folder' (one video: frames + first mask)
            root="",
            year="2017",
            split="val",
            resolution="480p",
            sequences="",  # comma-separated subset of the split; empty = all
            frames="",  # layout='folder': folder of frames (.jpg or .png, natural order)
            first_mask="",  # layout='folder': palette PNG of the first frame's objects
        )
    )
    config.num_devices = 0  # local devices to spread videos over; 0 = all
    config.overlays = False  # also write an overlay GIF/MP4 + contact sheet per sequence
    # Outputs of another job (other checkpoint, config, inputs or code) in the workdir are refused;
    # True redoes them instead.
    config.overwrite = False
    return config


def youtubevos_config(year: str) -> ml_collections.ConfigDict:
    """The YouTube-VOS valid job (submission layout + zip) for `year` ('2018' or '2019')."""
    config = segment_config()
    config.job = "youtubevos"
    config.data.root = ""
    config.data.split = "valid"
    config.data.frames_split = ""  # e.g. 'valid_all_frames' for the 30 fps release
    config.data.year = year
    return config
