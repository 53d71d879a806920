"""No file in the repository holds an unresolved merge (a README once shipped with conflict markers)."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".yaml", ".yml", ".sh", ""}
SKIP_DIRS = {".git", ".ci-venv", "venv", ".venv", "__pycache__", "node_modules"}
MARKER = re.compile(r"^(<{7} |={7}$|>{7} )", re.MULTILINE)


def _text_files():
    for path in ROOT.rglob("*"):
        if any(
            part in SKIP_DIRS or part.startswith(".ci-") for part in path.relative_to(ROOT).parts
        ):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 2_000_000:
            yield path


def find_merge_markers(paths, root=ROOT):
    found = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for match in MARKER.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(root)}:{line}")
    return found


def test_no_conflict_markers_in_the_repository():
    assert find_merge_markers(_text_files()) == []


def test_the_check_finds_a_marker(tmp_path):
    bad = tmp_path / "notes.md"
    bad.write_text("a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> branch\n")
    assert find_merge_markers([bad], root=tmp_path) == ["notes.md:2", "notes.md:4", "notes.md:6"]
