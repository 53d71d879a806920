"""The settings a stream's saved state belongs to, and the one-line refusal of a state saved with
other settings.

A state (memory bank, policy counters, object slots) only means something to the model and memory
settings that made it: another `max_objects`, capacity, policy, family or dtype either fails deep
in the pytree or, worse, loads and segments wrongly. So `Segmenter.save_state` records these
settings beside the arrays and `Segmenter.load_state` compares them first, naming every field that
differs. The frame size and the object slots are not settings: they belong to the saved video and
come back with it.
"""

from __future__ import annotations

import json

from stm_jax.inference.input_checks import InputError
from stm_jax.inference.stepper import Stepper


def stream_settings(stepper: Stepper) -> dict:
    """{'model.<field>': value, 'memory.<field>': value} of the effective configs, JSON-normalised
    (tuples become lists) so that a recorded copy compares equal to a fresh one."""
    flat = {f"model.{k}": v for k, v in stepper.model_config.to_dict().items()}
    flat.update({f"memory.{k}": v for k, v in stepper.memory_config.to_dict().items()})
    return json.loads(json.dumps(flat, sort_keys=True, default=str))


def encode(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True)


def check_same_settings(saved_json: str, current: dict, path) -> None:
    """Raises InputError naming every field whose saved value differs from this stream's."""
    saved = json.loads(saved_json)
    fields = sorted(set(saved) | set(current))
    missing = "(unset)"
    differ = [
        f"{k}={saved.get(k, missing)!r} in the file, {current.get(k, missing)!r} here"
        for k in fields
        if saved.get(k, missing) != current.get(k, missing)
    ]
    if differ:
        raise InputError(
            f"{path}: the state was saved with other settings: {'; '.join(differ)}. "
            "Load it into a Segmenter made with the file's settings."
        )
