"""The training loop: AdamW, clipping, bf16 autocast, checkpoints, resume, DDP, metrics.json.

One code path for one process and for torchrun: with ``world_size`` ranks,
step ``s`` of an epoch uses batches ``s * world_size + rank`` of that epoch's
deterministic, length-bucketed batch list, so the ranks see disjoint data and
a resumed run sees exactly the batches the interrupted one would have seen.

``train`` reads top to bottom like nanoGPT's loop; each piece it calls does one
job: ``placement``, ``build_optimizer``, ``restore``, ``for_every_rank``,
``training_batches``, ``train_step``, ``validate``, ``save_checkpoint``,
``final_metrics``. Built in chapter 07 §4;
tested in tests/test_train_loop.py, test_train_resume.py, test_train_distributed.py.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from utils.runtime import choose_device, seed_everything
from utils.seq2seq import masked_cross_entropy
from utils.training import distributed
from utils.training.checkpoint import CHECKPOINT_NAME, FORMAT_VERSION, read_checkpoint, save_atomic
from utils.training.config import TrainConfig
from utils.training.evaluation import bleu_on_split
from utils.training.metrics_file import METRICS_NAME, environment_info, write_metrics
from utils.training.run_state import (
    IntervalMeter,
    RunState,
    TrainingDiverged,
    rng_state,
    set_rng_state,
)

__all__ = ["TrainingDiverged", "build_optimizer", "train", "train_step", "training_batches"]


def _model_config_dict(model: nn.Module) -> dict | None:
    config = getattr(model, "config", None)
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None


def _same_model_config(saved: dict, model: nn.Module) -> bool:
    """Whether a checkpoint's model config is ``model``'s. A config saved before a field existed
    (the transformer's, for the LSTM models) lacks it: compared with that field's default."""
    current = _model_config_dict(model)
    if saved == current:
        return True
    try:
        return dataclasses.asdict(type(model.config)(**saved)) == current
    except (AttributeError, TypeError, ValueError):
        return False


def _spec_dict(data_spec) -> dict | None:
    if data_spec is None or isinstance(data_spec, dict):
        return data_spec
    return dataclasses.asdict(data_spec)


def build_optimizer(model: nn.Module, config: TrainConfig, device: torch.device):
    """AdamW (no weight decay on biases, norms and embeddings) and the warm-up + cosine schedule."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim < 2 or "embedding" in name else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, **({"fused": True} if device.type == "cuda" else {}),
    )
    # a plain function, so the scheduler's state_dict stores no callable (``--steps`` may change on resume)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: config.lr_factor(step))
    return optimizer, scheduler


def restore(path: Path, model, optimizer, scheduler, run: RunState, config: TrainConfig, info, device) -> None:
    """Continue from the checkpoint at ``path``: tensors, run state, random states, data position."""
    checkpoint = read_checkpoint(path, map_location="cpu")
    saved_model = checkpoint.get("model_config")
    if saved_model is not None and not _same_model_config(saved_model, model):
        raise ValueError(f"--resume: {path} holds a model with {saved_model}, not {_model_config_dict(model)}")
    model.load_state_dict(checkpoint["model_state"])
    optimizer.load_state_dict(checkpoint["optimizer_state"])
    scheduler.load_state_dict(checkpoint["scheduler_state"])
    run.load_state_dict(checkpoint["run"])
    rng_states = checkpoint["rng_states"]
    if len(rng_states) == info.world_size:
        set_rng_state(rng_states[info.rank], device)
    else:
        # another number of processes: continue at the same place of the epoch's batch list
        # (rounded down: a few batches may be seen twice), with fresh dropout masks
        run.next_batch = run.next_batch * len(rng_states) // info.world_size
        seed_everything(config.seed + info.rank + 1000 * run.step)
    run.resumed_from.append(run.step)


def training_batches(data, config: TrainConfig, run: RunState, info) -> Iterator:
    """This rank's training batches from ``run.epoch``/``run.next_batch`` on, until ``config.steps``.

    Owns the epochs: each has its own shuffled, length-bucketed batch list; the run's position
    moves past a batch as it is handed out, so a checkpoint taken after the step resumes after it.
    """
    epoch, batch_lists = None, []
    while run.step < config.steps:
        if epoch != run.epoch:
            epoch = run.epoch
            batch_lists = data.batch_indices("train", config.batch_size, shuffle=True, seed=config.seed,
                                             epoch=epoch, max_len=config.max_len)
            run.batches_per_epoch = len(batch_lists) // info.world_size  # equal counts keep ranks in step
            if run.batches_per_epoch == 0:
                raise ValueError(f"the training split gives {len(batch_lists)} batch(es) of {config.batch_size} "
                                 f"(max_len {config.max_len}), fewer than the {info.world_size} process(es): "
                                 f"use a smaller batch_size or more data")
        if run.next_batch >= run.batches_per_epoch:  # resumed with more processes than before
            run.epoch, run.next_batch = run.epoch + 1, 0
            continue
        indices = batch_lists[run.next_batch * info.world_size + info.rank]
        run.next_batch += 1
        if run.next_batch == run.batches_per_epoch:
            run.epoch, run.next_batch = run.epoch + 1, 0
        yield data.make_batch("train", indices)


