"""What a training run is made of: ``TrainConfig``, ``DataSpec`` and the presets per profile.

Everything here is a plain dataclass, so ``dataclasses.asdict`` turns it into
JSON for ``metrics.json`` and the checkpoint, and ``from_dict`` turns it back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from utils.data import TranslationData, generate_corpus, load_fra_eng, split_by_source
from utils.runtime import PROFILES
from utils.seq2seq import ModelConfig
from utils.validate import require_int, require_number, require_one_of

AMP_MODES = ("bf16", "off")
# the presets of ``attn train --profile``: the course profiles, and the real-corpus recipes of the
# shipped models (a CPU) and of their GPU-trained replacement (same sizes, GPU batches)
PRESETS = (*PROFILES, "cpu-real", "gpu-real")
# fra-eng is sorted by length: its first 73,719 pairs are the English sentences of 1-9 words
# that the shipped models were trained on
REAL_SUBSET_PAIRS = 73_719
DATA_SOURCES = ("generated", "fra-eng", "file")


@dataclass
class TrainConfig:
    """The optimisation side of a run (the model's sizes live in ``ModelConfig``).

    ``steps``: optimizer steps in all (a resumed run continues up to it).
    ``batch_size``: sentence pairs per batch *per process* (under torchrun each
    rank takes its own batch, so a step sees ``world_size * batch_size`` pairs).
    ``lr``, ``weight_decay``: AdamW's. ``clip_norm``: the gradient-norm clip
    (0 = off). ``warmup_steps``: linear warm-up, then cosine decay to
    ``min_lr_ratio * lr`` at ``steps``. ``log_every``: steps per logged loss.
    ``checkpoint_every``: steps between checkpoints (0 = only at the end).
    ``eval_every``: steps between validation BLEU measurements (0 = only at the
    end), greedy on the first ``eval_sentences`` valid pairs. ``seed``: model
    init, dropout and data order. ``amp``: ``"bf16"`` autocast on CUDA
    (ignored on CPU) or ``"off"``. ``max_len``: leave out training pairs longer
    than this many tokens (None = keep all). ``label_smoothing``: of the
    cross-entropy (0 = off); the logged loss includes it.

    Used in chapter 07 §4; tested in tests/test_train_loop.py.
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    warmup_steps: int = 100
    log_every: int = 50
    checkpoint_every: int = 500
    eval_every: int = 0
    seed: int = 0
    amp: str = "bf16"
    max_len: int | None = None
    eval_sentences: int = 500
    min_lr_ratio: float = 0.1
    label_smoothing: float = 0.0

    def __post_init__(self):
        require_int("steps", self.steps, at_least=1)
        require_int("batch_size", self.batch_size, at_least=1)
        require_number("lr", self.lr, above=0)
        require_number("weight_decay", self.weight_decay, at_least=0)
        require_number("clip_norm", self.clip_norm, at_least=0)
        require_int("warmup_steps", self.warmup_steps, at_least=0)
        require_int("log_every", self.log_every, at_least=1)
        require_int("checkpoint_every", self.checkpoint_every, at_least=0)
        require_int("eval_every", self.eval_every, at_least=0)
        require_int("seed", self.seed, at_least=0)
        require_one_of("amp", self.amp, AMP_MODES)
        if self.max_len is not None:
            require_int("max_len", self.max_len, at_least=2)
        require_int("eval_sentences", self.eval_sentences, at_least=0)
        require_number("min_lr_ratio", self.min_lr_ratio, at_least=0, at_most=1)
        require_number("label_smoothing", self.label_smoothing, at_least=0, below=1)

    def lr_factor(self, step: int) -> float:
        """The learning-rate multiplier after ``step`` optimizer steps (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        decay_steps = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass
class DataSpec:
    """Where the training data comes from, enough to rebuild the very same splits.

    ``source``: ``"generated"`` (``num_pairs`` pairs of the offline grammar,
    split by ``generated_splits``), ``"fra-eng"`` (the downloaded Tatoeba
    corpus) or ``"file"`` (a local ``fra.txt`` / ``fra-eng.zip`` at ``path``);
    the last two are split by ``split_by_source(test_frac=0.05,
    valid_frac=0.05)``. ``max_pairs``: keep only the first pairs of a real
    corpus. ``seed``: of the corpus generator and of the split. ``min_freq``:
    of the vocabularies.
    """

    source: str = "generated"
    num_pairs: int = 20000
    path: str | None = None
    max_pairs: int | None = None
    seed: int = 0
    min_freq: int = 2
    pairs_sha256: str | None = None

    def __post_init__(self):
        require_one_of("source", self.source, DATA_SOURCES)
        if self.source == "generated":
            require_int("num_pairs", self.num_pairs, at_least=10)
        if self.source == "file":
            if not self.path:
                raise ValueError("path is required when source='file'")
            self.path = str(Path(self.path).expanduser().resolve())
        if self.max_pairs is not None:
            require_int("max_pairs", self.max_pairs, at_least=10)
        require_int("seed", self.seed, at_least=0)
        require_int("min_freq", self.min_freq, at_least=1)
        if self.pairs_sha256 is not None and not _is_sha256(self.pairs_sha256):
            raise ValueError(f"pairs_sha256 must be 64 hexadecimal digits or None; got {self.pairs_sha256!r}")

    def describe(self) -> str:
        if self.source == "generated":
            return f"generated corpus, {self.num_pairs:,} pairs, seed {self.seed}"
        limit = f", first {self.max_pairs:,} pairs" if self.max_pairs else ""
        where = "fra-eng (downloaded)" if self.source == "fra-eng" else f"{Path(self.path).name}"
        return f"{where}{limit}, split seed {self.seed}"

    @classmethod
    def from_dict(cls, values: dict) -> DataSpec:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def pairs_digest(pairs) -> str:
    """SHA-256 of ``pairs`` as ``English<TAB>French`` lines (UTF-8): the same for the same pairs,
    whatever file format (2 or 3 columns, CRLF, zipped) they were read from."""
    digest = hashlib.sha256()
    for english, french in pairs:
        digest.update(f"{english}\t{french}\n".encode())
    return digest.hexdigest()


def spec_splits(spec: DataSpec):
    """The ``Splits`` that ``spec`` describes (and records ``spec.pairs_sha256`` when it has none).

    Raises ``ValueError`` when the corpus's pairs differ from the recorded digest.
    """
    if spec.source == "generated":
        pairs = generate_corpus(spec.num_pairs, spec.seed)
        fractions = dict(test_frac=0.1, valid_frac=0.1)  # as generated_splits
    else:
        pairs = load_fra_eng(spec.path if spec.source == "file" else None, max_pairs=spec.max_pairs)
        fractions = dict(test_frac=0.05, valid_frac=0.05)
        if not pairs:
            raise ValueError(f"the corpus ({spec.describe()}) holds no English<TAB>French pairs")
    digest = pairs_digest(pairs)
    if spec.pairs_sha256 is None:
        spec.pairs_sha256 = digest
    elif spec.pairs_sha256 != digest:
        raise ValueError(
            f"the corpus ({spec.describe()}) is not the one this run was made with: the SHA-256 of its "
            f"pairs is {digest[:12]}..., the recorded one {spec.pairs_sha256[:12]}... (the file changed, or "
            "another file or --max-pairs was given)"
        )
    return split_by_source(pairs, seed=spec.seed, **fractions)


def build_data(spec: DataSpec, *, src_vocab=None, tgt_vocab=None):
    """The ``TranslationData`` of ``spec`` (vocabularies reused when given, e.g. from a checkpoint)."""
    return TranslationData(spec_splits(spec), min_freq=spec.min_freq, src_vocab=src_vocab,
                           tgt_vocab=tgt_vocab)


# profile -> (model sizes, training settings, data); the decoder is chosen separately
_PRESETS = {
    # seconds: a tiny model on a small generated corpus (tests, CI)
    "smoke": (
        dict(embed_size=32, num_hiddens=32, num_layers=1, dropout=0.1),
        dict(steps=40, batch_size=32, lr=1e-2, warmup_steps=5, log_every=10, checkpoint_every=20,
             eval_every=0, amp="off", eval_sentences=100),
        dict(source="generated", num_pairs=2000),
    ),
    # a few minutes on a laptop CPU (about 30 ms of CPU per step), on the generated corpus;
    # measured: held-out test sacreBLEU 92.7 (valid 95.0), 55 s of CPU time on one thread
    "cpu": (
        dict(embed_size=64, num_hiddens=128, num_layers=1, dropout=0.1),
        dict(steps=2000, batch_size=64, lr=5e-3, warmup_steps=100, log_every=100,
             checkpoint_every=500, eval_every=500, amp="off", eval_sentences=500),
        dict(source="generated", num_pairs=20000),
    ),
    # the real corpus on a laptop CPU: the recipe of the shipped pretrained models
    # (results/real_fra_eng.md has what was tried and measured)
    "cpu-real": (
        dict(embed_size=128, num_hiddens=256, num_layers=1, dropout=0.2, bidirectional=False),
        dict(steps=9000, batch_size=64, lr=5e-3, warmup_steps=200, log_every=100, label_smoothing=0.1,
             checkpoint_every=1000, eval_every=2000, amp="off", eval_sentences=4000),
        dict(source="fra-eng", max_pairs=REAL_SUBSET_PAIRS, min_freq=3),
    ),
    # cpu-real's model on a GPU: the same data and sizes (the shipping budget), batches four times
    # larger in bf16; benchmarks/gpu_training.py trains it for a wall-clock budget (its step count
    # planned from timed steps), 6,000 steps otherwise
    "gpu-real": (
        dict(embed_size=128, num_hiddens=256, num_layers=1, dropout=0.2, bidirectional=False),
        dict(steps=6000, batch_size=256, lr=5e-3, warmup_steps=300, log_every=100, label_smoothing=0.1,
             checkpoint_every=1000, eval_every=1000, amp="bf16", eval_sentences=4000),
        dict(source="fra-eng", max_pairs=REAL_SUBSET_PAIRS, min_freq=3),
    ),
    # the real corpus on a GPU
    "gpu": (
        dict(embed_size=256, num_hiddens=512, num_layers=2, dropout=0.2, bidirectional=True),
        dict(steps=20000, batch_size=256, lr=2e-3, warmup_steps=500, log_every=200,
             checkpoint_every=2000, eval_every=2000, amp="bf16", max_len=30, eval_sentences=2000),
        dict(source="fra-eng"),
    ),
}


# the transformer's own sizes per profile (its width is embed_size = num_hiddens), and the training
# settings it changes: beyond smoke's tiny model, a lower peak learning rate and a longer warm-up, as Transformers need
# (Vaswani et al. warm up for 4,000 steps; Popel & Bojar 2018 on what happens without). cpu-real is the
# recipe of the shipped `transformer` (results/transformer_fra_eng.md): 7.07 M parameters, 14.3 MB in fp16
# (the course's budget for it: 15 MB); its 3,200 steps took 19.3 min of training (21.3 min with the 8
# validations) on 2 threads of the 2-core machine, which then trained Luong at about 1.6 times its tokens/s.
_TRANSFORMER_PRESETS = {
    "smoke": (dict(embed_size=32, num_hiddens=32, num_layers=2, num_heads=4, ffn_hiddens=64, dropout=0.1),
              {}),
    "cpu": (dict(embed_size=64, num_hiddens=64, num_layers=2, num_heads=4, ffn_hiddens=128, dropout=0.1),
            dict(lr=2e-3, warmup_steps=200)),
    "cpu-real": (dict(embed_size=256, num_hiddens=256, num_layers=2, num_heads=4, ffn_hiddens=512, dropout=0.1),
                 dict(steps=3200, lr=1e-3, warmup_steps=400, eval_every=400)),
    # many more epochs than on the CPU in minutes of a GPU: more dropout against over-fitting, and
    # a learning rate raised with the batch (256 pairs against 64)
    "gpu-real": (dict(embed_size=256, num_hiddens=256, num_layers=2, num_heads=4, ffn_hiddens=512, dropout=0.2),
                 dict(lr=1.5e-3, warmup_steps=500)),
    "gpu": (dict(embed_size=512, num_hiddens=512, num_layers=4, num_heads=8, ffn_hiddens=2048, dropout=0.1),
            dict(lr=7e-4, warmup_steps=1000)),
}


def presets(profile: str, decoder: str = "luong"):
    """``(ModelConfig, TrainConfig, DataSpec)`` for ``profile`` (one of ``PRESETS``) and ``decoder``.

    Used in chapter 07 §4; tested in tests/test_train_loop.py.
    """
    if profile not in PRESETS:
        raise ValueError(f"profile must be one of {PRESETS}; got {profile!r}")
    model_values, train_values, data_values = _PRESETS[profile]
    if decoder == "transformer":
        model_values, changes = _TRANSFORMER_PRESETS[profile]
        train_values = {**train_values, **changes}
    return (ModelConfig(decoder=decoder, **model_values), TrainConfig(**train_values),
            DataSpec(**data_values))
