"""Chapter 04's task: what does the negated sentence of a passage deny? And the pooling comparison.

A passage is ``min_sentences`` to ``max_sentences`` English sentences from the
course's generated corpus (:func:`utils.data.generate_corpus`), tokenised and
joined. Exactly one sentence is negated, somewhere in the first half (the
first quarter in the comparison's profiles, so that it sits far from the end of
a long passage). The rule:

- label 1 if it says what something is NOT: "my cow is not sleepy .";
- label 0 if it says what someone does NOT do: "they do not draw a big egg .".

The label hinges on three tokens ("is not sleepy", "do not draw"), so we know
where a good model should look: ``evidence`` marks them, and "weight on the
evidence" is the share of attention mass that lands there. Every other sentence
is affirmative and has "is", "are", "do" and "does" of its own, so no single
word decides alone.

Run the comparison of the three poolings (last state, mean, attention), for an
LSTM and a Bi-LSTM, and print the table::

    python -m utils.pooling_task --profile cpu --threads 1

Standard library and torch only.
"""

from __future__ import annotations

import argparse
import functools
import random
import time
from typing import NamedTuple

import torch
from torch import nn

from utils.classifiers import SentenceClassifier
from utils.data import Vocab, generate_corpus, tokenize
from utils.runtime import by_profile, get_profile, seed_everything

CUE = "not"
BE_VERBS, DO_VERBS = ("am", "is", "are"), ("do", "does")


class PoolingTask(NamedTuple):
    """``num`` passages, padded to ``steps`` tokens.

    ids ``(num, steps)`` int64 (``<pad>`` is 0), valid_lens ``(num,)``, labels ``(num,)``
    (1 = "is/are/am not", 0 = "do/does not"), evidence ``(num, steps)`` bool (True at the
    three deciding tokens around ``not``), tokens (the passages, as lists of strings),
    vocab (shared by every task, see :func:`task_vocab`).
    """

    ids: torch.Tensor
    valid_lens: torch.Tensor
    labels: torch.Tensor
    evidence: torch.Tensor
    tokens: list[list[str]]
    vocab: Vocab

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, index) -> PoolingTask:
        """The passages at ``index`` (a list or 1-D tensor of positions), padding trimmed."""
        index = torch.as_tensor(index, dtype=torch.long)
        steps = int(self.valid_lens[index].max()) if len(index) else 0
        return PoolingTask(self.ids[index, :steps], self.valid_lens[index], self.labels[index],
                           self.evidence[index, :steps], [self.tokens[i] for i in index.tolist()],
                           self.vocab)


@functools.lru_cache(maxsize=4)
def _sentences(seed: int) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """(affirmative, negated) distinct English sentences of the generated corpus, as tokens."""
    english = sorted({english for english, _ in generate_corpus(3000, seed=seed)})
    sentences = [tuple(tokenize(text)) for text in english]
    return (tuple(s for s in sentences if CUE not in s), tuple(s for s in sentences if CUE in s))


@functools.lru_cache(maxsize=1)
def task_vocab() -> Vocab:
    """The English vocabulary of the generated corpus (the same object for every task)."""
    return Vocab([tokenize(english) for english, _ in generate_corpus(20000, seed=12345)])


