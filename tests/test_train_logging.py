"""TensorBoard event files written without TensorFlow parse back; JSONL metrics; non-finite stop."""

import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.training import checkpoint_io, train_job
from stm_jax.training.metric_writer import MetricWriter, read_jsonl
from stm_jax.training.tensorboard import (
    EventWriter,
    crc32c,
    frame_record,
    masked_crc32c,
    read_events,
)
from tests.train_fixtures import tiny_config


def test_crc32c_reference_values():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4 test vector (32 zero bytes)
    assert masked_crc32c(b"") == 0xA282EAD8


def test_event_file_round_trip(tmp_path):
    writer = EventWriter(tmp_path)
    writer.scalars(3, {"train/loss": 0.25, "lr": 1e-5})
    writer.scalars(-1, {"neg": -2.0})
    writer.close()
    events = read_events(writer.path)
    assert writer.path.name.startswith("events.out.tfevents.")
    assert events[0]["file_version"] == "brain.Event:2"
    assert events[1]["step"] == 3
    assert events[1]["scalars"] == pytest.approx({"train/loss": 0.25, "lr": 1e-5})
    assert events[2]["step"] == -1 and events[2]["scalars"]["neg"] == -2.0


def test_corrupt_record_is_detected(tmp_path):
    path = tmp_path / "events.out.tfevents.0.x"
    record = bytearray(frame_record(b"\x10\x05"))
    record[12] ^= 0xFF
    path.write_bytes(bytes(record))
    with pytest.raises(ValueError, match="CRC"):
        read_events(path)
    header = struct.pack("<Q", 2)
    assert record[8:12] == struct.pack("<I", masked_crc32c(header))


def test_metric_writer_jsonl_and_events(tmp_path):
    writer = MetricWriter(tmp_path)
    writer.write(1, {"loss": 1.5, "note": "text"}, prefix="train/")
    writer.close()
    assert read_jsonl(tmp_path / "metrics.jsonl")[0]["train/loss"] == 1.5
    (events_file,) = (tmp_path / "tensorboard").iterdir()
    assert read_events(events_file)[1]["scalars"] == {"train/loss": 1.5}


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real_make = train_job.make_train_step

    def make_poisoned(*args, **kwargs):
        step = real_make(*args, **kwargs)
        calls = {"n": 0}

        def poisoned(state, batch_stats, batch):
            state, metrics = step(state, batch_stats, batch)
            calls["n"] += 1
            if calls["n"] == 3:  # the third update "diverges"
                metrics = {**metrics, "loss": jnp.float32(np.nan)}
            return state, metrics

        return poisoned

    monkeypatch.setattr(train_job, "make_train_step", make_poisoned)
    config = tiny_config(num_steps=6)
    config.train.checkpoint_every = 2
    with pytest.raises(train_job.NonFiniteLossError, match="last good checkpoint is step 2"):
        train_job.run(config, str(tmp_path))
    directory, step = checkpoint_io.find_checkpoint(tmp_path, which="latest")
    assert step == 2 and sorted(p.name for p in directory.iterdir() if p.name.isdigit()) == ["2"]
    _, variables = checkpoint_io.load_trained_model(tmp_path, which="latest")
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(variables))
