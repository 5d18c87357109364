"""Chapter 04: LSTM sentence classifiers and how they pool their states into one vector.

- ``SentenceClassifier``, ``last_valid_state``, ``mean_over_valid`` (``classifiers``): the models
- ``make_task``, ``PoolingTask``, ``weight_on_evidence`` (``task``): the passages to classify
- ``train_classifier``, ``evaluate_classifier``, ``build_and_train`` (``training``)
- ``accuracy_by_length`` and friends, ``compare_poolings`` and ``python -m utils.pooling.experiment``
  (``experiment``): the cpu table

The attention pooling layers themselves live in ``utils.attention`` (``AttentionPooling``,
``PerStepAttention``), beside the other attention layers.
"""

from utils.pooling.classifiers import SentenceClassifier, last_valid_state, mean_over_valid
from utils.pooling.experiment import (
    accuracy_by_length,
    length_edges,
    long_threshold,
)
from utils.pooling.task import ANIMALS, PoolingTask, make_task, weight_on_evidence
from utils.pooling.training import (
    build_and_train,
    evaluate_classifier,
    make_train_test,
    settings,
    train_classifier,
)

__all__ = [
    "ANIMALS",
    "PoolingTask",
    "accuracy_by_length",
    "length_edges",
    "long_threshold",
    "make_train_test",
    "settings",
    "SentenceClassifier",
    "build_and_train",
    "evaluate_classifier",
    "last_valid_state",
    "make_task",
    "mean_over_valid",
    "train_classifier",
    "weight_on_evidence",
]
