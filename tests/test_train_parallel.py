"""Data parallelism: 8 fake CPU devices == 1 device; two processes on localhost agree.

Both run in subprocesses so the rest of the suite keeps one device and no distributed runtime.
"""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from stm_jax.training import step as step_lib
from stm_jax.training.defaults import default_train_config
from stm_jax.training.init import initial_variables
from tests.model_fixtures import TINY
from tests.train_fixtures import random_batch

ROOT = Path(__file__).resolve().parent.parent

_TRAIN_FIVE = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec
    from stm_jax.training import step as step_lib
    from stm_jax.training.defaults import default_train_config
    from stm_jax.training.init import initial_variables
    from tests.model_fixtures import TINY as config
    from tests.train_fixtures import random_batch

    train = default_train_config()
    train.lr, train.grad_clip = 1e-3, 1.0
    train.eps = 1e-4  # Adam amplifies float noise in near-zero gradients; keep that below 1e-5
    variables, _ = initial_variables(config, "", 0)
    mesh = step_lib.make_mesh()
    state = step_lib.replicate(step_lib.init_train_state(variables["params"], train, 0), mesh)
    stats = step_lib.replicate(variables["batch_stats"], mesh)
    fn = step_lib.make_train_step(mesh, config, train)
    data = NamedSharding(mesh, PartitionSpec("data"))
    for i in range(5):
        batch = jax.device_put(random_batch(batch=8, seed=i), data)
        state, metrics = fn(state, stats, batch)
    leaves = jax.tree.leaves(jax.device_get(state["params"]))
    np.savez(sys.argv[1], *leaves, devices=jax.device_count())
    """
)


def _subprocess_env(**extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    # The run's test-wide flags (tests/conftest.py), after the caller's.
    flags = f"{env.get('XLA_FLAGS', '')} {os.environ.get('STM_TEST_XLA_FLAGS', '')}".strip()
    if flags:
        env["XLA_FLAGS"] = flags
    return env


@pytest.mark.slow
def test_eight_fake_devices_match_one(tmp_path):
    out8 = tmp_path / "eight.npz"
    subprocess.run(
        [sys.executable, "-c", _TRAIN_FIVE, str(out8)],
        cwd=ROOT,
        env=_subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"),
        check=True,
        timeout=300,
    )
    eight = np.load(out8)
    assert int(eight["devices"]) == 8
    # The same five steps here, on this process's single device.
    train = default_train_config()
    train.lr, train.grad_clip = 1e-3, 1.0
    train.eps = 1e-4  # Adam amplifies float noise in near-zero gradients; keep that below 1e-5
    variables, _ = initial_variables(TINY, "", 0)
    mesh = step_lib.make_mesh(jax.devices()[:1])
    state = step_lib.replicate(step_lib.init_train_state(variables["params"], train, 0), mesh)
    stats = step_lib.replicate(variables["batch_stats"], mesh)
    fn = step_lib.make_train_step(mesh, TINY, train)
    for i in range(5):
        state, _ = fn(state, stats, random_batch(batch=8, seed=i))
    one = jax.tree.leaves(jax.device_get(state["params"]))
    for i, leaf in enumerate(one):
        np.testing.assert_allclose(eight[f"arr_{i}"], leaf, atol=1e-5)


_TWO_PROCESS = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np
    from absl import flags
    flags.FLAGS.mark_as_parsed()
    from stm_jax.jobs import train as train_job
    from tests.train_fixtures import tiny_config

    workdir, out = sys.argv[1], sys.argv[2]
    config = tiny_config(batch_size=4, num_steps=3)
    config.train.checkpoint_every = 3  # a collective orbax save at the end, from both processes
    result = train_job.run(config, workdir)
    assert jax.process_count() == 2, jax.process_count()
    np.savez(out, *jax.tree.leaves(result["variables"]["params"]), step=result["step"])
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost_agree(tmp_path):
    port = _free_port()
    processes = []
    for pid in range(2):
        env = _subprocess_env(
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(pid),
        )
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _TWO_PROCESS,
                    str(tmp_path / "run"),
                    str(tmp_path / f"p{pid}.npz"),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    for p in processes:
        try:
            outputs.append(p.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            for q in processes:
                q.kill()
            raise
    for p, output in zip(processes, outputs):
        assert p.returncode == 0, output[-3000:]
    p0, p1 = np.load(tmp_path / "p0.npz"), np.load(tmp_path / "p1.npz")
    assert int(p0["step"]) == int(p1["step"]) == 3
    names = [n for n in p0.files if n.startswith("arr_")]
    assert names
    for name in names:
        np.testing.assert_array_equal(p0[name], p1[name])
    assert (tmp_path / "run" / "checkpoints" / "3").is_dir()
