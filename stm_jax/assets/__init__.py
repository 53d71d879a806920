"""Files shipped inside the package (installed with the wheel as package data).

    from stm_jax import Segmenter, assets

    seg = Segmenter.from_checkpoint(assets.path("synthetic_cpu"))

`synthetic_cpu` is the small checkpoint trained by `configs/synthetic_cpu.py` (tiny backbone, 2.6 MB,
synthetic shapes only; the demo runs it).
"""

from __future__ import annotations

from pathlib import Path

from stm_jax.cli_errors import MissingFileError

ASSETS_DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    """The names of the shipped assets (folders next to this file)."""
    return sorted(p.name for p in ASSETS_DIR.iterdir() if p.is_dir() and p.name[0] not in "._")


def path(name: str) -> Path:
    """The path of a shipped asset, e.g. `path("synthetic_cpu")` (a checkpoint folder).

    Raises MissingFileError naming the assets that exist when `name` is not one of them.
    """
    if name not in names():
        raise MissingFileError(f"no shipped asset {name!r}; the package ships {names()}.")
    return ASSETS_DIR / name
