"""Host pipeline pieces: frames decoded ahead, writes in order off the caller's thread, the
persistent compilation cache reused by a second process."""

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from stm_jax.inference.host_pipeline import BackgroundWriter, FramePrefetcher

ROOT = Path(__file__).resolve().parents[1]


def test_prefetcher_loads_ahead_on_the_pool_and_returns_frames_in_order():
    loaded = []
    lock = threading.Lock()

    def loader(i):
        def load():
            with lock:
                loaded.append(i)
            return np.full((2, 2, 3), i, np.uint8)

        return load

    with ThreadPoolExecutor(2) as pool:
        reader = FramePrefetcher([loader(i) for i in range(10)], pool, ahead=3)
        assert int(reader.get(0)[0, 0, 0]) == 0
        time.sleep(0.1)
        assert sorted(loaded) == [0, 1, 2, 3]  # frames 1..3 decoded before they are asked for
        assert [int(reader.get(i)[0, 0, 0]) for i in range(1, 10)] == list(range(1, 10))


def test_writer_runs_in_order_off_thread_and_reraises():
    seen = []
    with BackgroundWriter(max_pending=2) as writer:
        for i in range(20):
            writer.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
    assert [i for i, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"stm-writer"}

    writer = BackgroundWriter()
    writer.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        writer.close()


PROBE = """
import sys
import jax, jax.numpy as jnp
from stm_jax.inference.compile_cache import enable_compile_cache
enable_compile_cache(sys.argv[1])
jax.jit(lambda x: jnp.tanh(x) @ x.T + 1.5).lower(jnp.ones((32, 32))).compile()
"""


def test_second_process_reuses_the_persistent_compilation_cache(tmp_path):
    cache = tmp_path / "cache"
    command = [sys.executable, "-c", PROBE, str(cache)]
    subprocess.run(command, cwd=ROOT, check=True)
    first = sorted(p.name for p in cache.iterdir())
    assert any(name.startswith("jit__lambda") for name in first)
    subprocess.run(command, cwd=ROOT, check=True)
    assert sorted(p.name for p in cache.iterdir()) == first  # a hit: nothing compiled anew


def test_cache_directory_default_and_switches(monkeypatch, tmp_path):
    from stm_jax.inference import compile_cache

    monkeypatch.delenv("STM_JAX_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.default_cache_dir() == tmp_path / "xdg" / "stm_jax" / "jax_cache"
    off = {"inference": {"compile_cache": False}}
    assert compile_cache.setup_from_config(off) is None


def test_staged_videos_appear_only_when_finished_and_abort_leaves_nothing(tmp_path):
    from stm_jax.inference.staged_writer import StagedVideos

    staged = StagedVideos()
    labels = np.zeros((4, 6), np.uint8)
    staged.start("a", tmp_path / "a", {"job": 1})
    staged.start("b", tmp_path / "b", {"job": 1})
    staged.write("a", "00000.png", labels)
    staged.write("b", "00000.png", labels)
    assert not (tmp_path / "a").exists()
    staged.finish("a")
    assert (tmp_path / "a" / "00000.png").is_file()
    staged.abort(RuntimeError("frame 3 unreadable"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # b's staging folder removed


def test_an_unusable_cache_directory_warns_once_and_runs_without_it(tmp_path, capsys):
    import jax

    from stm_jax.inference import compile_cache

    before = jax.config.jax_compilation_cache_dir
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    config = {"inference": {"compile_cache_dir": str(blocker / "cache")}}
    assert compile_cache.setup_from_config(config) is None
    assert compile_cache.setup_from_config(config) is None  # a job calls it per stepper
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(blocker / "cache") in lines[0]
    assert "compile_cache_dir=DIR" in lines[0] and "compile_cache=False" in lines[0]
    assert jax.config.jax_compilation_cache_dir == before  # left as it was
