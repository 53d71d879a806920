"""The jobs' `inference` block: videos per step by backend, the bfloat16 preset, bad presets."""

import pytest

from stm_jax.inference.settings import make_stepper, videos_per_step
from stm_jax.jobs.config_base import segment_config
from tests.model_fixtures import TINY


def test_videos_per_step_by_backend_and_override():
    config = segment_config()
    assert videos_per_step(config, "cpu") == 1
    assert videos_per_step(config, "gpu") == 16 and videos_per_step(config, "tpu") == 16
    config.inference.videos_per_step = 8
    assert videos_per_step(config, "cpu") == 8


def test_accelerator_preset_is_bfloat16_and_bad_preset_is_refused(tmp_path):
    config = segment_config()
    config.inference.compile_cache_dir = str(tmp_path)
    assert make_stepper(config, TINY).model_config.dtype == "float32"
    config.inference.preset = "accelerator"
    assert make_stepper(config, TINY).model_config.dtype == "bfloat16"
    config.inference.preset = "fast"
    with pytest.raises(ValueError, match="inference.preset"):
        make_stepper(config, TINY)
