"""Re-runs the fault and bad-input cases a user meets, as that user would, and prints what happened.

Each case is a command line (or a few lines of the Python API) run in a fresh process on generated
data in a temporary folder: preemption and kill -9 of a training, two jobs in one workdir, odd
dataset trees and split files, bad config values, bad `Segmenter` inputs. The table shows the
exit code, the time and the first line of the error next to what a user should get (exit code 2 and
one line for a user error; 75 for a preempted training). Nothing is downloaded; every run is tiny.

Run:  python -m benchmarks.fault_cases [--only NAME,...] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "stm_jax" / "assets" / "synthetic_cpu"
TINY = "configs/synthetic_cpu.py:tiny"


def main_py(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), *args]


def env() -> dict:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}


def first_error(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("error:", "Error", "Traceback")) or "Error:" in line:
            return line.strip()
    return lines[-1].strip() if lines else ""


def run(command, cwd=None, timeout=600, **kwargs) -> tuple[int, float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout, **kwargs
    )
    return proc.returncode, time.perf_counter() - start, proc.stdout + proc.stderr


def wait_for(path: Path, timeout: float = 300) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if path.exists():
            return True
        time.sleep(0.2)
    return False


class Cases:
    """Every case is a method `case_<name>` returning (command shown, exit code, seconds, output)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.mounts: list[Path] = []
        from stm_jax.data.synthetic import write_synthetic_davis

        self.davis = write_synthetic_davis(
            tmp / "davis", num_train=0, num_val=2, num_frames=6, height=48, width=64, seed=3
        )

    # --- training: preemption, kills, two writers ---------------------------------------------

    def _training(self, workdir: Path, *flags: str, **popen):
        command = main_py(
            "--config", TINY, "--workdir", str(workdir), "--config.train.num_steps=400", *flags
        )
        return subprocess.Popen(command, cwd=ROOT, env=env(), text=True, **popen), command

    def _signalled_training(self, name: str, sig: signal.Signals):
        """A training that gets `sig` once it is logging steps; its output and saved steps."""
        work = self.tmp / name
        proc, command = self._training(work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(work / "metrics.jsonl")
        time.sleep(3)
        start = time.perf_counter()
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=300)
        steps = sorted(int(p.name) for p in (work / "checkpoints").glob("[0-9]*"))
        lines = [line for line in out.splitlines() if line.startswith("stopped:")]
        result = (lines[0] if lines else first_error(out)) + f" (checkpoints: {steps})"
        command = " ".join(command[1:]) + f"  + {sig.name}"
        return command, proc.returncode, time.perf_counter() - start, result

    def case_sigterm_training(self):
        return self._signalled_training("sigterm", signal.SIGTERM)

    def case_sigint_training(self):
        return self._signalled_training("sigint", signal.SIGINT)

    def case_resume_after_sigterm(self):
        work = self.tmp / "sigterm"
        command = main_py("--config", TINY, "--workdir", str(work), "--config.train.num_steps=40")
        code, seconds, out = run(command, cwd=ROOT)
        resumed = [line for line in out.splitlines() if "resum" in line.lower()]
        return " ".join(command[1:]), code, seconds, (resumed[0] if resumed else out)

    def case_kill9_training_with_workers(self):
        work = self.tmp / "kill9"
        proc, command = self._training(
            work, "--config.data.num_workers=2", stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        wait_for(work / "metrics.jsonl")
        time.sleep(2)
        start = time.perf_counter()
        os.kill(proc.pid, signal.SIGKILL)
        proc.stdout.read()  # what a wrapper (| tee, capture_output) waits for: EOF
        seconds = time.perf_counter() - start
        proc.wait()
        out = f"the wrapper's read returned {seconds:.1f} s after kill -9"
        return " ".join(command[1:]) + "  + kill -9", proc.returncode, seconds, out

    def case_two_trainings_one_workdir(self):
        work = self.tmp / "two"
        first, _ = self._training(work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(work / ".lock", 120)
        time.sleep(1)
        command = main_py("--config", TINY, "--workdir", str(work), "--config.train.lr=2e-4")
        code, seconds, out = run(command, cwd=ROOT)
        first.terminate()
        first.wait(timeout=300)
        return " ".join(command[1:]) + "  (while another runs)", code, seconds, out

    def case_non_finite_loss(self):
        work = self.tmp / "nan"
        command = main_py(
            "--config",
            TINY,
            "--workdir",
            str(work),
            "--config.train.num_steps=6",
            "--config.train.lr=1e30",
        )
        return " ".join(command[1:]), *run(command, cwd=ROOT)

    def case_resume_with_another_lr(self):
        work = self.tmp / "changed"
        run(main_py("--config", TINY, "--workdir", str(work)), cwd=ROOT)
        command = main_py(
            "--config",
            TINY,
            "--workdir",
            str(work),
            "--config.train.lr=2e-4",
            "--config.train.num_steps=4",
        )
        return " ".join(command[1:]), *run(command, cwd=ROOT)

    def case_no_workdir_second_training(self):
        cwd = self.tmp / "cwd"
        cwd.mkdir()
        run(main_py("--config", str(ROOT / TINY.replace(":tiny", "")) + ":tiny"), cwd=cwd)
        command = main_py(
            "--config", str(ROOT / "configs/synthetic_cpu.py") + ":tiny", "--config.train.lr=2e-4"
        )
        return " ".join(command[1:]) + "  (2nd, no --workdir)", *run(command, cwd=cwd)

    def _small_disk(self, name: str, size: str, *options: str) -> Path | None:
        """A tmpfs of `size` (root only): a disk that fills, or a read-only one."""
        mount = self.tmp / name
        mount.mkdir()
        proc = subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                ",".join([f"size={size}", *options]),
                "tmpfs",
                str(mount),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return None
        self.mounts.append(mount)
        return mount

    def case_disk_full_during_save(self):
        disk = self._small_disk("full", "8m")
        if disk is None:
            return "-", "no tmpfs (needs root)", 0.0, ""
        work = disk / "run"
        # The first checkpoint fits, later ones do not: the disk fills during the run.
        command = main_py(
            "--config",
            TINY,
            "--workdir",
            str(work),
            "--config.train.num_steps=50",
            "--config.train.checkpoint_every=1",
            "--config.train.keep_checkpoints=1000",
        )
        code, seconds, out = run(command, cwd=ROOT)
        lines = len([line for line in out.splitlines() if line.strip()])
        return (
            " ".join(command[1:]) + "  (8 MB disk)",
            code,
            seconds,
            (first_error(out) + f" ({lines} lines of output in all)"),
        )

    def case_read_only_workdir(self):
        disk = self._small_disk("ro", "1m", "ro")
        if disk is None:
            return "-", "no tmpfs (needs root)", 0.0, ""
        command = main_py("--config", TINY, "--workdir", str(disk))
        return " ".join(command[1:]) + "  (read-only)", *run(command, cwd=ROOT)

    # --- training: bad values ----------------------------------------------------------------

    def _bad_training(self, name, *flags, config=TINY):
        command = main_py("--config", config, "--workdir", str(self.tmp / name), *flags)
        return " ".join(command[1:]), *run(command, cwd=ROOT)

    def case_batch_size_0(self):
        return self._bad_training("b0", "--config.data.batch_size=0")

    def case_num_steps_0(self):
        return self._bad_training("s0", "--config.train.num_steps=0")

    def case_crop_not_multiple_of_16(self):
        return self._bad_training("crop", "--config.data.crop_size=100")

    def case_unknown_variant(self):
        return self._bad_training("variant", config="configs/synthetic_cpu.py:huge")

    def case_config_without_get_config(self):
        bad = self.tmp / "my_config.py"
        bad.write_text("LR = 1e-5\n")
        return self._bad_training("noget", config=str(bad))

    def case_workdir_is_a_file(self):
        path = self.tmp / "afile"
        path.write_text("x")
        command = main_py("--config", TINY, "--workdir", str(path))
        return " ".join(command[1:]), *run(command, cwd=ROOT)

    # --- segmenting: workdirs, folders, datasets ----------------------------------------------

    def _segment(self, workdir, *flags, config="configs/davis2017_val.py", cwd=ROOT, **popen):
        command = main_py(
            "--config", config, "--workdir", str(workdir), f"--config.checkpoint={SHIPPED}", *flags
        )
        return command, cwd

    def case_two_segment_jobs_one_workdir(self):
        from stm_jax.data.synthetic import write_synthetic_davis

        long = write_synthetic_davis(  # long enough to still run when the second job starts
            self.tmp / "davis_long", num_train=0, num_val=1, num_frames=300, height=96, width=128
        )
        work = self.tmp / "seg2"
        command, cwd = self._segment(work, f"--config.data.root={long}")
        first = subprocess.Popen(
            command, cwd=cwd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(work / ".lock", 120)
        code, seconds, out = run(command, cwd=cwd)
        first.wait(timeout=600)
        return " ".join(command[1:]) + "  (twice at once)", code, seconds, out

    def _folder_video(self):
        video = self.davis / "JPEGImages/480p"
        name = sorted(p.name for p in video.iterdir())[0]
        return video / name, self.davis / "Annotations/480p" / name / "00000.png"

    def case_frames_dot(self):
        frames, mask = self._folder_video()
        work = self.tmp / "dot"
        command, _ = self._segment(
            work,
            "--config.data.frames=.",
            f"--config.data.first_mask={mask}",
            config=str(ROOT / "configs/segment.py"),
        )
        code, seconds, out = run(command, cwd=frames)
        written = sorted(str(p.relative_to(work)) for p in (work / "predictions").glob("*/*.png"))
        return (
            " ".join(command[1:]) + f"  (in {frames.name}/)",
            code,
            seconds,
            (f"{written[:2]}... ({len(written)} PNGs)" if code == 0 else out),
        )

    def case_frames_dotdot(self):
        frames, mask = self._folder_video()
        work = self.tmp / "dotdot"
        command, _ = self._segment(
            work,
            "--config.data.frames=..",
            f"--config.data.first_mask={mask}",
            config=str(ROOT / "configs/segment.py"),
        )
        cwd = self._subfolder(frames)
        code, seconds, out = run(command, cwd=cwd)
        written = sorted(str(p.relative_to(work)) for p in (work / "predictions").glob("*/*.png"))
        return (
            " ".join(command[1:]) + f"  (in {frames.name}/sub/)",
            code,
            seconds,
            (f"{written[:2]}... ({len(written)} PNGs)" if code == 0 else out),
        )

    def _subfolder(self, frames):
        sub = self.tmp / "sub"
        if not sub.exists():
            shutil.copytree(frames, sub / frames.name)
            (sub / frames.name / "sub").mkdir()
        return sub / frames.name / "sub"

    def _split(self, lines: str) -> Path:
        root = self.tmp / f"davis_split_{abs(hash(lines))}"
        if not root.exists():
            shutil.copytree(self.davis, root)
        (root / "ImageSets/2017/val.txt").write_text(lines)
        return root

    def case_score_duplicate_sequence(self):
        names = (self.davis / "ImageSets/2017/val.txt").read_text().split()
        root = self._split("\n".join([names[0], names[0], *names[1:]]) + "\n")
        command = main_py(
            "--config",
            "configs/score.py",
            "--workdir",
            str(self.tmp / "score_dup"),
            f"--config.gt={root}",
            f"--config.pred={root / 'Annotations/480p'}",
        )
        return " ".join(command[1:]), *run(command, cwd=ROOT)

    def case_score_empty_split(self):
        root = self._split("")
        command = main_py(
            "--config",
            "configs/score.py",
            "--workdir",
            str(self.tmp / "score_empty"),
            f"--config.gt={root}",
            f"--config.pred={root / 'Annotations/480p'}",
        )
        return " ".join(command[1:]), *run(command, cwd=ROOT)

    def _youtube(self, name, edit):
        sys.path.insert(0, str(ROOT))
        from tests.data_fixtures import youtube_valid_tree

        root = youtube_valid_tree(self.tmp / f"yt_{name}").parent
        edit(root)
        command, cwd = self._segment(
            self.tmp / f"ytout_{name}",
            f"--config.data.root={root}",
            config="configs/youtubevos2019_valid.py",
        )
        return " ".join(command[1:]), *run(command, cwd=cwd)

    def case_youtubevos_missing_meta(self):
        return self._youtube("nometa", lambda root: (root / "valid/meta.json").unlink())

    def case_youtubevos_object_missing_from_first_annotation(self):
        def edit(root):
            meta = json.loads((root / "valid/meta.json").read_text())
            video = next(iter(meta["videos"].values()))
            first = next(iter(video["objects"].values()))["frames"]
            video["objects"]["9"] = {"category": "x", "frames": first}
            (root / "valid/meta.json").write_text(json.dumps(meta))

        return self._youtube("noobj", edit)

    def case_youtubevos_frame_missing_on_disk(self):
        def edit(root):  # a frame that meta.json lists
            (root / "valid/JPEGImages/vid01/00003.jpg").unlink()

        return self._youtube("noframe", edit)

    def case_youtubevos_killed_then_rerun(self):
        sys.path.insert(0, str(ROOT))
        from tests.data_fixtures import youtube_valid_tree

        root = youtube_valid_tree(self.tmp / "yt_kill", num_videos=12, num_frames=30).parent
        command, cwd = self._segment(
            self.tmp / "ytout_kill",
            f"--config.data.root={root}",
            config="configs/youtubevos2019_valid.py",
        )
        first = subprocess.Popen(
            command, cwd=cwd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        annotations = self.tmp / "ytout_kill" / "submission" / "Annotations"
        end = time.time() + 300
        while time.time() < end and len(list(annotations.glob("vid*"))) < 3:
            time.sleep(0.1)
        first.kill()
        first.wait()
        done_before = sorted(p.name for p in annotations.glob("vid*"))
        code, seconds, out = run(command, cwd=cwd)
        lines = [line for line in out.splitlines() if "kipping" in line or "error" in line]
        return (
            " ".join(command[1:]) + "  (kill -9, rerun)",
            code,
            seconds,
            (
                f"{len(done_before)} videos finished before the kill; rerun: "
                + (lines[0] if lines else first_error(out))
            ),
        )

    # --- the Python API ------------------------------------------------------------------------

    def case_segmenter_inputs(self):
        script = textwrap.dedent(
            f"""
            import numpy as np
            from stm_jax import Segmenter
            frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
            mask = np.zeros((64, 96), np.uint8); mask[10:30, 10:40] = 1
            def attempt(what, call):
                seg = Segmenter.from_checkpoint({str(SHIPPED)!r})
                try:
                    call(seg)
                    print(f"{{what}}: accepted")
                except Exception as error:
                    print(f"{{what}}: {{type(error).__name__}}: {{str(error).splitlines()[0]}}")
            attempt("float frame in [0,1]", lambda s: (s.start(frame / 255.0, mask), s.step(frame / 255.0)))
            attempt("int frame > 255", lambda s: s.start(frame.astype(np.int32) * 2, mask))
            attempt("grayscale frame", lambda s: s.start(frame[..., 0], mask))
            attempt("RGBA frame", lambda s: s.start(np.dstack([frame, frame[..., :1]]), mask))
            attempt("frame of another size", lambda s: (s.start(frame, mask), s.step(frame[:32])))
            attempt("bool mask", lambda s: s.start(frame, mask.astype(bool)))
            attempt("float mask", lambda s: s.start(frame, mask.astype(np.float32)))
            attempt("255 in mask", lambda s: s.start(frame, np.where(mask, 255, 0)))
            attempt("add_objects with a tracked id", lambda s: (s.start(frame, mask), s.step(frame), s.add_objects(mask)))
            big = np.zeros((2160, 3840, 3), np.uint8); big_mask = np.zeros((2160, 3840), np.uint8)
            big_mask[100:400, 100:600] = 1
            attempt("4K frame", lambda s: s.start(big, big_mask))
            def other_state(s):
                s.start(frame, mask); s.step(frame); s.save_state("state.npz")
                other = Segmenter.from_checkpoint({str(SHIPPED)!r}, capacity=3, eviction="long_term")
                other.load_state("state.npz")
            attempt("load_state from another memory config", other_state)
            """
        )
        code, seconds, out = run([sys.executable, "-c", script], cwd=self.tmp)
        return "python -c '<Segmenter calls>'", code, seconds, out


EXPECTED = {  # what a user should get: the exit code (None: see the output)
    "sigterm_training": 75,
    "sigint_training": 75,
    "resume_after_sigterm": 0,
    "kill9_training_with_workers": -9,
    "segmenter_inputs": 0,
    "frames_dot": 0,
    "frames_dotdot": 0,
    "youtubevos_killed_then_rerun": 0,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="stm_jax_faults_"))
    cases = Cases(tmp)
    names = [n[len("case_") :] for n in dir(cases) if n.startswith("case_")]
    order = ["sigterm_training", "resume_after_sigterm"]  # the resume reads the first's workdir
    names = order + [n for n in names if n not in order]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    print("| case | exit (expected) | s | command | result (first error line) |")
    print("|---|---|---|---|---|")
    for name in names:
        try:
            command, code, seconds, out = getattr(cases, f"case_{name}")()
        except Exception as error:  # a case that cannot even be set up is a finding too
            command, code, seconds, out = "-", "setup failed", 0.0, repr(error)
        expected = EXPECTED.get(name, 2)
        result = out.strip() if name == "segmenter_inputs" else first_error(out)
        result = result.replace("\n", "<br>").replace("|", "\\|")
        command = command.replace(str(ROOT) + "/", "").replace(str(tmp), "$TMP")
        result = result.replace(str(tmp), "$TMP")
        print(
            f"| {name} | {code} ({expected}) | {seconds:.1f} | `{command}` | {result} |", flush=True
        )
    for mount in cases.mounts:
        subprocess.run(["umount", str(mount)], check=False)
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
