"""Chapter 04's task: what does the passage deny about an animal? And the pooling comparison.

A passage is ``min_sentences`` to ``max_sentences`` English sentences from the
course's generated corpus (:func:`utils.data.generate_corpus`), tokenised and
joined. Exactly one sentence denies something about an ANIMAL (its subject is a
cat, dog, bird, horse, cow, mouse or rabbit). The rule:

- label 1 if it says what the animal is NOT: "my cow is not sleepy .";
- label 0 if it says what the animal does NOT do: "the dogs do not want a cookie .".

The other sentences are affirmative (animals included), or, with probability
``distractor_rate`` each, **distractors**: negated sentences about people and
things, of both kinds equally often ("the boys are not sleepy .", "she does not
draw a cat ."). They hold the same "is/are/do/does not" as the deciding
sentence, so no word decides alone: what decides is *which* sentence a "not"
sits in. ``evidence`` marks the deciding sentence's three tokens around ``not``
("is not sleepy", "do not want"), ``distractors`` the same three tokens of every
distractor, so we know where a good model should look and where it should not:
"weight on the evidence" is the share of attention mass that lands on the former.

Averaging every state (mean pooling) mixes the deciding sentence with every
distractor; it works only once the LSTM itself has learned to silence the
distractors' states. Attention pooling can instead learn to weight the one
sentence that decides (Yang et al., 2016; Lin et al., 2017).

Run the comparison of the three poolings (last state, mean, attention), for an
LSTM and a Bi-LSTM, print the table, and (with ``--out``) write its JSON record
and figure::

    python -m utils.pooling_task --profile cpu --threads 1 --out results

Standard library and torch only (matplotlib for the figure).
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from utils.classifiers import SentenceClassifier
from utils.cli import fail, int_at_least, path_text, writable_folder
from utils.data import Vocab, generate_corpus, tokenize
from utils.data.grammar import NOUNS
from utils.runtime import by_profile, get_profile, seed_everything

CUE = "not"
BE_VERBS, DO_VERBS = ("am", "is", "are"), ("do", "does")
ANIMALS = frozenset(form for noun in NOUNS if noun.kind == "animal" for form in (noun.en_singular, noun.en_plural))
POOLINGS = ("last", "mean", "attention")
LENGTH_QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)  # accuracy by length: the four quarters of the test passages


class PoolingTask(NamedTuple):
    """``num`` passages, padded to ``steps`` tokens.

    ids ``(num, steps)`` int64 (``<pad>`` is 0), valid_lens ``(num,)``, labels ``(num,)``
    (1 = the animal "is/are not", 0 = it "does/do not"), evidence ``(num, steps)`` bool (True
    at the deciding sentence's three tokens around ``not``), distractors ``(num, steps)`` bool
    (the same three tokens of every distractor sentence), tokens (the passages, as lists of
    strings), vocab (shared by every task, see :func:`task_vocab`).
    """

    ids: torch.Tensor
    valid_lens: torch.Tensor
    labels: torch.Tensor
    evidence: torch.Tensor
    distractors: torch.Tensor
    tokens: list[list[str]]
    vocab: Vocab

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, index) -> PoolingTask:
        """The passages at ``index`` (a list or 1-D tensor of positions), padding trimmed."""
        index = torch.as_tensor(index, dtype=torch.long)
        steps = int(self.valid_lens[index].max()) if len(index) else 0
        return PoolingTask(self.ids[index, :steps], self.valid_lens[index], self.labels[index],
                           self.evidence[index, :steps], self.distractors[index, :steps],
                           [self.tokens[i] for i in index.tolist()], self.vocab)


def _negation_kind(sentence: tuple[str, ...]) -> int:
    """1 for "is/are/am not", 0 for "do/does not"."""
    return int(sentence[sentence.index(CUE) - 1] in BE_VERBS)


def _about_an_animal(sentence: tuple[str, ...]) -> bool:
    """Is the negated sentence's subject an animal? (The subject's noun comes right before the verb.)"""
    return sentence[sentence.index(CUE) - 2] in ANIMALS


@functools.lru_cache(maxsize=8)
def _sentences(seed: int) -> tuple[tuple, tuple[tuple, tuple], tuple[tuple, tuple]]:
    """Distinct English sentences of the generated corpus, as tokens: (affirmative, deciding, distractors).

    ``deciding[k]`` and ``distractors[k]`` are the negated sentences of kind ``k`` (0 "do not",
    1 "is not") about an animal and about anything else.
    """
    english = sorted({english for english, _ in generate_corpus(20000, seed=seed)})
    sentences = [tuple(tokenize(text)) for text in english]
    negated = [s for s in sentences if CUE in s]
    deciding = tuple(tuple(s for s in negated if _about_an_animal(s) and _negation_kind(s) == kind) for kind in (0, 1))
    others = tuple(tuple(s for s in negated if not _about_an_animal(s) and _negation_kind(s) == kind)
                   for kind in (0, 1))
    return tuple(s for s in sentences if CUE not in s), deciding, others


@functools.lru_cache(maxsize=1)
def task_vocab() -> Vocab:
    """The English vocabulary of the generated corpus (the same object for every task)."""
    return Vocab([tokenize(english) for english, _ in generate_corpus(20000, seed=12345)])


def _check_count(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "non-negative" if minimum == 0 else "positive"
        raise ValueError(f"{name} must be a {kind} int; got {value!r}")


def make_task(num_examples: int, *, min_sentences: int = 1, max_sentences: int = 4, seed: int = 0,
              distractor_rate: float = 0.5, evidence_within: float = 1.0, pad_to: int | None = None) -> PoolingTask:
    """``num_examples`` passages; the same passages for the same arguments.

    Each passage has ``min_sentences`` to ``max_sentences`` sentences (uniform). Exactly
    one denies something about an animal, at a random place among the first
    ``evidence_within`` of the sentences (anywhere by default). Label 1: it says what the
    animal is NOT ("is/are not"); label 0: what it does NOT do ("do/does not"). Every
    other sentence is, with probability ``distractor_rate``, a distractor (a negated
    sentence about people or things, either kind with probability 1/2), else an
    affirmative sentence. ``evidence`` marks the deciding sentence's three tokens
    around ``not``, ``distractors`` those of every distractor. ``pad_to`` pads every
    passage to that many steps (default: the longest passage).
    """
    _check_count("num_examples", num_examples, 0)
    _check_count("min_sentences", min_sentences, 1)
    _check_count("max_sentences", max_sentences, 1)
    if max_sentences < min_sentences:
        raise ValueError(f"max_sentences ({max_sentences}) must be >= min_sentences ({min_sentences})")
    if isinstance(distractor_rate, bool) or not 0.0 <= distractor_rate <= 1.0:
        raise ValueError(f"distractor_rate must be in [0, 1] (a probability per sentence); got {distractor_rate!r}")
    if not 0.0 < evidence_within <= 1.0:
        raise ValueError(f"evidence_within must be in (0, 1] (a fraction of the passage); got {evidence_within!r}")
    affirmative, deciding, others = _sentences(seed % 7)  # a few corpus draws; passages differ by seed
    rng = random.Random(seed)
    vocab = task_vocab()
    passages, labels, cues, distractor_cues = [], [], [], []
    for _ in range(num_examples):
        count = rng.randint(min_sentences, max_sentences)
        label = int(rng.random() < 0.5)
        where = rng.randrange(max(1, int(count * evidence_within)))
        sentences, starts, distracting = [], [], []
        for position in range(count):
            if position == where:
                sentence = rng.choice(deciding[label])
            elif rng.random() < distractor_rate:
                sentence = rng.choice(others[int(rng.random() < 0.5)])
                distracting.append(position)
            else:
                sentence = rng.choice(affirmative)
            starts.append(sum(len(s) for s in sentences))
            sentences.append(sentence)
        passages.append([token for sentence in sentences for token in sentence])
        labels.append(label)
        cues.append(starts[where] + sentences[where].index(CUE))
        distractor_cues.append([starts[p] + sentences[p].index(CUE) for p in distracting])
    longest = max((len(p) for p in passages), default=0)
    steps = longest if pad_to is None else pad_to
    if steps < longest:
        raise ValueError(f"pad_to={pad_to} is shorter than the longest passage ({longest} tokens)")
    ids = torch.zeros(num_examples, steps, dtype=torch.long)  # 0 is <pad>
    evidence = torch.zeros(num_examples, steps, dtype=torch.bool)
    distractors = torch.zeros(num_examples, steps, dtype=torch.bool)
    for row, passage in enumerate(passages):
        ids[row, :len(passage)] = torch.tensor(vocab.encode(passage), dtype=torch.long)
        evidence[row, cues[row] - 1:cues[row] + 2] = True  # "does not draw", "is not sick"
        for cue in distractor_cues[row]:
            distractors[row, cue - 1:cue + 2] = True
    valid_lens = torch.tensor([len(p) for p in passages], dtype=torch.long)
    return PoolingTask(ids, valid_lens, torch.tensor(labels, dtype=torch.long), evidence, distractors, passages,
                       vocab)


def weight_on_evidence(weights: torch.Tensor, evidence: torch.Tensor) -> torch.Tensor:
    """Per passage, the share of attention mass on ``evidence`` (or any other mask of the same
    shape, e.g. the distractors): ``(batch, steps)`` -> ``(batch,)``."""
    if weights.shape != evidence.shape:
        raise ValueError(f"weights {tuple(weights.shape)} and evidence {tuple(evidence.shape)} must "
                         "have the same shape (batch, steps)")
    return (weights * evidence.to(weights.device)).sum(dim=-1)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def train_classifier(model: nn.Module, task: PoolingTask, *, num_updates: int, batch_size: int = 64,
                     lr: float = 3e-3, seed: int = 0, every: int = 0,
                     callback: Callable[[int], None] | None = None) -> list[float]:
    """Adam on random minibatches of ``task`` (clipped gradients); returns the loss of every update.

    With ``every`` and ``callback``, ``callback(updates)`` runs after every ``every`` updates
    (to record a learning curve); it does not change the training.
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
def evaluate(model: nn.Module, task: PoolingTask, batch_size: int = 500) -> dict:
    """``correct`` ``(num,)`` bool, ``accuracy``, ``weights`` ``(num, steps)`` (or None),
    ``evidence_weight`` and ``distractor_weight``: the mean share of attention on the
    evidence and on the distractors (None without attention)."""
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
    """Sizes of the comparison for a profile (``smoke``: seconds, ``cpu``: minutes on 1 thread)."""
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
    """The training and test passages of a comparison with ``config`` (see :func:`settings`)."""
    sizes = {key: config[key] for key in ("max_sentences", "distractor_rate", "evidence_within") if key in config}
    return (make_task(config["num_train"], seed=seed + 1, **sizes),
            make_task(config["num_test"], seed=seed + 1000, **sizes))


