"""Reading `.pth` files safely: `torch.load(..., weights_only=True)` only, never a full unpickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stm_jax.cli_errors import MissingFileError, UserError


class CheckpointFileError(UserError, ValueError):
    """A weights file that cannot be read; the message names it and what to do."""


class TorchMissingError(UserError, ImportError):
    """Reading a .pth file needs PyTorch, which is not installed."""


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Loads a PyTorch state dict as {key: float32 numpy array}.

    Accepts a bare state dict or one nested under 'state_dict' / 'model'. Needs torch (CPU build).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: checkpoint not found. Pass --config.checkpoint=<path>.")
    try:
        import torch
    except ImportError as error:
        raise TorchMissingError(
            f"Reading {path} needs PyTorch (CPU is enough): pip install torch. It is used only to "
            "read .pth files; or convert it once where torch is installed with configs/convert.py "
            "and pass that workdir as the checkpoint."
        ) from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointFileError(
            f"{path}: not a readable PyTorch weights file ({error}). Re-download it; only plain "
            "tensor state dicts are accepted (weights_only=True)."
        ) from error
    for nested in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(nested), dict):
            state = state[nested]
    if not isinstance(state, dict):
        raise CheckpointFileError(f"{path}: expected a state dict, found {type(state).__name__}.")
    return {
        key: value.detach().cpu().float().numpy() if hasattr(value, "detach") else np.asarray(value)
        for key, value in state.items()
    }
