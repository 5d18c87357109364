"""benchmarks/transformer_vs_luong.py: training minutes at a step and the time to a BLEU of 30."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("transformer_vs_luong", ROOT / "benchmarks" / "transformer_vs_luong.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = {"steps": 4000, "train_seconds": 1200.0,
       "bleu": [{"step": 1000, "bleu": 20.0}, {"step": 2000, "bleu": 28.0}, {"step": 3000, "bleu": 32.0},
                {"step": 4000, "bleu": 33.0}]}


def test_minutes_are_the_steps_share_of_the_training_time(bench):
    assert bench.minutes_at(RUN, 2000) == pytest.approx(10.0)
    assert bench.minutes_at(RUN, 4000) == pytest.approx(20.0)


def test_time_to_bleu_interpolates_between_the_validations_around_it(bench):
    # 30 lies halfway between 28 (step 2000) and 32 (step 3000)
    assert bench.time_to_bleu(RUN) == {"step": 2500, "minutes": 12.5}
    assert bench.time_to_bleu(RUN, target=10.0) == {"step": 500, "minutes": 2.5}  # from (0, 0)


def test_a_run_that_never_reaches_the_target_has_no_time(bench):
    assert bench.time_to_bleu(RUN, target=40.0) is None
