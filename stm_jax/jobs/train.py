"""The 'train' job: `python main.py --config configs/<name>.py --workdir W`.

Start-up order (big_vision): a checkpoint in W/checkpoints -> `config.resume` -> `config.init_from`
-> scratch. Then: one jitted data-parallel update per global batch, logs (tqdm, metrics.jsonl,
TensorBoard; the bar's and the logged loss and clips/s are over the last `train.log_every` steps),
async orbax saves every `train.checkpoint_every` steps, and every `train.eval_every` steps J&F on
`config.eval.source`, with side-by-side sheets of `eval.images` held-out videos as TensorBoard
images. One orbax manager in W/checkpoints keeps the latest `train.keep_checkpoints` steps plus the
best-J&F step (an evaluation that beats the best so far is saved even off the checkpoint cadence).
A non-finite loss stops the run before anything is saved, so the last checkpoint on disk is the
last good one. Before the first step, `stm_jax.training.run_checks` refuses values that cannot run
and a resume whose settings differ from WORKDIR/config.json in a way that changes the results
(unless `resume_changed=True`), each in one line.

Health (stm_jax.training.health): at the first step and every log step, metrics.jsonl and the
progress bar get the fraction of foreground logits at the aggregation clamp, the gradient norm per
module, the data counters per source and the max skip; the first step also prints a report and
actionable warnings. `train.dry_run=N` runs N steps, prints the report and exits without saving.
"""

from __future__ import annotations

import logging
import math
import zlib
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from stm_jax import checkpoint_io, workdir_lock
from stm_jax.cli_errors import UserError
from stm_jax.data.pipeline import make_train_iterator, to_global_batch
from stm_jax.data.sampling import max_skip_at_step
from stm_jax.jobs.config_base import train_config
from stm_jax.model.config import ModelConfig
from stm_jax.training import distributed
from stm_jax.training.cpu_compile import allocator_hint
from stm_jax.training.eval_images import prediction_sheets
from stm_jax.training.evaluate import copy_first_frame_baseline, evaluate, load_eval_videos
from stm_jax.training.forward import training_memory
from stm_jax.training.health import health_report, health_warnings
from stm_jax.training.init import initial_variables
from stm_jax.training.metric_writer import MetricWriter, save_config
from stm_jax.training.preemption import StopRequest, TrainingPreempted
from stm_jax.training.progress import StepWindow
from stm_jax.training.run_checks import (
    as_json,
    check_resume,
    check_run_config,
    keep_previous_config,
)
from stm_jax.training.save_guard import SaveGuard
from stm_jax.training.step import init_train_state, make_mesh, make_train_step, replicate

log = logging.getLogger(__name__)


class NonFiniteLossError(UserError, FloatingPointError):
    """Raised when the loss is NaN/inf; nothing of that step has been saved."""


def last_good_checkpoint(manager, checkpoints: Path) -> str:
    """'the last good checkpoint is step N in DIR' or 'no checkpoint saved yet ...'."""
    steps = [int(s) for s in manager.all_steps()]  # only finished saves are listed
    if not steps:
        return f"no checkpoint saved yet in {checkpoints}, so a rerun starts from scratch"
    return f"the last good checkpoint is step {max(steps)} in {checkpoints}"


def _abstract(tree, sharding):
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding), tree
    )


def batch_fingerprint(batch: dict) -> int:
    """CRC-32 of this process's frames and labels: logged per step to prove which data was seen."""
    crc = zlib.crc32(np.ascontiguousarray(batch["frames"]).tobytes())
    return zlib.crc32(np.ascontiguousarray(batch["labels"]).tobytes(), crc)


def host_variables(state, batch_stats) -> dict:
    """Replicated device state -> host numpy variables (one local copy; works multi-process)."""
    local = lambda x: np.asarray(x.addressable_data(0))  # noqa: E731
    return {
        "params": jax.tree.map(local, state["params"]),
        "batch_stats": jax.tree.map(local, batch_stats),
    }


def _say(message: str) -> None:
    if jax.process_index() == 0:
        print(message, flush=True)


def _meta(config, model_config: ModelConfig, step: int, score: float | None = None) -> dict:
    return {
        "model": model_config.to_dict(),
        "step": int(step),
        "score": score,
        "config": config.to_dict() if hasattr(config, "to_dict") else dict(config),
        # The user's modules that registered entries of this run (checked when it is loaded).
        "plugins": config.get("plugins", ""),
    }


