"""The training loop: AdamW, clipping, bf16 autocast, checkpoints, resume, DDP, metrics.json.

One code path for one process and for torchrun: with ``world_size`` ranks,
step ``s`` of an epoch uses batches ``s * world_size + rank`` of that epoch's
deterministic, length-bucketed batch list, so the ranks see disjoint data and
a resumed run sees exactly the batches the interrupted one would have seen.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from utils.runtime import choose_device, seed_everything
from utils.train import distributed
from utils.train.checkpoint import CHECKPOINT_NAME, FORMAT_VERSION, read_checkpoint, save_atomic
from utils.train.config import TrainConfig
from utils.train.metrics_file import METRICS_NAME, environment_info, write_metrics


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: further steps would only spread the damage."""

    def __init__(self, step: int, loss: float, lr: float):
        self.step, self.loss, self.lr = step, loss, lr
        super().__init__(
            f"training diverged at step {step}: the loss is {loss} (not a finite number). "
            f"The learning rate ({lr:g}) is probably too high: try a lower one, e.g. --lr {lr / 10:g}."
        )


# ---------------------------------------------------------------- RNG states


def _rng_state(device: torch.device) -> dict:
    """Every random state a step can touch, in ``weights_only``-loadable types."""
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"key": numpy_state["state"]["key"].tolist(), "pos": int(numpy_state["state"]["pos"]),
                  "has_gauss": int(numpy_state["has_gauss"]), "gauss": float(numpy_state["gauss"])},
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": np.asarray(numpy_state["key"], dtype=np.uint32),
                                   "pos": numpy_state["pos"]},
                         "has_gauss": numpy_state["has_gauss"], "gauss": numpy_state["gauss"]})
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ---------------------------------------------------------------- helpers


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _model_config_dict(model: nn.Module) -> dict | None:
    config = getattr(model, "config", None)
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that a clock reading means something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _spec_dict(data_spec) -> dict | None:
    if data_spec is None or isinstance(data_spec, dict):
        return data_spec
    return dataclasses.asdict(data_spec)


class _Run:
    """The mutable state of one training run (what a checkpoint saves besides the tensors)."""

    def __init__(self):
        self.step = 0  # optimizer steps done
        self.epoch = 0  # the epoch the next batch comes from
        self.next_batch = 0  # index (per rank) of the next batch within that epoch
        self.losses: list[dict] = []  # one entry per log interval
        self.bleu: list[dict] = []  # one entry per validation
        self.tokens = 0  # target tokens trained on, all ranks
        self.train_seconds = 0.0  # time spent in training steps (no eval, no checkpoint)
        self.wall_seconds = 0.0  # wall time of earlier (interrupted) processes of this run
        self.resumed_from: list[int] = []

    def to_dict(self) -> dict:
        return dict(vars(self))

    def load(self, values: dict) -> None:
        for key, value in values.items():
            if hasattr(self, key):
                setattr(self, key, value)


# ---------------------------------------------------------------- the loop


