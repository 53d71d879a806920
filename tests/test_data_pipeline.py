"""The grain pipeline: determinism, disjoint process shards, mixing, invariants, exact resume."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from stm_jax.data.config import default_data_config
from stm_jax.data.pipeline import make_record_stream, make_train_iterator


def tiny_config(**overrides):
    config = default_data_config()
    config.sources = {
        "synth": {
            "kind": "synthetic",
            "ratio": 1.0,
            "num_videos": 6,
            "seed": 0,
            "num_frames": 8,
            "height": 40,
            "width": 56,
            "num_objects": [1, 4],
        },
    }
    config.update(
        crop_size=32,
        resize_shorter=36,
        min_object_pixels=8,
        num_workers=0,
        batch_size=4,
        max_train_objects=3,
    )
    config.update(overrides)
    return config


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_same_seed_same_batches_and_static_invariants():
    first = take(make_train_iterator(tiny_config(), 0, 1), 3)
    again = take(make_train_iterator(tiny_config(), 0, 1), 3)
    other = take(make_train_iterator(tiny_config(seed=1), 0, 1), 1)
    for a, b in zip(first, again):
        assert_same(a, b)
    assert not np.array_equal(first[0]["frames"], other[0]["frames"])
    for batch in first:
        assert batch["frames"].shape == (4, 3, 32, 32, 3) and batch["frames"].dtype == np.uint8
        assert batch["labels"].shape == (4, 3, 32, 32) and batch["labels"].dtype == np.int32
        assert batch["masks"].shape == (4, 3, 32, 32, 4) and batch["masks"].dtype == np.float32
        assert batch["void"].shape == (4, 3, 32, 32) and batch["void"].dtype == bool
        assert batch["object_valid"].shape == (4, 3) and batch["num_objects"].shape == (4,)
        np.testing.assert_array_equal(batch["masks"].argmax(-1), batch["labels"])
        np.testing.assert_array_equal(batch["masks"].sum(-1), 1.0)
        np.testing.assert_array_equal(batch["object_valid"].sum(-1), batch["num_objects"])
        in_first = batch["masks"][:, 0, ..., 1:].sum(axis=(1, 2)) > 0  # (B, O)
        np.testing.assert_array_equal(in_first, batch["object_valid"])
        assert (batch["labels"].max(axis=(1, 2, 3)) <= batch["num_objects"]).all()


def test_processes_read_disjoint_shards_and_mix_by_ratio():
    config = tiny_config()
    config.sources.synth.num_videos = 7
    streams = [make_record_stream(config, i, 2)[0] for i in range(2)]
    seen = [{streams[i][k] for k in range(40)} for i in range(2)]
    assert not seen[0] & seen[1]
    assert {r for _, r in seen[0] | seen[1]} == set(range(7))
    config = tiny_config()
    config.sources = {
        "a": dict(config.sources.synth, ratio=0.25),
        "b": dict(config.sources.synth, ratio=0.75),
    }
    stream = make_record_stream(config, 0, 1)[0]
    share_a = np.mean([stream[k][0] == 0 for k in range(400)])
    assert abs(share_a - 0.25) < 0.03


def test_restore_resumes_on_identical_next_batch(tmp_path):
    iterator = make_train_iterator(tiny_config(), 0, 1)
    take(iterator, 2)
    state = iterator.get_state()
    expected = take(iterator, 2)
    fresh = make_train_iterator(tiny_config(), 0, 1)
    fresh.set_state(state)
    for a, b in zip(take(fresh, 2), expected):
        assert_same(a, b)
    # The trainer's path: orbax with grain's checkpoint handler.
    iterator = make_train_iterator(tiny_config(), 0, 1)
    take(iterator, 1)
    manager = ocp.CheckpointManager(tmp_path / "ckpt")
    manager.save(1, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(iterator)))
    manager.wait_until_finished()
    expected = next(iterator)
    restored = make_train_iterator(tiny_config(), 0, 1)
    manager.restore(1, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(restored)))
    assert_same(next(restored), expected)


def test_start_step_and_workers_give_the_same_batches():
    reference = take(make_train_iterator(tiny_config(), 0, 1), 3)
    started = make_train_iterator(tiny_config(), 0, 1, step=2)
    assert_same(next(started), reference[2])
    workers = make_train_iterator(tiny_config(num_workers=1), 0, 1)
    try:
        got = take(workers, 2)
        state = workers.get_state()
        assert_same(got[1], reference[1])
        assert_same(next(workers), reference[2])
    finally:
        workers.close()
    resumed = make_train_iterator(tiny_config(num_workers=1), 0, 1)
    try:
        resumed.set_state(state)
        assert_same(next(resumed), reference[2])
    finally:
        resumed.close()


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        make_train_iterator(tiny_config(batch_size=3), 0, 2)
    with pytest.raises(ValueError, match="on_bad_sample"):
        make_train_iterator(tiny_config(on_bad_sample="ignore"), 0, 1)
    config = default_data_config()  # real datasets without roots
    with pytest.raises(ValueError, match="root is empty"):
        make_train_iterator(config, 0, 1)


def test_to_global_batch_shards_over_data_axis():
    code = textwrap.dedent(
        """
        import jax, numpy as np
        jax.config.update("jax_num_cpu_devices", 4)
        from jax.sharding import Mesh
        from stm_jax.data.pipeline import to_global_batch
        mesh = Mesh(np.array(jax.devices()), ("data",))
        batch = {"frames": np.arange(4 * 2 * 3, dtype=np.uint8).reshape(4, 2, 3),
                 "num_objects": np.arange(4, dtype=np.int32)}
        out = to_global_batch(batch, mesh)
        assert out["frames"].shape == (4, 2, 3)
        assert out["frames"].sharding.spec == jax.sharding.PartitionSpec("data")
        assert len(out["num_objects"].addressable_shards) == 4
        np.testing.assert_array_equal(np.asarray(out["frames"]), batch["frames"])
        try:
            to_global_batch({"x": np.zeros((3, 2))}, mesh)
        except ValueError as error:
            assert "does not split" in str(error)
        else:
            raise AssertionError("odd batch accepted")
        """
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"},
    )


def test_youtube_vos_and_static_images_through_the_pipeline(tmp_path):
    from tests import data_fixtures as fx

    config = tiny_config(paste_prob=1.0)
    config.sources = {
        "yt": {
            "kind": "youtube_vos",
            "root": str(fx.youtube_tree(tmp_path / "yt")),
            "ratio": 0.5,
            "split": "train",
        },
        "msra": {
            "kind": "image_folder",
            "root": str(fx.saliency_tree(tmp_path / "msra")),
            "ratio": 0.5,
            "images": "images",
            "masks": "masks",
            "binary": True,
        },
    }
    config.max_skip = {"kind": "constant", "value": 25}  # YouTube-VOS: 25 // 5 = 5 stored frames
    iterator = make_train_iterator(config, 0, 1)
    for batch in take(iterator, 3):
        assert batch["frames"].shape == (4, 3, 32, 32, 3)
        assert (batch["num_objects"] >= 1).all()
        in_first = batch["masks"][:, 0, ..., 1:].sum(axis=(1, 2)) > 0
        np.testing.assert_array_equal(in_first, batch["object_valid"])
    assert iterator.skipped == 0