def long_threshold(task: PoolingTask) -> int:
    """Passages at least this long are "long": the longest quarter of ``task``."""
    return int(torch.quantile(task.valid_lens.float(), 0.75).item())


def length_edges(task: PoolingTask) -> list[int]:
    """Token counts that cut ``task``'s passages into four quarters by length (five edges)."""
    return [int(x) for x in torch.quantile(task.valid_lens.float(), torch.tensor(LENGTH_QUANTILES)).round()]


def accuracy_by_length(correct: torch.Tensor, task: PoolingTask, edges: list[int]) -> list[float]:
    """Accuracy in each quarter of passage length (``edges`` from :func:`length_edges`)."""
    bins = torch.bucketize(task.valid_lens.float(), torch.tensor(edges[1:-1], dtype=torch.float), right=True)
    return [correct[bins == b].float().mean().item() for b in range(len(edges) - 1)]


def _recorder(test: PoolingTask, curve: list, by_length: list, half: int) -> Callable[[int, nn.Module], None]:
    """A callback for :func:`build_and_train` that appends the test accuracy (all passages and the
    longest quarter) to ``curve``, and after ``half`` updates the accuracy by length to ``by_length``."""
    long = test.valid_lens >= long_threshold(test)
    edges = length_edges(test)

    def record(updates: int, model: nn.Module) -> None:
        result = evaluate(model, test)
        curve.append({"updates": updates, "accuracy": round(result["accuracy"], 4),
                      "long_accuracy": round(result["correct"][long].float().mean().item(), 4)})
        if updates == half:
            by_length.extend(round(x, 4) for x in accuracy_by_length(result["correct"], test, edges))

    return record


