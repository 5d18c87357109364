"""Chapter 04: train a sentence classifier on the pooling task, and measure it.

Built for chapter 04 (the notebook writes its own short loop first); tested in
tests/test_attention_pooling.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from utils.pooling.classifiers import SentenceClassifier
from utils.pooling.task import PoolingTask, make_task, weight_on_evidence
from utils.runtime import by_profile, seed_everything


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def train_classifier(model: nn.Module, task: PoolingTask, *, num_updates: int, batch_size: int = 64,
                     lr: float = 3e-3, seed: int = 0, every: int = 0,
                     callback: Callable[[int], None] | None = None) -> list[float]:
    """Adam on random minibatches of ``task`` (clipped gradients); returns the loss of every update.

    With ``every`` and ``callback``, ``callback(updates)`` runs after every ``every`` updates
    (to record a learning curve); it does not change the training.

    Built in chapter 04 §3 as ``train_model``; tested in tests/test_attention_pooling.py.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    device = _device(model)
    losses = []
    for update in range(1, num_updates + 1):
        model.train()
        batch = task.subset(torch.randint(len(task), (batch_size,), generator=generator))
        logits, _ = model(batch.ids.to(device), batch.valid_lens.to(device))
        loss = loss_fn(logits, batch.labels.to(device))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if callback is not None and every and update % every == 0:
            callback(update)
    return losses


@torch.no_grad()
def evaluate_classifier(model: nn.Module, task: PoolingTask, batch_size: int = 500) -> dict:
    """``correct`` ``(num,)`` bool, ``accuracy``, ``weights`` ``(num, steps)`` (or None),
    ``evidence_weight`` and ``distractor_weight``: the mean share of attention on the
    evidence and on the distractors (None without attention).

    Used in chapter 04 §3; tested in tests/test_attention_pooling.py.
    """
    model.eval()
    device = _device(model)
    correct, all_weights = [], []
    for start in range(0, len(task), batch_size):
        index = torch.arange(start, min(start + batch_size, len(task)))
        logits, weights = model(task.ids[index].to(device), task.valid_lens[index].to(device))
        correct.append(logits.argmax(dim=-1).cpu() == task.labels[index])
        all_weights.append(None if weights is None else weights.cpu())
    correct = torch.cat(correct) if correct else torch.zeros(0, dtype=torch.bool)
    result = {"correct": correct, "accuracy": correct.float().mean().item(), "weights": None,
              "evidence_weight": None, "distractor_weight": None}
    if all_weights and all_weights[0] is not None:
        weights = torch.cat(all_weights)
        result["weights"] = weights
        result["evidence_weight"] = weight_on_evidence(weights, task.evidence).mean().item()
        result["distractor_weight"] = weight_on_evidence(weights, task.distractors).mean().item()
    return result


def settings(profile: str | None = None) -> dict:
    """Sizes of the comparison for a profile (``smoke``: seconds, ``cpu``: minutes on 1 thread).

    Used in chapter 04 §1; tested in tests/test_attention_pooling.py.
    """
    return {
        "num_train": by_profile(1000, 5000, 20000, profile=profile),
        "num_test": by_profile(400, 1000, 4000, profile=profile),
        "max_sentences": by_profile(16, 24, 24, profile=profile),
        "distractor_rate": 0.5,
        "evidence_within": 1.0,  # the deciding sentence can be anywhere
        # the same budget for every pooling; the table reports accuracy after half of it and after all
        # of it, and the learning curve is recorded every `eval_every` updates
        "num_updates": by_profile(100, 200, 2000, profile=profile),
        "eval_every": by_profile(25, 25, 100, profile=profile),
        "batch_size": by_profile(32, 64, 64, profile=profile),
        "num_embed": by_profile(16, 32, 64, profile=profile),
        "num_hiddens": by_profile(16, 32, 64, profile=profile),
        "lr": by_profile(1e-2, 5e-3, 5e-3, profile=profile),
    }


def build_and_train(pooling: str, bidirectional: bool, train: PoolingTask, config: dict, seed: int = 0, *,
                    callback: Callable[[int, nn.Module], None] | None = None) -> tuple[SentenceClassifier, float]:
    """A classifier trained on ``train`` with ``config`` (see :func:`settings`); returns (model, seconds).

    ``callback(updates, model)``, if given, runs every ``config["eval_every"]`` updates (its time
    is not counted in the seconds).

    No chapter builds it (it runs the cpu table); tested in tests/test_attention_pooling.py.
    """
    seed_everything(seed)  # the same initial embedding and LSTM for every pooling
    model = SentenceClassifier(len(train.vocab), config["num_embed"], config["num_hiddens"],
                               pooling=pooling, bidirectional=bidirectional)
    spent = [0.0]

    def timed(update: int) -> None:
        start = time.perf_counter()
        callback(update, model)
        spent[0] += time.perf_counter() - start

    start = time.perf_counter()
    train_classifier(model, train, num_updates=config["num_updates"], batch_size=config["batch_size"],
                     lr=config["lr"], seed=seed, every=config.get("eval_every", 0) if callback else 0,
                     callback=timed if callback else None)
    return model, time.perf_counter() - start - spent[0]


def make_train_test(config: dict, seed: int = 0) -> tuple[PoolingTask, PoolingTask]:
    """The training and test passages of a comparison with ``config`` (see :func:`settings`).

    Used in chapter 04 §1; tested in tests/test_attention_pooling.py.
    """
    sizes = {key: config[key] for key in ("max_sentences", "distractor_rate", "evidence_within") if key in config}
    return (make_task(config["num_train"], seed=seed + 1, **sizes),
            make_task(config["num_test"], seed=seed + 1000, **sizes))

