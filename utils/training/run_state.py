"""What a training run carries between steps: its position and history, its random states, and
the loss and time since the last log line.

Used by ``utils.training.loop``; a checkpoint stores ``RunState.state_dict()`` and ``rng_state()``.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time

import numpy as np
import torch

from utils.training import distributed


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: further steps would only spread the damage."""

    def __init__(self, step: int, loss: float, lr: float):
        self.step, self.loss, self.lr = step, loss, lr
        super().__init__(
            f"training diverged at step {step}: the loss is {loss} (not a finite number). "
            f"The learning rate ({lr:g}) is probably too high: try a lower one, e.g. --lr {lr / 10:g}."
        )


@dataclasses.dataclass
class RunState:
    """The mutable state of one run, besides the tensors (saved in every checkpoint)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # the epoch the next batch comes from
    next_batch: int = 0  # index (per rank) of the next batch within that epoch
    batches_per_epoch: int = 0  # per rank, in the current epoch
    losses: list = dataclasses.field(default_factory=list)  # one entry per log interval
    bleu: list = dataclasses.field(default_factory=list)  # one entry per validation
    tokens: int = 0  # target tokens trained on, all ranks
    train_seconds: float = 0.0  # time spent in training steps (no validation, no checkpoint)
    wall_seconds: float = 0.0  # wall time of earlier (interrupted) processes of this run
    resumed_from: list = dataclasses.field(default_factory=list)

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    def load_state_dict(self, values: dict) -> None:
        """Restore from a checkpoint's ``run``; keys it lacks (older checkpoints) keep their defaults."""
        for key, value in values.items():
            if hasattr(self, key):
                setattr(self, key, value)

    @property
    def epochs(self) -> float:
        """Epochs done, fractional."""
        return round(self.epoch + self.next_batch / max(self.batches_per_epoch, 1), 3)


def rng_state(device: torch.device) -> dict:
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


def set_rng_state(state: dict, device: torch.device) -> None:
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


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a clock reading means something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class IntervalMeter:
    """Loss, tokens and training time since the last log line.

    ``add`` keeps each step's summed loss and token count on the device: nothing waits for the
    GPU between log lines (a launch-bound LSTM loses much of its throughput to a per-step
    ``.item()``). ``pause`` (before a validation or a checkpoint, and in ``flush``) synchronises
    once, sums the steps over ranks, stops the run at the first step whose loss is not finite,
    and stops the clock; ``restart`` starts it again.
    """

    def __init__(self, device: torch.device, info: distributed.DistInfo, first_step: int):
        self.device, self.info = device, info
        self.first_step = first_step  # the step the interval starts after
        self.pending: list[torch.Tensor] = []  # (2,) float64 per step, on the device: loss * tokens, tokens
        self.checked: list[list[float]] = []  # the same, summed over ranks, on the host
        self.seconds = 0.0
        self.clock = time.perf_counter()

    def add(self, loss_sum_and_tokens: torch.Tensor) -> None:
        self.pending.append(loss_sum_and_tokens)

    def pause(self, lr: float) -> None:
        """Synchronise; raise ``TrainingDiverged`` at the first non-finite step (of any rank)."""
        if self.pending:
            per_step = distributed.all_reduce_sum(torch.stack(self.pending), self.info).cpu().tolist()
            for offset, (loss_sum, tokens) in enumerate(per_step):
                if not math.isfinite(loss_sum):
                    step = self.first_step + len(self.checked) + offset + 1
                    raise TrainingDiverged(step, loss_sum / max(tokens, 1), lr)
            self.checked.extend(per_step)
            self.pending = []
        synchronize(self.device)
        self.seconds += time.perf_counter() - self.clock

    def restart(self) -> None:
        self.clock = time.perf_counter()

    def tokens(self) -> int:
        """Tokens of the steps checked so far in this interval."""
        return int(sum(tokens for _, tokens in self.checked))

    def flush(self, lr: float) -> tuple[float, int, float, int]:
        """``(mean loss, tokens, seconds, steps)`` of the interval, all ranks; then a new interval."""
        self.pause(lr)
        loss_sum = 0.0
        for step_loss, _ in self.checked:  # in step order, as the per-step log always summed
            loss_sum += step_loss
        tokens, seconds, steps = self.tokens(), self.seconds, len(self.checked)
        self.first_step += steps
        self.checked, self.seconds = [], 0.0
        self.restart()
        return loss_sum / max(tokens, 1), tokens, seconds, steps
