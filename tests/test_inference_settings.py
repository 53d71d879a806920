"""The jobs' `inference` block: videos per step (explicit, CPU, from device memory), the bfloat16
preset, bad presets and fractions."""

import dataclasses

import pytest

from stm_jax.cli_errors import ConfigError
from stm_jax.inference.settings import VideosPerStep, make_stepper
from stm_jax.jobs.config_base import segment_config
from tests.model_fixtures import TINY


@dataclasses.dataclass
class FakeDevice:
    """A device as the sizing sees it: its platform, kind and allocator statistics."""

    platform: str
    memory: int | None = None
    device_kind: str = "Fake accelerator"

    def memory_stats(self):
        return None if self.memory is None else {"bytes_limit": self.memory}


def chosen(config, device, stepper=None):
    said = []
    sizer = VideosPerStep(config, stepper, device=device, say=said.append)
    return sizer(None, 48, 64, 2), said


def test_explicit_value_wins_and_cpu_runs_one_video():
    config = segment_config()
    videos, said = chosen(config, FakeDevice("cpu"))
    assert videos == 1 and said == [said[0]] and "on CPU" in said[0]
    config.inference.videos_per_step = 8
    for device in (FakeDevice("cpu"), FakeDevice("gpu", 2**40)):
        videos, said = chosen(config, device)  # no stepper: nothing is compiled for it
        assert videos == 8 and "set by inference.videos_per_step" in said[0]


def test_an_accelerator_without_a_memory_size_gets_the_fixed_default():
    videos, said = chosen(segment_config(), FakeDevice("tpu", None))
    assert videos == 16 and "does not report its memory size" in said[0]


def test_bad_memory_fraction_is_refused():
    config = segment_config()
    for fraction in (0.0, 1.5):
        config.inference.memory_fraction = fraction
        with pytest.raises(ConfigError, match="inference.memory_fraction"):
            VideosPerStep(config, None)


def test_accelerator_preset_is_bfloat16_and_bad_preset_is_refused(tmp_path):
    config = segment_config()
    config.inference.compile_cache_dir = str(tmp_path)
    assert make_stepper(config, TINY).model_config.dtype == "float32"
    config.inference.preset = "accelerator"
    assert make_stepper(config, TINY).model_config.dtype == "bfloat16"
    config.inference.preset = "fast"
    with pytest.raises(ValueError, match="inference.preset"):
        make_stepper(config, TINY)
