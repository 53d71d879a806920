"""The package as pip installs it: metadata in step with requirements.txt, every subpackage and asset
shipped, the console script's config names, and (slow) a wheel installed into a fresh venv that runs
`stm-jax --config demo` and a Segmenter script from a folder outside the repository."""

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import setuptools

from stm_jax import assets
from stm_jax.cli_errors import MissingFileError
from stm_jax.entry import bundled_config_names, resolve_config_argument, resolve_config_value

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_lines(path: Path) -> list[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("-")]


def normalised(requirement: str) -> str:
    name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + spec.replace(" ", "")


def test_dependencies_are_the_requirements_lower_bounds():
    declared = sorted(map(normalised, PYPROJECT["project"]["dependencies"]))
    assert declared == sorted(map(normalised, requirement_lines(ROOT / "requirements.txt")))
    assert all(">=" in d for d in declared)


def test_every_subpackage_is_listed_and_configs_ship_inside_the_package():
    listed = PYPROJECT["tool"]["setuptools"]["packages"]
    found = setuptools.find_packages(str(ROOT), include=["stm_jax*"])
    assert sorted(listed) == sorted([*found, "stm_jax.configs"])
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"stm_jax.configs": "configs"}
    assert not any(p == "configs" or p.startswith("configs.") for p in listed)
    assert PYPROJECT["project"]["scripts"] == {"stm-jax": "stm_jax.entry:run"}


def test_assets_path():
    checkpoint = assets.path("synthetic_cpu")
    assert checkpoint == ROOT / "stm_jax" / "assets" / "synthetic_cpu"
    assert (checkpoint / "4000" / "_CHECKPOINT_METADATA").is_file()
    assert assets.names() == ["synthetic_cpu"]
    for bad in ("nothere", "", "../assets", "synthetic_cpu/4000"):
        with pytest.raises(MissingFileError, match="ships \\['synthetic_cpu'\\]"):
            assets.path(bad)


def test_config_names_resolve_to_the_bundled_files(tmp_path, monkeypatch):
    configs = ROOT / "configs"
    names = bundled_config_names()
    assert "demo" in names and "segment" in names and "__init__" not in names
    assert names == sorted(p.stem for p in configs.glob("*.py") if p.stem != "__init__")
    monkeypatch.chdir(tmp_path)  # no configs/ here: names and docs' paths find the bundled ones
    for value in ("segment", "segment.py", "configs/segment.py"):
        assert resolve_config_value(value) == str(configs / "segment.py")
    assert resolve_config_value("synthetic_cpu:tiny") == f"{configs / 'synthetic_cpu.py'}:tiny"
    for untouched in ("nothere", "other/segment.py", "/abs/segment.py", "configs/x/segment.py"):
        assert resolve_config_value(untouched) == untouched
    mine = tmp_path / "segment.py"
    mine.write_text("")
    assert resolve_config_value("segment.py") == "segment.py"  # an existing file wins
    argv = ["stm-jax", "--config", "demo", "--config=score", "--config.input=x"]
    assert resolve_config_argument(argv) == [
        "stm-jax",
        "--config",
        str(configs / "demo.py"),
        f"--config={configs / 'score.py'}",
        "--config.input=x",
    ]


def test_main_py_takes_a_config_name(tmp_path):
    command = [sys.executable, str(ROOT / "main.py"), "--config", "score", "--workdir", tmp_path]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2  # the score job's own one-line error: it did load the config
    assert "set --config.gt=DAVIS_ROOT" in result.stderr and "Traceback" not in result.stderr


SEGMENTER_SCRIPT = """
import numpy as np
import stm_jax
from stm_jax import Segmenter, assets
from stm_jax.data.synthetic import make_synthetic_video

print("stm_jax from", stm_jax.__file__)
video = make_synthetic_video(3, num_frames=4, height=64, width=96, num_objects=2)
seg = Segmenter.from_checkpoint(assets.path("synthetic_cpu"))
labels = seg.start(video.frames[0], video.labels[0])
for frame in video.frames[1:]:
    labels = seg.step(frame)
agreement = float(np.mean(labels == video.labels[-1]))
print(f"labels {labels.shape} {labels.dtype} agreement {agreement:.3f}")
assert agreement > 0.9
"""


@pytest.mark.slow
def test_the_segmenter_api_is_quiet(tmp_path):
    """No absl/orbax warnings (read-only checkpoint notes) from the Python API by default."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", SEGMENTER_SCRIPT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "agreement" in result.stdout
    assert result.stderr == ""


def _build_wheel(tmp_path: Path) -> Path:
    """Builds the wheel from a copy of what it packages, so no build/ or egg-info lands in the
    repository; the build backend is the installed setuptools (no download)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("stm_jax", "configs"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*command, "-w", str(tmp_path / "dist"), str(source)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("stm_jax-*.whl")
    return wheel


def _fresh_venv(path: Path) -> Path:
    """A venv without stm_jax that sees the test environment's third-party packages.

    Installing jax, tensorflow-datasets etc. again would download ~1 GB; the dependencies are
    declared by the wheel (checked against requirements.txt above), so the venv reuses the ones
    already installed by a path file appended after its own site-packages. Only the test
    environment's third-party folders are added, never the repository, so `import stm_jax`
    finds the installed wheel or nothing (asserted below)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shared = sorted({p for p in sys.path if p.endswith("site-packages")})
    (Path(site) / "shared_dependencies.pth").write_text("\n".join(shared) + "\n")
    return python


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "stm_jax" / "assets").rglob("*") if p.is_file()
    )
    shipped = [n for n in shipped if "__pycache__" not in n]
    assert set(shipped) <= set(names)
    assert "stm_jax/configs/demo.py" in names and not any(n.startswith("configs/") for n in names)
    python = _fresh_venv(tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = [python, "-c", "import stm_jax"]
    assert subprocess.run(probe, cwd=elsewhere, capture_output=True).returncode != 0
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q"]
    subprocess.run([*pip, str(wheel)], check=True, timeout=300)

    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "HOME": str(tmp_path)}
    run = lambda *cmd: subprocess.run(  # noqa: E731
        cmd, cwd=elsewhere, capture_output=True, text=True, timeout=900, env=env
    )
    demo = run(
        "stm-jax",
        "--config",
        "demo",
        "--workdir",
        "demo_out",
        "--config.num_videos=1",
        "--config.video.num_frames=8",
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert re.search(r"^J&F 0\.\d+", demo.stdout, re.MULTILINE), demo.stdout
    assert (elsewhere / "demo_out" / "global_results-val.csv").is_file()
    assert len(list((elsewhere / "demo_out" / "overlays").glob("*_sheet.png"))) == 1

    script = run("python", "-c", SEGMENTER_SCRIPT)
    assert script.returncode == 0, script.stderr[-3000:]
    installed = Path(re.search(r"stm_jax from (\S+)", script.stdout).group(1))
    assert installed.is_relative_to(tmp_path / "venv"), installed  # the wheel, not the repo
    assert script.stderr == ""  # quiet by default