def make_task(num_examples: int, *, min_sentences: int = 1, max_sentences: int = 4, seed: int = 0,
              evidence_within: float = 0.5, pad_to: int | None = None) -> PoolingTask:
    """``num_examples`` passages; the same passages for the same arguments.

    Each passage has ``min_sentences`` to ``max_sentences`` sentences (uniform), and
    exactly one of them is negated, at a random place among the first
    ``evidence_within`` of the sentences (the first half by default: the deciding
    sentence comes early and the passage goes on, so a model that reads left to
    right must carry it to the end). Label 1: it says what something is NOT
    ("is/are/am not"); label 0: what someone does NOT do ("do/does not").
    ``evidence`` marks its three deciding tokens ("is not sick", "does not draw").
    ``pad_to`` pads every passage to that many steps (default: the longest passage).
    """
    for name, value in (("num_examples", num_examples), ("min_sentences", min_sentences),
                        ("max_sentences", max_sentences)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "num_examples" else 1):
            raise ValueError(f"{name} must be a {'non-negative' if name == 'num_examples' else 'positive'} "
                             f"int; got {value!r}")
    if not 0.0 < evidence_within <= 1.0:
        raise ValueError(f"evidence_within must be in (0, 1] (a fraction of the passage); got {evidence_within!r}")
    if max_sentences < min_sentences:
        raise ValueError(f"max_sentences ({max_sentences}) must be >= min_sentences ({min_sentences})")
    affirmative, negated = _sentences(seed % 7)  # a few corpus draws; passages differ by seed
    by_label = ([s for s in negated if s[s.index(CUE) - 1] in DO_VERBS],
                [s for s in negated if s[s.index(CUE) - 1] in BE_VERBS])
    rng = random.Random(seed)
    vocab = task_vocab()
    passages, labels, cues = [], [], []
    for _ in range(num_examples):
        sentences = [rng.choice(affirmative) for _ in range(rng.randint(min_sentences, max_sentences))]
        label = int(rng.random() < 0.5)
        where = rng.randrange(max(1, int(len(sentences) * evidence_within)))
        sentences[where] = rng.choice(by_label[label])
        passages.append([token for sentence in sentences for token in sentence])
        labels.append(label)
        cues.append(sum(len(sentence) for sentence in sentences[:where]) + sentences[where].index(CUE))
    longest = max((len(p) for p in passages), default=0)
    steps = longest if pad_to is None else pad_to
    if steps < longest:
        raise ValueError(f"pad_to={pad_to} is shorter than the longest passage ({longest} tokens)")
    ids = torch.zeros(num_examples, steps, dtype=torch.long)  # 0 is <pad>
    evidence = torch.zeros(num_examples, steps, dtype=torch.bool)
    for row, passage in enumerate(passages):
        ids[row, :len(passage)] = torch.tensor(vocab.encode(passage), dtype=torch.long)
        evidence[row, cues[row] - 1:cues[row] + 2] = True  # "does not draw", "is not sick"
    valid_lens = torch.tensor([len(p) for p in passages], dtype=torch.long)
    return PoolingTask(ids, valid_lens, torch.tensor(labels), evidence, passages, vocab)


def weight_on_evidence(weights: torch.Tensor, evidence: torch.Tensor) -> torch.Tensor:
    """Per passage, the share of attention mass on the evidence: ``(batch, steps)`` -> ``(batch,)``."""
    if weights.shape != evidence.shape:
        raise ValueError(f"weights {tuple(weights.shape)} and evidence {tuple(evidence.shape)} must "
                         "have the same shape (batch, steps)")
    return (weights * evidence).sum(dim=-1)


