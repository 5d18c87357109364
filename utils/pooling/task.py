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

The classifiers are in ``utils.pooling.classifiers``, their training in
``utils.pooling.training``, the comparison of the poolings in
``utils.pooling.experiment``. Standard library and torch only.
"""

from __future__ import annotations

import functools
import random
from typing import NamedTuple

import torch

from utils.data import Vocab, generate_corpus, tokenize
from utils.data.grammar import NOUNS
from utils.validate import require_int, require_number

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

    Used in chapter 04 §1 by ``make_train_test``; tested in tests/test_attention_pooling.py.
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

    Used in chapter 04 §1; tested in tests/test_attention_pooling.py.
    """
    require_int("num_examples", num_examples, at_least=0)
    require_int("min_sentences", min_sentences, at_least=1)
    require_int("max_sentences", max_sentences, at_least=1)
    if max_sentences < min_sentences:
        raise ValueError(f"max_sentences ({max_sentences}) must be >= min_sentences ({min_sentences})")
    require_number("distractor_rate", distractor_rate, at_least=0, at_most=1)  # a probability per sentence
    require_number("evidence_within", evidence_within, above=0, at_most=1)  # a fraction of the passage
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
    shape, e.g. the distractors): ``(batch, steps)`` -> ``(batch,)``.

    Used in chapter 04 §3; tested in tests/test_attention_pooling.py.
    """
    if weights.shape != evidence.shape:
        raise ValueError(f"weights {tuple(weights.shape)} and evidence {tuple(evidence.shape)} must "
                         "have the same shape (batch, steps)")
    return (weights * evidence.to(weights.device)).sum(dim=-1)

