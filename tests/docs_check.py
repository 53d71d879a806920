"""What the user docs tell people to type, checked against the code: every `configs/NAME.py` and
`stm-jax --config NAME` names a bundled config, and every `--config.X=V` flag is a field of the
config its command runs (or, outside a command, of some config), with a value of the field's type.

Commands are the lines of fenced code blocks (backslash continuations joined), inline code spans,
and prose lines that mention `--config`.
A fenced block preceded by `<!-- runnable -->` (or `<!-- runnable: EXTRA FLAGS -->`, appended to its
`stm-jax` commands to run them at a tiny size) is run by tests/test_docs.py.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
USER_DOCS = ("README.md", "docs/*.md", "benchmarks/README.md")
SWITCHES = {"debug"}  # --config.debug works with every config (stm_jax/cli_errors.py)

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUNNABLE = re.compile(r"<!--\s*runnable(?::\s*(.*?))?\s*-->\s*\n```")
INLINE = re.compile(r"`([^`\n]+)`")
CONFIG_FILE = re.compile(r"\bconfigs/(\w+)\.py\b")
CONFIG_VALUE = re.compile(r"--config[ =](\S+)")
FLAG = re.compile(r"--config\.([A-Za-z_][\w.]*)=(\S*)")
# Values (and names) standing for the user's own: FRAMES_DIR, ..., <field>, $i (a shell variable).
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$|^\.\.\.$|^<.*>$|^\$\w+$")
GENERIC_FLAGS = {"key", "a.b"}  # the syntax itself: --config.key=value


def user_docs() -> list[Path]:
    return sorted(p for pattern in USER_DOCS for p in ROOT.glob(pattern))


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, text, and the extra flags if it is marked runnable."""

    language: str
    text: str
    runnable: bool
    extra: str


def code_blocks(markdown: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(markdown):
        before = markdown[: match.start() + 3]
        mark = None
        for m in RUNNABLE.finditer(before):
            if m.end() == match.start() + 3:
                mark = m
        blocks.append(
            Block(match.group(1), match.group(2), mark is not None, (mark and mark.group(1)) or "")
        )
    return blocks


def commands(markdown: str) -> list[str]:
    """Every command-like line: code block lines (continuations joined) and inline code spans."""
    found = []
    for block in code_blocks(markdown):
        found += block.text.replace("\\\n", " ").splitlines()
    outside = FENCE.sub("", markdown)
    found += [m.group(1) for m in INLINE.finditer(outside)]
    prose = INLINE.sub("", outside)  # a flag written without code quotes counts too
    found += [line for line in prose.splitlines() if "--config" in line]
    return found


@cache
def load_config(name: str, arg: str = ""):
    spec = importlib.util.spec_from_file_location(f"_docs_config_{name}", CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def bundled_names() -> set[str]:
    return {p.stem for p in CONFIGS.glob("*.py") if p.stem != "__init__"}


def _config_of(command: str) -> tuple[str, str, bool] | None:
    """(name, arg, given as a bare name) of the config a command runs, or None if it names none."""
    match = CONFIG_VALUE.search(command)
    if not match:
        return None
    value = match.group(1).strip("`'\"")
    path, _, arg = value.partition(":")
    bare = "/" not in path and not path.endswith(".py")
    return path.removeprefix("configs/").removesuffix(".py"), arg, bare


def _field(config, dotted: str):
    """The value at a dotted path, or raise KeyError naming the first missing part."""
    node = config
    for part in dotted.split("."):
        if not hasattr(node, "keys") or part not in node:
            raise KeyError(part)
        node = node[part]
    return node


def _type_problem(flag: str, default, value: str) -> str | None:
    if not value or PLACEHOLDER.match(value):
        return None
    try:
        if isinstance(default, bool):
            if value not in ("True", "False", "true", "false", "1", "0"):
                raise ValueError
        elif isinstance(default, int):
            int(value)
        elif isinstance(default, float):
            float(value)
    except ValueError:
        return f"--config.{flag}={value}: the field holds a {type(default).__name__}"
    return None


def check_command(command: str) -> list[str]:
    """Problems of one command line: unknown config, unknown field, value of the wrong type."""
    problems = [
        f"configs/{name}.py does not exist"
        for name in CONFIG_FILE.findall(command)
        if name not in bundled_names() and not PLACEHOLDER.match(name)
    ]
    target = _config_of(command)
    if target and target[0] not in bundled_names():
        # A path is the user's own config file (configs/NAME.py is checked above); a bare name
        # must be a bundled config.
        if target[2] and not PLACEHOLDER.match(target[0]):
            problems.append(f"--config {target[0]}: no such bundled config")
        target = None
    candidates = (
        [load_config(*target[:2])] if target else [load_config(n) for n in sorted(bundled_names())]
    )
    for flag, value in FLAG.findall(command):
        if flag in SWITCHES or flag in GENERIC_FLAGS or PLACEHOLDER.match(flag):
            continue
        defaults = []
        for config in candidates:
            try:
                defaults.append(_field(config, flag))
            except KeyError:
                pass
        where = f"configs/{target[0]}.py" if target else "any config"
        if not defaults:
            problems.append(f"--config.{flag} is not a field of {where}")
            continue
        problem = _type_problem(flag, defaults[0], value.strip("`'\",;)"))
        if problem:
            problems.append(problem)
    return problems


def check_markdown(markdown: str) -> list[str]:
    """Every problem of a document, each with the command it is in."""
    out = []
    for command in commands(markdown):
        out += [f"{problem}  (in: {command.strip()[:120]})" for problem in check_command(command)]
    return out
