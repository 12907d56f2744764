"""The confidence tiers: thresholds chosen for precision, declines kept rare, figures as users meet them."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.answering.scope import SIGNALS, Calibration, LogisticModel
from assistant.evaluation import calibration
from assistant.evaluation.calibration import Row, decline_threshold, high_threshold, tier_metrics
from assistant.evaluation.sets import EvalQuestion
from assistant.schema import Confidence


def question(n: int, answerable: bool = True) -> EvalQuestion:
    return EvalQuestion(id=f"q{n}", split="dev", kind="answerable" if answerable else "unanswerable",
                        question=f"问题{n}", gold=["x#1"] if answerable else [], real=True)


def rows(rights: list[bool], set_name: str = "real") -> list[Row]:
    return [Row(question(n), set_name, n % 5, {}, right) for n, right in enumerate(rights)]


def test_the_high_threshold_is_the_lowest_that_keeps_the_target_precision() -> None:
    # probabilities high to low; the top four are right, then one wrong, then right, wrong, wrong
    probabilities = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4]
    data = rows([True, True, True, True, False, True, False, False])
    assert high_threshold(probabilities, data, 1.0) == 0.8          # 4/4
    assert high_threshold(probabilities, data, 0.8) == 0.6          # 5/6 = 0.83
    assert high_threshold(probabilities, data, 0.6) == 0.4          # 5/8 = 0.625: the lowest that holds
    assert high_threshold(probabilities, data, 0.7) == 0.5          # 5/7 = 0.71 holds, 5/8 does not
    assert high_threshold(probabilities, rows([False] * 8), 0.9) > 1.0  # never high when nothing is right


def test_the_high_threshold_reads_real_questions_only_and_never_splits_ties() -> None:
    data = rows([True, False, True]) + rows([False, False], "written")
    assert high_threshold([0.9, 0.8, 0.7, 0.95, 0.99], data, 1.0) == 0.9
    tied = rows([True, False, True])
    assert high_threshold([0.9, 0.9, 0.5], tied, 1.0) > 1.0  # 0.9 holds a right and a wrong one: not separable


def test_the_decline_threshold_declines_at_most_the_allowed_share_of_answerable_questions() -> None:
    answerable = [Row(question(n), "real", 0, {}, True) for n in range(100)]
    unanswerable = [Row(question(100 + n, answerable=False), "real", 0, {}, False) for n in range(20)]
    probabilities = [n / 100 for n in range(100)] + [0.001] * 20
    t = decline_threshold(probabilities, answerable + unanswerable)
    declined = sum(p < t for p in probabilities[:100])
    assert declined == int(calibration.MAX_FALSE_DECLINE * 100)
    assert all(p < t for p in probabilities[100:])


def test_a_calibration_decides_high_low_and_declined() -> None:
    right = LogisticModel(features=("relevance_top",), weights=(4.0,), bias=0.0)
    covered = LogisticModel(features=("coverage",), weights=(10.0,), bias=-5.0)
    model = Calibration(right=right, high_threshold=0.9, covered=covered, decline_threshold=0.2)
    assert model.decide({"relevance_top": 1.0, "coverage": 0.0}).confidence is Confidence.high
    assert model.decide({"relevance_top": 0.0, "coverage": 0.6}).confidence is Confidence.low
    declined = model.decide({"relevance_top": 0.0, "coverage": 0.1})
    assert declined.confidence is Confidence.declined and declined.reason == "not_covered"
    assert set(right.features) <= set(SIGNALS) and set(covered.features) <= set(SIGNALS)


def test_tier_metrics_count_an_unanswerable_high_answer_as_confidently_wrong() -> None:
    outcomes = [
        (question(1), Confidence.high, True),
        (question(2), Confidence.high, False),        # answered high, wrong clause
        (question(3), Confidence.low, True),
        (question(4, answerable=False), Confidence.high, False),  # should not have been answered
        (question(5, answerable=False), Confidence.declined, False),
    ]
    m = tier_metrics(outcomes)
    assert m["high_precision"] == pytest.approx(1 / 3, abs=1e-3)
    assert m["confident_wrong"] == pytest.approx(2 / 5)
    assert m["coverage"] == pytest.approx(1 / 3, abs=1e-3)
    assert m["low_confidence_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert m["abstention_recall"] == 0.5 and m["false_abstention"] == 0.0


def test_the_domain_threshold_sits_above_every_answerable_question() -> None:
    rng = np.random.default_rng(0)
    policy = rng.normal(0.0, 1.0, (60, 8)) + np.array([2.0] + [0.0] * 7)
    off = rng.normal(0.0, 1.0, (30, 8)) - np.array([2.0] + [0.0] * 7)
    vectors = np.vstack([policy, off])
    model = calibration.fit_domain(vectors, [0] * 60 + [1] * 30, policy[:40])
    assert all(model.off_domain(v) < model.threshold for v in policy[:40])
    assert sum(model.off_domain(v) >= model.threshold for v in off) >= 20