def _start_state(config, model_config, workdir, manager, mesh, iterator):
    """Restores or initialises (state, batch_stats, start step, description)."""
    replicated = NamedSharding(mesh, PartitionSpec())
    t = config.train
    variables, origin = None, ""
    sources = []
    if manager.latest_step() is not None:
        sources.append((manager, f"{workdir}/checkpoints", True))
    elif config.get("resume"):
        directory, _ = checkpoint_io.find_checkpoint(config.resume, which="latest")
        sources.append(
            (checkpoint_io.make_manager(directory, async_save=False), str(directory), False)
        )
    if sources:
        source_manager, where, own = sources[0]
        # Structure/shapes only: a scratch init on the host (cheap) gives the restore targets.
        template, _ = initial_variables(model_config, "", int(t.seed))
        abstract_state = _abstract(
            jax.eval_shape(lambda: init_train_state(template["params"], t, int(t.seed))), replicated
        )
        abstract_bs = _abstract(template["batch_stats"], replicated)
        state, batch_stats, _, step = checkpoint_io.restore_newest_intact(
            source_manager, abstract_state, abstract_bs, model_config, where, iterator, own
        )
        return state, batch_stats, int(step), f"resumed step {step} from {where}"
    variables, origin = initial_variables(model_config, config.get("init_from", ""), int(t.seed))
    state = replicate(init_train_state(variables["params"], t, int(t.seed)), mesh)
    return state, replicate(variables["batch_stats"], mesh), 0, f"initialised from {origin}"


def resolved_data_config(config):
    """config.data with the run-length-dependent fields filled in (stcn max-skip: total clips)."""
    data = config.data.copy_and_resolve_references()
    schedule = data.max_skip
    if schedule.kind == "stcn" and int(schedule.get("total_clips", 0)) <= 0:
        schedule.total_clips = int(config.train.num_steps) * int(data.batch_size)
    return data


def run(config, workdir: str) -> dict:
    """Trains per `config`; returns the final metrics (also written to the workdir).

    Args:
      config: ConfigDict (see `stm_jax.jobs.config_base.train_config`).
      workdir: run folder (checkpoints, logs, config).
    Returns:
      {'step', 'loss', the last evaluation's numbers if any, and 'variables': this process's host
      copy of the final {'params', 'batch_stats'}}.
    """
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every save step at INFO
    distributed.maybe_initialize(config.get("distributed"))
    # The CLI holds it already (re-entrant); a Python caller gets the same one-writer guard.
    with workdir_lock.holding(workdir, "train", process=jax.process_index()) as path:
        return _run_locked(config, path)