def train_classifier(model: nn.Module, task: PoolingTask, *, num_updates: int, batch_size: int = 64,
                     lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Adam on random minibatches of ``task`` (clipped gradients); returns the loss of every update."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    model.train()
    for _ in range(num_updates):
        batch = task.subset(torch.randint(len(task), (batch_size,), generator=generator))
        logits, _ = model(batch.ids, batch.valid_lens)
        loss = loss_fn(logits, batch.labels)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def evaluate(model: nn.Module, task: PoolingTask, batch_size: int = 500) -> dict:
    """``correct`` ``(num,)`` bool, ``accuracy``, ``weights`` ``(num, steps)`` (or None), and
    ``evidence_weight``: the mean share of attention on the evidence."""
    model.eval()
    correct, all_weights = [], []
    for start in range(0, len(task), batch_size):
        index = torch.arange(start, min(start + batch_size, len(task)))
        logits, weights = model(task.ids[index], task.valid_lens[index])
        correct.append(logits.argmax(dim=-1) == task.labels[index])
        all_weights.append(weights)
    correct = torch.cat(correct)
    result = {"correct": correct, "accuracy": correct.float().mean().item(), "weights": None,
              "evidence_weight": None}
    if all_weights and all_weights[0] is not None:
        weights = torch.cat(all_weights)
        result["weights"] = weights
        result["evidence_weight"] = weight_on_evidence(weights, task.evidence).mean().item()
    return result


def settings(profile: str | None = None) -> dict:
    """Sizes of the comparison for a profile (``smoke``: seconds, ``cpu``: minutes on 1 thread)."""
    return {
        "num_train": by_profile(1000, 5000, 20000, profile=profile),
        "num_test": by_profile(400, 1000, 4000, profile=profile),
        "max_sentences": by_profile(16, 24, 24, profile=profile),
        # the deciding sentence sits in the first quarter of a long passage: far from its end
        "evidence_within": by_profile(0.25, 0.25, 0.25, profile=profile),
        # the same small budget for every pooling: enough for attention, short for a last state
        # that has to carry the evidence across a hundred tokens
        "num_updates": by_profile(100, 200, 2000, profile=profile),
        "batch_size": by_profile(32, 64, 64, profile=profile),
        "num_embed": by_profile(16, 32, 64, profile=profile),
        "num_hiddens": by_profile(16, 32, 64, profile=profile),
        "lr": by_profile(1e-2, 5e-3, 5e-3, profile=profile),
    }


def build_and_train(pooling: str, bidirectional: bool, train: PoolingTask, config: dict,
                    seed: int = 0) -> tuple[SentenceClassifier, float]:
    """A classifier trained on ``train`` with ``config`` (see :func:`settings`); returns (model, seconds)."""
    seed_everything(seed)  # the same initial embedding and LSTM for every pooling
    model = SentenceClassifier(len(train.vocab), config["num_embed"], config["num_hiddens"],
                               pooling=pooling, bidirectional=bidirectional)
    start = time.perf_counter()
    train_classifier(model, train, num_updates=config["num_updates"], batch_size=config["batch_size"],
                     lr=config["lr"], seed=seed)
    return model, time.perf_counter() - start


def make_train_test(config: dict, seed: int = 0) -> tuple[PoolingTask, PoolingTask]:
    """The training and test passages of a comparison with ``config`` (see :func:`settings`)."""
    sizes = {"max_sentences": config["max_sentences"], "evidence_within": config["evidence_within"]}
    return (make_task(config["num_train"], seed=seed + 1, **sizes),
            make_task(config["num_test"], seed=seed + 1000, **sizes))


def long_threshold(task: PoolingTask) -> int:
    """Passages at least this long are "long": the longest quarter of ``task``."""
    return int(torch.quantile(task.valid_lens.float(), 0.75).item())


def compare_poolings(profile: str | None = None, seed: int = 0, *, verbose: bool = False) -> list[dict]:
    """Train LSTM and Bi-LSTM classifiers with the three poolings; one result row each."""
    config = settings(profile)
    train, test = make_train_test(config, seed)
    long = test.valid_lens >= long_threshold(test)
    rows = []
    for bidirectional in (False, True):
        for pooling in ("last", "mean", "attention"):
            model, seconds = build_and_train(pooling, bidirectional, train, config, seed=seed)
            result = evaluate(model, test)
            rows.append({"encoder": "Bi-LSTM" if bidirectional else "LSTM", "pooling": pooling,
                         "accuracy": result["accuracy"],
                         "long_accuracy": result["correct"][long].float().mean().item(),
                         "evidence_weight": result["evidence_weight"], "seconds": seconds,
                         "model": model, "result": result})
            if verbose:
                print(format_row(rows[-1]), flush=True)
    return rows


def format_row(row: dict) -> str:
    weight = "-" if row["evidence_weight"] is None else f"{row['evidence_weight']:.2f}"
    return (f"| {row['encoder']} | {row['pooling']} | {row['accuracy']:.3f} | {row['long_accuracy']:.3f} "
            f"| {weight} | {row['seconds']:.0f} |")


TABLE_HEADER = ("| encoder | pooling | accuracy | accuracy on long passages | weight on the evidence | train s |\n"
                "|---|---|---|---|---|---|")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default=None,
                        help="sizes of the run (default: $COURSE_PROFILE, else by hardware)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    config = settings(profile)
    _, test = make_train_test(config, args.seed)
    print(f"profile {profile}, seed {args.seed}, {torch.get_num_threads()} thread(s): "
          f"{config['num_train']} training passages, {config['num_updates']} updates of "
          f"{config['batch_size']}, {config['num_test']} test passages of 1-{config['max_sentences']} "
          f"sentences, the negated one in the first {config['evidence_within']:.0%} "
          f"({int(test.valid_lens.min())}-{int(test.valid_lens.max())} tokens; long = "
          f">= {long_threshold(test)} tokens)")
    start = time.perf_counter()
    print(TABLE_HEADER)
    compare_poolings(profile, args.seed, verbose=True)
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.pooling_task", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
