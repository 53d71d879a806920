"""The user docs cannot rot silently: every config flag and config file they name is real (and the
check catches planted mistakes), every relative link resolves, and (slow) the README blocks marked
runnable run as written, at the tiny size their marker gives."""

import re
import shlex
import subprocess
import sys

import pytest

from tests.docs_check import ROOT, check_command, check_markdown, code_blocks, user_docs

README = (ROOT / "README.md").read_text()
LINK = re.compile(r"\]\(([^)#\s]+)[^)]*\)|<img src=\"([^\"]+)\"")


def test_every_flag_and_config_file_in_the_docs_is_real():
    assert len(user_docs()) >= 8
    problems = [
        f"{p.relative_to(ROOT)}: {x}" for p in user_docs() for x in check_markdown(p.read_text())
    ]
    assert problems == []


def test_the_check_fails_on_planted_mistakes():
    planted = README + "\n```bash\nstm-jax --config segment --config.memory.capacty=20\n```\n"
    assert any(
        "--config.memory.capacty is not a field of configs/segment.py" in p
        for p in check_markdown(planted)
    )
    prose = README + "\nRaise it with --config.memry.capacity=60 when videos are long.\n"
    assert any("memry" in p for p in check_markdown(prose))
    assert check_command("python main.py --config configs/nothere.py") == [
        "configs/nothere.py does not exist"
    ]
    assert check_command("stm-jax --config nothere") == ["--config nothere: no such bundled config"]
    # A field of another config, and a value the field cannot hold:
    assert check_command("stm-jax --config score --config.memory.capacity=3") == [
        "--config.memory.capacity is not a field of configs/score.py"
    ]
    assert check_command("stm-jax --config segment --config.memory.capacity=many") == [
        "--config.memory.capacity=many: the field holds a int"
    ]
    assert check_command("stm-jax --config segment --config.overlays=yes") != []
    # What is right passes: fields, placeholders, a config's argument, the switch every job takes.
    assert check_command("stm-jax --config segment --config.memory.capacity=20") == []
    assert check_command("stm-jax --config segment --config.data.frames=FRAMES_DIR") == []
    assert (
        check_command("python main.py --config configs/synthetic_cpu.py:tiny --config.debug=True")
        == []
    )


def test_relative_links_resolve():
    missing = []
    for doc in user_docs():
        for match in LINK.finditer(doc.read_text()):
            target = match.group(1) or match.group(2)
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {target}")
    assert missing == []


def test_readme_is_short_and_marks_its_runnable_blocks():
    assert len(README.splitlines()) <= 160
    runnable = [b for b in code_blocks(README) if b.runnable]
    assert [b.language for b in runnable] == ["bash", "python", "bash"]  # demo, API, training


RUNNABLE = [b for b in code_blocks(README) if b.runnable]


@pytest.mark.slow
@pytest.mark.parametrize("block", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_runnable_readme_block(block, tmp_path):
    """Run from an empty folder: `stm-jax` is `python main.py` (tests/test_packaging.py runs the
    installed script itself); `configs/NAME.py` and names resolve to the bundled configs."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    env["JAX_PLATFORMS"] = "cpu"
    if block.language == "python":
        (tmp_path / "example.py").write_text(block.text)
        result = subprocess.run(
            [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stderr == ""  # the Python API is quiet
        return
    for line in block.text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        assert words[0] == "stm-jax", line
        command = [sys.executable, str(ROOT / "main.py"), *words[1:], *shlex.split(block.extra)]
        result = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900
        )
        assert result.returncode == 0, result.stderr[-3000:]