def train_step(model, batch, optimizer, scheduler, config: TrainConfig, use_amp: bool) -> torch.Tensor:
    """One optimizer step on ``batch``; returns ``(loss * tokens, tokens)``, float64, on the device.

    Nothing here waits for the device: the caller checks the loss at its log interval.
    """
    with torch.autocast(batch.src.device.type, dtype=torch.bfloat16, enabled=use_amp):
        logits, _ = model(batch.src, batch.src_valid_lens, batch.tgt_in)
    loss, num_tokens = masked_cross_entropy(logits.float(), batch.tgt_out, batch.tgt_valid_lens,
                                            config.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.clip_norm > 0:
        nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
    optimizer.step()
    scheduler.step()
    tokens = num_tokens.double()
    return torch.stack([loss.detach().double() * tokens, tokens])


def validate(model, data, config: TrainConfig, run: RunState, info, device, say) -> None:
    """Greedy sacreBLEU on up to ``config.eval_sentences`` validation sentences (rank 0)."""
    if info.is_main and config.eval_sentences > 0 and len(data.pairs["valid"]) > 0:

        # decoding draws no random numbers, but keep it from ever shifting the training RNG
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            result = bleu_on_split(model, data, "valid", max_sentences=config.eval_sentences,
                                   batch_size=max(config.batch_size, 64))
        run.bleu.append({"step": run.step, "bleu": round(result.bleu, 2), "sentences": result.num_sentences})
        say(f"step {run.step}: valid sacreBLEU {result.bleu:.1f} ({result.num_sentences} sentences, greedy)")
    distributed.barrier(info)


def save_checkpoint(path: Path, model, optimizer, scheduler, run: RunState, meter: IntervalMeter,
                    config: TrainConfig, data, data_spec, info, device, started: float) -> None:
    """Everything ``restore`` needs, written atomically by rank 0 (every rank sends its RNG state)."""
    rng_states = distributed.all_gather_objects(rng_state(device), info)
    if info.is_main:
        save_atomic({
            "format": FORMAT_VERSION,
            "step": run.step,
            "model_state": model.state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "scheduler_state": scheduler.state_dict(),
            "rng_states": rng_states,
            # the interval not yet logged counts too: a resumed run's totals stay exact
            "run": {**run.state_dict(), "tokens": run.tokens + meter.tokens(),
                    "train_seconds": run.train_seconds + meter.seconds,
                    "wall_seconds": run.wall_seconds + time.perf_counter() - started},
            "train_config": dataclasses.asdict(config),
            "model_config": _model_config_dict(model),
            "src_vocab": data.src_vocab.to_dict(),
            "tgt_vocab": data.tgt_vocab.to_dict(),
            "data_spec": _spec_dict(data_spec),
            "world_size": info.world_size,
        }, path)
    distributed.barrier(info)


def log_interval(meter: IntervalMeter, run: RunState, scheduler, progress: _Progress) -> None:
    """Close the log interval: one synchronisation, one entry in ``run.losses``, one line."""
    lr = scheduler.get_last_lr()[0]
    loss, tokens, seconds, steps = meter.flush(lr)
    run.tokens += tokens
    run.train_seconds += seconds
    run.losses.append({"step": run.step, "loss": round(loss, 5), "lr": float(f"{lr:.6g}"),
                       "tokens_per_s": round(tokens / max(seconds, 1e-9), 1), "steps": steps})
    progress.set_loss(loss)
    progress.say(f"step {run.step}: loss {loss:.4f}, lr {lr:.3g}, {tokens / max(seconds, 1e-9):,.0f} tokens/s")


class _Progress:
    """A tqdm bar on rank 0 (``progress=True``), else lines to ``log`` (rank 0), else silence."""

    def __init__(self, enabled: bool, log, info, total: int, initial: int):
        self.log = log if info.is_main else None
        self.bar = None
        if enabled and info.is_main:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=min(initial, total), desc="training", unit="step",
                            dynamic_ncols=True)

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def set_loss(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)
        elif self.log is not None:
            self.log(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def final_metrics(model, data, config: TrainConfig, run: RunState, info, device, data_spec, use_amp: bool,
                  fingerprints: list, started: float) -> dict:
    """What ``metrics.json`` holds: the run's totals, curves, configuration and environment."""
    return {
        "status": "finished",
        "steps": run.step,
        "epochs": run.epochs,
        "tokens_per_s": round(run.tokens / max(run.train_seconds, 1e-9), 1),
        "train_tokens": run.tokens,
        "train_seconds": round(run.train_seconds, 3),
        "wall_seconds": round(run.wall_seconds + time.perf_counter() - started, 3),
        "final_loss": run.losses[-1]["loss"] if run.losses else None,
        "losses": run.losses,
        "valid_bleu": run.bleu[-1]["bleu"] if run.bleu else None,
        "bleu": run.bleu,
        "bleu_decoding": "greedy",
        "world_size": info.world_size,
        "ranks_identical": all(f == fingerprints[0] for f in fingerprints),
        "resumed_from_steps": run.resumed_from,
        "amp": "bf16" if use_amp else "off",
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "train_config": dataclasses.asdict(config),
        "model_config": _model_config_dict(model),
        "data": _spec_dict(data_spec),
        "data_sizes": {name: len(pairs) for name, pairs in data.pairs.items()},
        **environment_info(device),
    }


def placement(device, out_dir) -> tuple:
    """``(info, device, checkpoint_path)``: this rank, its device, and where the checkpoint goes
    (``None`` without ``out_dir``; rank 0 creates the folder)."""
    requested = choose_device(device)
    info = distributed.init_distributed(requested)
    device = distributed.device_for_rank(info, requested)
    if out_dir is None:
        return info, device, None
    if info.is_main:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    return info, device, Path(out_dir) / CHECKPOINT_NAME


def for_every_rank(model: nn.Module, info, device: torch.device) -> nn.Module:
    """The model wrapped in ``DistributedDataParallel`` under torchrun (gradients averaged over the
    ranks), else the model itself."""
    if not info.enabled:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _check_arguments(model, config, out_dir, resume) -> None:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir, the folder that holds checkpoint.pt")


def train(model: nn.Module, data, config: TrainConfig, out_dir=None, *, resume: bool = False, device=None,
          progress: bool = True, data_spec=None, log=None) -> dict:
    """Train ``model`` on ``data.batches("train", …)`` for ``config.steps`` steps; return the metrics.

    ``model``: a ``Seq2Seq`` (``forward(src, src_valid_lens, tgt_in) -> (logits, weights)``).
    ``data``: a ``TranslationData``. ``out_dir`` (optional): where ``checkpoint.pt`` (every
    ``config.checkpoint_every`` steps and at the end, written atomically) and ``metrics.json``
    go; without it nothing is written. ``resume=True``: continue from ``out_dir/checkpoint.pt``
    (model, optimizer, scheduler, RNG states, position in the data), ending with the same
    parameters as an uninterrupted run; without a checkpoint there it starts from scratch.
    ``device``: a ``torch.device`` or name (default: CUDA when available). ``data_spec``: a
    ``DataSpec`` (or its dict) saved in the checkpoint so that ``attn evaluate`` can rebuild the
    same splits. ``log``: called (on rank 0) with a line per log interval and validation, e.g.
    ``print`` for a log file without a progress bar.

    Under torchrun every rank calls ``train`` with the same arguments; the model is wrapped in
    ``DistributedDataParallel``; only rank 0 writes files. The loss is checked at every log
    interval, validation and checkpoint (the only times the loop waits for the device): a NaN or
    infinite loss raises ``TrainingDiverged`` naming its step, before anything is saved.

    Used in chapter 07 §4; tested in tests/test_train_loop.py, tests/test_train_resume.py.
    """
    _check_arguments(model, config, out_dir, resume)
    started = time.perf_counter()
    info, device, checkpoint_path = placement(device, out_dir)
    model.to(device).train()
    optimizer, scheduler = build_optimizer(model, config, device)
    run = RunState()
    seed_everything(config.seed + info.rank)  # ranks draw different dropout masks
    if resume and checkpoint_path.is_file():
        restore(checkpoint_path, model, optimizer, scheduler, run, config, info, device)
    trained = for_every_rank(model, info, device)
    use_amp = config.amp == "bf16" and device.type == "cuda"
    progress = _Progress(progress, log, info, config.steps, run.step)
    meter = IntervalMeter(device, info, first_step=run.step)

    def checkpoint() -> None:
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, optimizer, scheduler, run, meter, config, data, data_spec,
                            info, device, started)

    def paused(action) -> None:  # validation and checkpoints: after a loss check, off the clock
        meter.pause(scheduler.get_last_lr()[0])
        action()
        meter.restart()

    try:
        for batch in training_batches(data, config, run, info):
            meter.add(train_step(trained, batch.to(device, non_blocking=True), optimizer, scheduler, config, use_amp))
            run.step += 1
            progress.step()
            if run.step % config.log_every == 0 or run.step == config.steps:
                log_interval(meter, run, scheduler, progress)
            if config.eval_every and run.step % config.eval_every == 0 and run.step < config.steps:
                paused(lambda: validate(model, data, config, run, info, device, progress.say))
            if config.checkpoint_every and run.step % config.checkpoint_every == 0:
                paused(checkpoint)
        if not run.bleu or run.bleu[-1]["step"] != run.step:
            validate(model, data, config, run, info, device, progress.say)
        checkpoint()  # the final state is always saved: it is what translate/evaluate load
        fingerprints = distributed.all_gather_objects(distributed.parameters_fingerprint(model), info)
    finally:
        progress.close()

    metrics = final_metrics(model, data, config, run, info, device, data_spec, use_amp, fingerprints, started)
    if checkpoint_path is not None and info.is_main:
        write_metrics(metrics, checkpoint_path.with_name(METRICS_NAME))
    distributed.barrier(info)
    return metrics
