"""What made an output: a fingerprint of the job, recorded beside every predictions folder.

A fingerprint holds the checkpoint's identity (resolved path, size and modification time of its
files), the effective model and memory configs, how labels were read (DAVIS-2016 merging), the code
version, and per video the input list (frame names with size and mtime, the first-frame mask). The
segment job skips a video only when its recorded fingerprint equals the new one; `differences`
names what changed when it does not.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path

import stm_jax

FINGERPRINT_FILE = "fingerprint.json"
JOB_FILE = "job.json"


@functools.cache
def code_version() -> str:
    """'stm_jax <version>' plus the git commit of the source tree when it is a checkout."""
    version = f"stm_jax {stm_jax.__version__}"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(stm_jax.__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version} ({commit})" if commit else version


def _stat(path: Path) -> dict:
    info = path.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def checkpoint_identity(path: str | os.PathLike) -> dict:
    """Resolved path plus size/mtime (a file) or file count, total size and newest mtime (a folder)."""
    path = Path(path).resolve()
    if path.is_file():
        return {"path": str(path), **_stat(path)}
    files = [p for p in path.rglob("*") if p.is_file()]
    return {
        "path": str(path),
        "files": len(files),
        "size": sum(p.stat().st_size for p in files),
        "mtime_ns": max((p.stat().st_mtime_ns for p in files), default=0),
    }


def job_fingerprint(checkpoint, model_config, memory_config, merge_objects: bool) -> dict:
    """The parts of a fingerprint shared by every video of a run."""
    return {
        "checkpoint": checkpoint_identity(checkpoint),
        "model": dataclasses.asdict(model_config),
        "memory": memory_config.to_dict(),
        "merge_objects": bool(merge_objects),
        "code": code_version(),
    }


def video_fingerprint(job: dict, video) -> dict:
    """The job fingerprint plus this video's inputs (frame list with sizes/mtimes, first mask)."""
    digest = hashlib.sha256()
    for path in video.frame_paths:
        stat = _stat(path)
        digest.update(f"{path.name}\0{stat['size']}\0{stat['mtime_ns']}\n".encode())
    mask = Path(video.first_mask_path)
    return {
        **job,
        "inputs": {
            "frames_folder": str(Path(video.frame_paths[0]).parent.resolve()),
            "num_frames": len(video.frame_paths),
            "frames_sha256": digest.hexdigest(),
            "first_mask": {"path": str(mask.resolve()), **_stat(mask)},
        },
    }


def short_id(fingerprint: dict) -> str:
    """12 hex digits identifying a fingerprint (for CSVs and messages)."""
    text = json.dumps(fingerprint, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields that differ, e.g. ['checkpoint.path', 'memory.mem_every']."""
    names = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names.extend(differences(a, b, f"{prefix}{key}."))
        elif a != b:
            names.append(f"{prefix}{key}")
    return names


def describe_changes(old: dict, new: dict) -> list[str]:
    """`differences` for messages: the checkpoint as 'checkpoint (OLD -> NEW)', other fields dotted."""
    names = differences(old, new)
    described = [n for n in names if not n.startswith("checkpoint.")]
    if len(described) < len(names):
        before, after = old.get("checkpoint", {}), new.get("checkpoint", {})
        if before.get("path") != after.get("path"):
            change = f"checkpoint ({before.get('path')} -> {after.get('path')})"
        else:
            change = f"checkpoint ({after.get('path')} changed on disk)"
        described.insert(0, change)
    return described


def read_fingerprint(folder: str | os.PathLike, name: str = FINGERPRINT_FILE) -> dict | None:
    """The fingerprint recorded in `folder`, or None if there is none (or it is unreadable)."""
    try:
        return json.loads((Path(folder) / name).read_text())
    except (OSError, ValueError):
        return None


def csv_source(pred_root: str | os.PathLike) -> dict[str, str]:
    """Columns for a results CSV naming the checkpoint and fingerprint of the predictions' job."""
    job = read_fingerprint(pred_root, JOB_FILE)
    if not job:
        return {}
    return {
        "Checkpoint": job["checkpoint"]["path"],
        "Fingerprint": short_id(job),
        "Code": job.get("code", ""),
    }