def compare_poolings(profile: str | None = None, seed: int = 0, *, verbose: bool = False) -> list[dict]:
    """Train LSTM and Bi-LSTM classifiers with the three poolings; one result row each.

    Every row has the test accuracy (all passages and the longest quarter) after half the
    updates (``*_half``) and after all of them, the updates after which the accuracy on long
    passages first reached 0.99 (None if it did not), the learning curve, the accuracy by
    quarter of passage length after half the updates, the attention weight on the evidence and
    on the distractors (attention only), and the training seconds (indicative: wall time).
    """
    config = settings(profile)
    train, test = make_train_test(config, seed)
    long = test.valid_lens >= long_threshold(test)
    half = config["num_updates"] // 2
    rows = []
    for bidirectional in (False, True):
        for pooling in POOLINGS:
            curve, by_length = [], []
            record = _recorder(test, curve, by_length, half)
            model, seconds = build_and_train(pooling, bidirectional, train, config, seed=seed, callback=record)
            result = evaluate(model, test)
            at_half = next((point for point in curve if point["updates"] == half), None)
            reached = next((point["updates"] for point in curve if point["long_accuracy"] >= 0.99), None)
            rows.append({"encoder": "Bi-LSTM" if bidirectional else "LSTM", "pooling": pooling,
                         "accuracy_half": at_half["accuracy"] if at_half else None,
                         "long_accuracy_half": at_half["long_accuracy"] if at_half else None,
                         "accuracy": result["accuracy"],
                         "long_accuracy": result["correct"][long].float().mean().item(),
                         "updates_to_99_long": reached, "curve": curve, "accuracy_by_length_half": by_length,
                         "evidence_weight": result["evidence_weight"],
                         "distractor_weight": result["distractor_weight"], "seconds": seconds,
                         "model": model, "result": result})
            if verbose:
                print(format_row(rows[-1]), flush=True)
    return rows


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_row(row: dict) -> str:
    reached = "-" if row["updates_to_99_long"] is None else str(row["updates_to_99_long"])
    return (f"| {row['encoder']} | {row['pooling']} | {_accuracy(row['accuracy_half'])} "
            f"| {_accuracy(row['long_accuracy_half'])} | {_accuracy(row['accuracy'])} "
            f"| {_accuracy(row['long_accuracy'])} | {reached} | {_share(row['evidence_weight'])} "
            f"| {_share(row['distractor_weight'])} |")


