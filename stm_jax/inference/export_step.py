"""The per-frame step as serialized `jax.export` functions, for serving with jax alone (no model code).

`export_step(stepper, variables, videos, height, width, objects, platforms)` lowers three functions of
the stepper for one bucket shape (B video slots of H x W frames, O object slots) and every platform
asked for (one module, a branch per platform), and `write_artifact` writes them to a folder:

    contract.json     what each function takes and returns (shapes, dtypes, the flattening orders)
    empty.jaxexport   empty() -> state                                    all slots free
    start.jaxexport   start(weights, state, slot, frame, labels, object_valid) -> state   video in
    step.jaxexport    step(weights, frames, state, active) -> (labels, probs, state)      one frame
    weights.npz       the weights: arrays w00000, w00001, ... in the functions' order

`weights` and `state` are flat lists of arrays. weights = `jax.tree.leaves(variables)` (nested dicts,
keys in sorted order; the contract lists their paths); state = `jax.tree.leaves` of the stepper's
state, whose paths, shapes and dtypes the contract lists in order. The functions are those of the
jobs (`reset_slot` and `step` of the stepper, so its masks are the segment job's), and only the
stepper's methods are used, so any model family with that stepper exports the same way. Nothing
else is needed to run them: `jax.export.deserialize(bytes).call(...)`, e.g. with
`stm_jax/inference/exported_runner.py` (jax, numpy and pillow).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from stm_jax.inference.lowering import export_for
from stm_jax.io.atomic import atomic_path, write_text_atomic

FORMAT = "stm_jax exported step"
VERSION = 1
CONTRACT_FILE = "contract.json"
FILES = {"empty": "empty.jaxexport", "start": "start.jaxexport", "step": "step.jaxexport"}
WEIGHTS_FILE = "weights.npz"


@dataclasses.dataclass
class StepArtifact:
    """The exported functions, the flat weights and the contract describing them."""

    functions: dict[str, jax.export.Exported]
    weights: list[np.ndarray]
    contract: dict


def weight_key(index: int) -> str:
    return f"w{index:05d}"


def _spec(shape, dtype) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype))


def _describe(leaf, path=None, meaning=None) -> dict:
    entry = {"shape": list(leaf.shape), "dtype": str(jnp.dtype(leaf.dtype))}
    if path is not None:
        entry = {"path": jax.tree_util.keystr(path), **entry}
    if meaning:
        entry["meaning"] = meaning
    return entry


def export_step(
    stepper,
    variables,
    videos: int,
    height: int,
    width: int,
    objects: int,
    platforms: Sequence[str],
    about: dict | None = None,
) -> StepArtifact:
    """Exports `stepper`'s empty / reset_slot / step for one bucket shape and `platforms`.

    Args:
      stepper: a Stepper (its `empty`, `state_shape`, `reset_slot`, `step`, `num_slots`).
      variables: the weights the functions take (as their first input; not baked in).
      about: extra fields for the contract (checkpoint, model and memory configs).
    """
    weights, weights_tree = jax.tree.flatten(variables)
    weight_paths = [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(variables)
    ]
    state_shape = stepper.state_shape(variables, videos, height, width, objects)
    state_paths, state_tree = jax.tree_util.tree_flatten_with_path(state_shape)
    state_specs = [leaf for _, leaf in state_paths]
    weight_specs = [_spec(np.shape(w), np.asarray(w).dtype) for w in weights]

    def unflatten(weight_leaves, state_leaves):
        return (
            jax.tree.unflatten(weights_tree, weight_leaves),
            jax.tree.unflatten(state_tree, state_leaves),
        )

    def flat(state):
        leaves, tree = jax.tree.flatten(state)
        if tree != state_tree:
            raise ValueError(f"the stepper returned a state of another structure: {tree}")
        return leaves

    def empty():
        return flat(stepper.empty(variables, videos, height, width, objects))

    def start(weight_leaves, state_leaves, slot, frame, labels, object_valid):
        variables_, state = unflatten(weight_leaves, state_leaves)
        return flat(stepper.reset_slot(variables_, state, slot, frame, labels, object_valid))

    def step(weight_leaves, frames, state_leaves, active):
        variables_, state = unflatten(weight_leaves, state_leaves)
        labels, probs, state = stepper.step(variables_, frames, state, active)
        return labels, probs, flat(state)

    arrays = {
        "slot": (_spec((), jnp.int32), "the video slot (0..videos-1) a new video goes into"),
        "frame": (_spec((height, width, 3), jnp.uint8), "the new video's frame 0, RGB"),
        "labels": (
            _spec((height, width), jnp.uint8),
            "object ids of frame 0 (0 = background; 255 = void must be given as 0)",
        ),
        "object_valid": (_spec((objects,), jnp.bool_), "object slots holding an object"),
        "frames": (_spec((videos, height, width, 3), jnp.uint8), "one RGB frame per slot"),
        "active": (_spec((videos,), jnp.bool_), "slots stepped this call (others unchanged)"),
    }
    spec = {name: s for name, (s, _) in arrays.items()}
    functions = {
        "empty": export_for(jax.jit(empty), platforms=platforms),
        "start": export_for(
            jax.jit(start, donate_argnums=(1,)),
            weight_specs,
            state_specs,
            *(spec[k] for k in ("slot", "frame", "labels", "object_valid")),
            platforms=platforms,
        ),
        "step": export_for(
            jax.jit(step, donate_argnums=(2,)),
            weight_specs,
            spec["frames"],
            state_specs,
            spec["active"],
            platforms=platforms,
        ),
    }
    labels_out, probs_out = functions["step"].out_avals[:2]
    contract = {
        "format": FORMAT,
        "version": VERSION,
        "platforms": list(functions["step"].platforms),
        "videos": videos,
        "height": height,
        "width": width,
        "objects": objects,
        "num_slots": int(stepper.num_slots),
        **(about or {}),
        "functions": {
            "empty": {"file": FILES["empty"], "inputs": [], "outputs": ["state"]},
            "start": {
                "file": FILES["start"],
                "inputs": ["weights", "state", "slot", "frame", "labels", "object_valid"],
                "outputs": ["state"],
                "donates": ["state"],
            },
            "step": {
                "file": FILES["step"],
                "inputs": ["weights", "frames", "state", "active"],
                "outputs": ["labels", "probs", "state"],
                "donates": ["state"],
            },
        },
        "arrays": {
            **{name: _describe(s, meaning=m) for name, (s, m) in arrays.items()},
            "labels_out": _describe(labels_out, meaning="object ids per slot (argmax of probs)"),
            "probs": _describe(probs_out, meaning="probabilities over background + num_slots-1"),
        },
        "weights": {
            "file": WEIGHTS_FILE,
            "order": "jax.tree.leaves of the variables; weights.npz keys w00000, w00001, ...",
            "count": len(weights),
            "bytes": int(sum(np.asarray(w).nbytes for w in weights)),
            "paths": weight_paths,
        },
        "state": {
            "order": "jax.tree.leaves of the stepper's state (fields in declaration order)",
            "leaves": [_describe(leaf, path) for path, leaf in state_paths],
        },
    }
    return StepArtifact(functions, [np.asarray(w) for w in weights], contract)


def write_artifact(artifact: StepArtifact, out_dir: Path) -> dict[str, int]:
    """Writes the artifact's files into `out_dir` (each atomically); returns their sizes in bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, exported in artifact.functions.items():
        with atomic_path(out_dir / FILES[name], suffix=".tmp") as tmp:
            Path(tmp).write_bytes(exported.serialize())
    with atomic_path(out_dir / WEIGHTS_FILE, suffix=".npz") as tmp:
        np.savez(tmp, **{weight_key(i): w for i, w in enumerate(artifact.weights)})
    write_text_atomic(out_dir / CONTRACT_FILE, json.dumps(artifact.contract, indent=1) + "\n")
    names = [*FILES.values(), WEIGHTS_FILE, CONTRACT_FILE]
    return {name: (out_dir / name).stat().st_size for name in names}
