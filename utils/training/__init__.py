"""Training the translator: config and presets, the loop, checkpoints, DDP, metrics, the CLI.

- ``TrainConfig``, ``DataSpec``, ``presets``, ``build_data`` (``config``)
- ``train``, ``TrainingDiverged`` (``loop``)
- ``save_atomic``, ``read_checkpoint``, ``load_checkpoint`` (``checkpoint``)
- ``bleu_on_split``, ``decode_split``, ``score_translations``, ``bleu_by_length`` (``evaluation``)
- ``write_metrics``, ``read_metrics``, ``environment_info`` (``metrics_file``)
- torchrun helpers (``distributed``); ``attn train|translate|evaluate`` (``commands``)

Standard library, torch, numpy, tqdm and sacrebleu only (DESIGN §4).
"""

from utils.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, read_checkpoint, save_atomic
from utils.training.config import DataSpec, TrainConfig, build_data, presets
from utils.training.evaluation import (
    BleuResult,
    bleu_by_length,
    bleu_on_split,
    decode_split,
    score_translations,
)
from utils.training.loop import train
from utils.training.metrics_file import METRICS_NAME, environment_info, read_metrics, write_metrics
from utils.training.run_state import TrainingDiverged

__all__ = [
    "CHECKPOINT_NAME",
    "METRICS_NAME",
    "BleuResult",
    "DataSpec",
    "TrainConfig",
    "TrainingDiverged",
    "bleu_by_length",
    "bleu_on_split",
    "build_data",
    "decode_split",
    "environment_info",
    "load_checkpoint",
    "presets",
    "read_checkpoint",
    "read_metrics",
    "save_atomic",
    "score_translations",
    "train",
    "write_metrics",
]