def table_header(num_updates: int) -> str:
    half = num_updates // 2
    return (f"| encoder | pooling | accuracy, {half} updates | long passages, {half} updates "
            f"| accuracy, {num_updates} updates | long passages, {num_updates} updates "
            f"| updates to 0.99 on long passages | weight on the evidence | weight on the distractors |\n"
            "|---|---|---|---|---|---|---|---|---|")


def plot(record: dict, path: str | Path) -> None:
    """Two panels: accuracy on long passages by update, and accuracy by passage length after half
    the updates; one colour per pooling, solid for the LSTM, dashed for the Bi-LSTM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"last": "tab:red", "mean": "tab:orange", "attention": "tab:blue"}
    fig, (curves, lengths) = plt.subplots(1, 2, figsize=(11, 4))
    edges = record["test"]["length_edges"]
    for row in record["rows"]:
        style = {"color": colors[row["pooling"]], "linestyle": "-" if row["encoder"] == "LSTM" else "--",
                 "marker": "o", "markersize": 3, "label": f"{row['encoder']} + {row['pooling']}"}
        curves.plot([p["updates"] for p in row["curve"]], [p["long_accuracy"] for p in row["curve"]], **style)
        lengths.plot(range(len(edges) - 1), row["accuracy_by_length_half"], **style)
    half = record["settings"]["num_updates"] // 2
    curves.set(title="Learning: accuracy on the longest quarter of passages", xlabel="Adam updates",
               ylabel="test accuracy", ylim=(0.45, 1.02))
    curves.axvline(half, color="gray", linewidth=0.8)
    lengths.set(title=f"After {half} updates: accuracy by passage length", xlabel="passage length (tokens)",
                ylim=(0.45, 1.02))
    lengths.set_xticks(range(len(edges) - 1), [f"{edges[b]}-{edges[b + 1]}" for b in range(len(edges) - 1)])
    lengths.legend(fontsize=8, loc="lower left")
    fig.suptitle(f"Chapter 04, `{record['profile']}` profile: {record['settings']['num_train']} training "
                 f"passages, {record['test']['num']} test passages, seed {record['seed']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default=None,
                        help="sizes of the run (default: $COURSE_PROFILE, else by hardware)")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--threads", type=int_at_least(1), default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=lambda text: Path(path_text(text)), default=None,
                        help="also write ch04_<profile>_profile.json and .png into this folder")


def run(args: argparse.Namespace) -> int:
    if args.out is not None:  # before the minutes of training, not after
        try:
            writable_folder(args.out, "--out")
        except ValueError as error:
            return fail("pooling", str(error), 2)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    config = settings(profile)
    _, test = make_train_test(config, args.seed)
    print(f"profile {profile}, seed {args.seed}, {torch.get_num_threads()} thread(s): "
          f"{config['num_train']} training passages, {config['num_updates']} updates of "
          f"{config['batch_size']}, {config['num_test']} test passages of 1-{config['max_sentences']} "
          f"sentences, distractor rate {config['distractor_rate']} "
          f"({int(test.valid_lens.min())}-{int(test.valid_lens.max())} tokens; long = "
          f">= {long_threshold(test)} tokens)")
    start, cpu_start = time.perf_counter(), time.process_time()
    print(table_header(config["num_updates"]))
    rows = compare_poolings(profile, args.seed, verbose=True)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"total {wall:.0f} s wall, {cpu:.0f} s CPU (training seconds per model: "
          + ", ".join(f"{row['encoder']} {row['pooling']} {row['seconds']:.0f}" for row in rows) + ")")
    if args.out is not None:
        from utils.train.metrics_file import environment_info

        record = {
            "command": f"python -m utils.pooling_task --profile {profile} --seed {args.seed}"
                       + (f" --threads {args.threads}" if args.threads is not None else "") + f" --out {args.out}",
            "profile": profile, "seed": args.seed, "settings": config,
            "test": {"num": len(test), "min_tokens": int(test.valid_lens.min()),
                     "max_tokens": int(test.valid_lens.max()), "long_from_tokens": long_threshold(test),
                     "length_edges": length_edges(test)},
            "table": "\n".join([table_header(config["num_updates"])] + [format_row(row) for row in rows]),
            "rows": [{key: value for key, value in row.items() if key not in ("model", "result")} for row in rows],
            "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            **environment_info(torch.device("cpu")),
        }
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"ch04_{profile}_profile.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        plot(record, args.out / f"ch04_{profile}_profile.png")
        print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.pooling_task", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