def train(model: nn.Module, data, config: TrainConfig, out_dir, *, resume: bool = False, device=None,
          progress: bool = True, data_spec=None, log=None) -> dict:
    """Train ``model`` on ``data.batches("train", …)`` for ``config.steps`` steps; return the metrics.

    ``model``: a ``Seq2Seq`` (``forward(src, src_valid_lens, tgt_in) -> (logits, weights)``).
    ``data``: a ``TranslationData``. ``out_dir``: where ``checkpoint.pt`` (every
    ``config.checkpoint_every`` steps and at the end, written atomically) and
    ``metrics.json`` go. ``resume=True``: continue from ``out_dir/checkpoint.pt``
    (model, optimizer, scheduler, RNG states, position in the data), ending with
    the same parameters as an uninterrupted run; without a checkpoint there it
    starts from scratch. ``data_spec``: a ``DataSpec`` (or its dict) saved in the
    checkpoint so that ``attn evaluate`` can rebuild the same splits. ``log``: a
    function called (on rank 0) with a line per log interval and validation,
    e.g. ``print`` for a log file without a progress bar.

    Under torchrun every rank calls ``train`` with the same arguments; the
    model is wrapped in ``DistributedDataParallel``; only rank 0 writes files.
    Raises ``TrainingDiverged`` as soon as the loss is NaN or infinite.
    """
    from utils.seq2seq import masked_cross_entropy

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    requested = choose_device(device)
    info = distributed.init_distributed(requested)
    device = distributed.device_for_rank(info, requested)
    use_amp = config.amp == "bf16" and device.type == "cuda"
    checkpoint_path = out_dir / CHECKPOINT_NAME
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    model.to(device)
    model.train()
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        # biases, norms and embeddings are not shrunk towards zero
        (no_decay if parameter.ndim < 2 or "embedding" in name else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, **({"fused": True} if device.type == "cuda" else {}),
    )
    # a plain function, so the scheduler's state_dict stores no callable (``--steps`` may change on resume)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: config.lr_factor(step))
    run = _Run()
    # ranks draw different dropout masks; the same seed gives the same run
    seed_everything(config.seed + info.rank)

    if resume and checkpoint_path.is_file():
        checkpoint = read_checkpoint(checkpoint_path, map_location="cpu")
        saved_model = checkpoint.get("model_config")
        if saved_model is not None and saved_model != _model_config_dict(model):
            raise ValueError(f"--resume: {checkpoint_path} holds a model with {saved_model}, "
                             f"not {_model_config_dict(model)}")
        model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
        scheduler.load_state_dict(checkpoint["scheduler_state"])
        run.load(checkpoint["run"])
        rng_states = checkpoint["rng_states"]
        if len(rng_states) == info.world_size:
            _set_rng_state(rng_states[info.rank], device)
        else:
            # another number of processes: continue at the same place of the epoch's batch list
            # (rounded down: a few batches may be seen twice), with fresh dropout masks
            run.next_batch = run.next_batch * len(rng_states) // info.world_size
            seed_everything(config.seed + info.rank + 1000 * run.step)
        run.resumed_from.append(run.step)

    trained = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                  else None) if info.enabled else model

    def save_checkpoint() -> None:
        rng_states = distributed.all_gather_objects(_rng_state(device), info)
        if info.is_main:
            state = {
                "format": FORMAT_VERSION,
                "step": run.step,
                "model_state": model.state_dict(),
                "optimizer_state": optimizer.state_dict(),
                "scheduler_state": scheduler.state_dict(),
                "rng_states": rng_states,
                "run": {**run.to_dict(), "wall_seconds": run.wall_seconds + time.perf_counter() - started},
                "train_config": dataclasses.asdict(config),
                "model_config": _model_config_dict(model),
                "src_vocab": data.src_vocab.to_dict(),
                "tgt_vocab": data.tgt_vocab.to_dict(),
                "data_spec": _spec_dict(data_spec),
                "world_size": info.world_size,
            }
            save_atomic(state, checkpoint_path)
        distributed.barrier(info)

    def validate() -> None:
        if info.is_main and config.eval_sentences > 0 and len(data.pairs["valid"]) > 0:
            from utils.train.evaluation import bleu_on_split

            # decoding draws no random numbers, but keep it from ever shifting the training RNG
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                result = bleu_on_split(model, data, "valid", max_sentences=config.eval_sentences,
                                       batch_size=max(config.batch_size, 64))
            run.bleu.append({"step": run.step, "bleu": round(result.bleu, 2),
                             "sentences": result.num_sentences})
            say(f"step {run.step}: valid sacreBLEU {result.bleu:.1f} ({result.num_sentences} sentences, greedy)")
        distributed.barrier(info)

    def say(line: str) -> None:
        if bar is not None:
            bar.write(line)
        elif log is not None and info.is_main:
            log(line)

    bar = None
    if progress and info.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=min(run.step, config.steps), desc="training", unit="step",
                   dynamic_ncols=True)

    interval_loss = torch.zeros(2, dtype=torch.float64)  # (loss * tokens, tokens) since the last log
    interval_started, interval_train_seconds = run.step, 0.0
    per_rank = 1
    try:
        while run.step < config.steps:
            batch_lists = data.batch_indices("train", config.batch_size, shuffle=True, seed=config.seed,
                                             epoch=run.epoch, max_len=config.max_len)
            per_rank = len(batch_lists) // info.world_size  # equal counts keep the ranks in step
            if per_rank == 0:
                raise ValueError(
                    f"the training split gives {len(batch_lists)} batch(es) of {config.batch_size} (max_len "
                    f"{config.max_len}), fewer "
                    f"than the {info.world_size} process(es): use a smaller batch_size or more data"
                )
            while run.next_batch < per_rank and run.step < config.steps:
                _sync(device)
                step_started = time.perf_counter()
                batch = data.make_batch("train", batch_lists[run.next_batch * info.world_size + info.rank])
                batch = batch.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits, _ = trained(batch.src, batch.src_valid_lens, batch.tgt_in)
                loss, num_tokens = masked_cross_entropy(logits.float(), batch.tgt_out, batch.tgt_valid_lens,
                                                         config.label_smoothing)
                num_tokens = int(num_tokens)
                # every rank must agree on stopping, so the check uses the summed loss
                step_loss = distributed.all_reduce_sum(
                    torch.tensor([loss.item() * num_tokens, num_tokens], dtype=torch.float64), info)
                loss_value = step_loss[0].item() / max(step_loss[1].item(), 1)
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(run.step + 1, loss_value, config.lr)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_norm > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
                optimizer.step()
                scheduler.step()
                _sync(device)
                seconds = time.perf_counter() - step_started
                run.train_seconds += seconds
                interval_train_seconds += seconds
                run.step += 1
                run.next_batch += 1
                run.tokens += int(step_loss[1].item())
                interval_loss += step_loss
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
                if run.step % config.log_every == 0 or run.step == config.steps:
                    mean = interval_loss[0].item() / max(interval_loss[1].item(), 1)
                    run.losses.append({
                        "step": run.step,
                        "loss": round(mean, 5),
                        "lr": float(f"{scheduler.get_last_lr()[0]:.6g}"),
                        "tokens_per_s": round(interval_loss[1].item() / max(interval_train_seconds, 1e-9), 1),
                        "steps": run.step - interval_started,
                    })
                    entry = run.losses[-1]
                    say(f"step {run.step}: loss {entry['loss']:.4f}, lr {entry['lr']:.3g}, "
                        f"{entry['tokens_per_s']:,.0f} tokens/s")
                    interval_loss.zero_()
                    interval_started, interval_train_seconds = run.step, 0.0
                epoch_done = run.next_batch == per_rank
                if epoch_done:
                    run.epoch, run.next_batch = run.epoch + 1, 0
                if config.eval_every and run.step % config.eval_every == 0 and run.step < config.steps:
                    validate()
                if config.checkpoint_every and run.step % config.checkpoint_every == 0:
                    save_checkpoint()
                if epoch_done:
                    break  # the next epoch has its own batch order
        if not run.bleu or run.bleu[-1]["step"] != run.step:
            validate()
        # the final state is always saved: it is what translate/evaluate load
        save_checkpoint()
        fingerprints = distributed.all_gather_objects(distributed.parameters_fingerprint(model), info)
    finally:
        if bar is not None:
            bar.close()

    metrics = {
        "status": "finished",
        "steps": run.step,
        "epochs": round(run.epoch + run.next_batch / max(per_rank, 1), 3),
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
    if info.is_main:
        write_metrics(metrics, out_dir / METRICS_NAME)
    distributed.barrier(info)
    return metrics