def _run_locked(config, workdir: Path) -> dict:
    t = config.train
    model_config = ModelConfig.from_config(config.model)
    # Training reads memory with the family's training protocol; evaluation with its inference one.
    memory_config = training_memory(model_config, config.memory)
    check_run_config(config, model_config.max_objects, jax.device_count())
    chief = jax.process_index() == 0
    mesh = make_mesh()
    manager = checkpoint_io.make_manager(
        workdir / checkpoint_io.CHECKPOINTS,
        int(t.keep_checkpoints),
        bool(t.async_checkpoint),
        keep_best=True,
    )
    done = manager.latest_step()
    # A resume must have the saved settings (or resume_changed); checked before anything is loaded.
    changed = [] if done is None else check_resume(config, workdir, done, as_json(train_config()))
    data_config = resolved_data_config(config)
    iterator = make_train_iterator(data_config)  # sources indexed: structural faults stop here
    state, batch_stats, start, origin = _start_state(
        config, model_config, workdir, manager, mesh, iterator
    )
    # Written once the checkpoint is restored: a resume that fails leaves the saved settings.
    if changed and chief:
        keep_previous_config(workdir)
    save_config(config, workdir, chief)
    dry_run = int(t.get("dry_run", 0))
    num_steps = min(int(t.num_steps), start + dry_run) if dry_run > 0 else int(t.num_steps)
    _say(
        f"[train] {origin}; {jax.process_count()} process(es), {jax.device_count()} device(s); "
        f"global batch {config.data.batch_size}; steps {start} -> {num_steps}"
        + (f" (dry run of {dry_run} steps: no checkpoint, no evaluation)" if dry_run > 0 else "")
    )
    hint = allocator_hint(jax.devices())
    if hint:
        _say(hint)
    step_fn = make_train_step(mesh, model_config, t, memory_config)
    writer = MetricWriter(workdir, chief)
    eval_videos = load_eval_videos(config.eval) if int(t.eval_every) > 0 and not dry_run else []
    best_score = -math.inf
    if eval_videos:
        previous_best = checkpoint_io.best_score(workdir)  # a resumed run's (or an older best/)
        best_score = -math.inf if previous_best is None else previous_best
        baseline = copy_first_frame_baseline(eval_videos)
        _say(
            f"[eval] {len(eval_videos)} videos; copy-first-frame baseline J&F {baseline['J&F']:.4f}"
        )
        writer.write(start, baseline, prefix="eval/baseline_")
    # Line-buffered: every step's line is on disk even if the process is killed.
    batches_log = (
        open(workdir / "batches.jsonl", "a", buffering=1)
        if chief and t.get("log_batches")
        else None
    )
    from tqdm import tqdm

    bar = tqdm(
        total=num_steps,
        initial=start,
        disable=not (chief and t.progress_bar),
        unit="step",
        dynamic_ncols=True,
    )
    result = {"step": start}
    # Loss and clips/s over the last log_every steps, for the bar at every step and for each log.
    window = StepWindow(int(t.log_every) or 1, int(config.data.batch_size))
    health = {}  # the bar's health fields, from the latest log step
    step = start
    reports = []
    checkpoints = workdir / checkpoint_io.CHECKPOINTS
    guard = SaveGuard(checkpoints).__enter__()

    def save(at: int, score: float | None = None) -> None:
        """Saves step `at`: the state and batch_stats the loop holds when this is called."""
        guard.run(
            at,
            checkpoint_io.save_step,
            manager,
            at,
            state,
            batch_stats,
            _meta(config, model_config, at, score),
            iterator,
            score=score,
        )

    stop = StopRequest().__enter__()
    stopped = None
    try:
        while step < num_steps:
            if stop.requested():
                stopped = stop.signal_name
                break
            guard.check(manager)  # a failed background save stops the run here
            local_batch = next(iterator)
            if batches_log:
                batches_log.write(f'{{"step": {step}, "crc": {batch_fingerprint(local_batch)}}}\n')
            state, metrics = step_fn(state, batch_stats, to_global_batch(local_batch, mesh))
            loss = float(metrics["loss"])  # also syncs: a NaN is caught before any save
            if not math.isfinite(loss):
                # An in-flight save of a good step completes first.
                guard.run(step, manager.wait_until_finished)
                raise NonFiniteLossError(
                    f"non-finite loss {loss} at step {step + 1}; stopped before saving it: "
                    f"{last_good_checkpoint(manager, checkpoints)}. Lower train.lr, set "
                    "train.grad_clip, or check the data."
                )
            step += 1
            window.add(loss, compiled=step == start + 1)
            bar.set_postfix(**window.postfix(), **health, refresh=False)
            bar.update(1)
            result = {"step": step, "loss": loss}
            first = step == start + 1
            last = step == num_steps
            if first or last or (t.log_every and step % int(t.log_every) == 0):
                # Health at the first step (its gradients are those of the initial weights) and
                # at every log step: saturation, grad norm per module, data counters, max skip.
                values = {k: float(v) for k, v in jax.device_get(metrics).items()}
                # The logged loss is the window's mean (this step's alone is loss_step).
                values["loss_step"], values["loss"] = values["loss"], window.loss
                values["steps_per_s"] = window.steps_per_s
                values["clips_per_s"] = window.clips_per_s
                values["max_skip"] = max_skip_at_step(
                    step - 1, int(data_config.batch_size), dict(data_config.max_skip)
                )
                values.update(iterator.data_counts())
                writer.write(step, values, prefix="train/")
                resampled = sum(v for k, v in values.items() if k.startswith("data/resampled"))
                health = {
                    "sat": f"{100 * values['saturated_fraction']:.1f}%",
                    "gnorm": f"{values['grad_norm']:.3g}",
                    "skip": values["max_skip"],
                    "resampled": int(resampled),
                }
                bar.set_postfix(**window.postfix(), **health)
                if first or (dry_run and last):
                    report = health_report(step - 1 if first else step, values)
                    reports.append(report)
                    _say(report)
                    for warning in health_warnings(values, first_step=first and start == 0):
                        _say(warning)
            if dry_run:
                continue
            due = bool(t.checkpoint_every and step % int(t.checkpoint_every) == 0) or last
            score = None
            if eval_videos and (step % int(t.eval_every) == 0 or last):
                scores, predictions = evaluate(
                    model_config,
                    config.memory,  # the family's inference protocol where unset
                    host_variables(state, batch_stats),
                    eval_videos,
                    return_predictions=True,
                )
                writer.write(step, scores, prefix="eval/")
                sheets = prediction_sheets(
                    eval_videos, predictions, int(config.eval.get("images", 0))
                )
                writer.write_images(step, sheets, prefix="eval/")
                if chief:
                    bar.write(
                        f"[eval] step {step}: J&F {scores['J&F']:.4f} "
                        f"(J {scores['J']:.4f}, F {scores['F']:.4f})"
                    )
                result.update({f"eval_{k}": v for k, v in scores.items()})
                score = float(scores["J&F"])
                if score > best_score:  # a new best is saved even off the checkpoint cadence
                    best_score, due = score, True
                window.restart_clock()  # evaluation time is not step time
            if due:
                save(step, score)
        if stopped:
            guard.run(step, manager.wait_until_finished)
            saved = step if step in manager.all_steps() else None
            if saved is None and step > start and not dry_run:
                save(step)
                guard.run(step, manager.wait_until_finished)
                saved = step
    finally:
        stop.__exit__()
        bar.close()
        guard.run(step, manager.wait_until_finished)
        guard.__exit__()
        manager.close()
        writer.close()
        if batches_log:
            batches_log.close()
        if hasattr(iterator, "close"):
            iterator.close()
    if stopped:
        where = (
            f"checkpoint step {saved} saved in {checkpoints}"
            if saved is not None
            else f"{last_good_checkpoint(manager, checkpoints)} (nothing new to save)"
        )
        raise TrainingPreempted(
            f"training stopped by {stopped} at step {step}; {where}, logs flushed. Rerun the same "
            "command to resume.",
            saved,
        )
    _say(f"[train] done at step {step}; {iterator.summary()}")
    result["health_reports"] = reports
    result["variables"] = host_variables(state, batch_stats)
    return result
