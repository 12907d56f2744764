"""Fit the confidence tiers by cross-validation on dev: `high` must be right nine times in ten on real questions.

Two logistic models over the pipeline's signals (answering/scope.py) and a domain model:
- `right`: does the composed answer cite a clause that answers the question? Its threshold is the
  lowest probability at which, on the training folds' real questions, `high` answers are right at least
  `target` of the time; `target` itself is the smallest in HIGH_TARGETS whose held-out precision on
  real dev questions reaches HIGH_PRECISION (a threshold fitted at exactly 0.90 falls short of it on
  unseen questions);
- `covered`: is the question answerable from the corpus at all? Below its threshold the question is
  declined with the referral instead of answered in the low form; the threshold declines at most
  MAX_FALSE_DECLINE of the training folds' answerable questions;
- `DomainModel`: not a policy question at all (weather, recipes, chit-chat), from the question's e5 vector,
  trained on real off-domain and policy questions from public pages (training/), its threshold set so
  that no answerable dev question of the training folds is declined by it.

Every figure reported is held out: each question is decided by models fitted on the other folds.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..answering.scope import SIGNALS, Calibration, DomainModel, LogisticModel, fit_logistic
from ..schema import Confidence
from .sets import EvalQuestion

HIGH_PRECISION = 0.90
"""The promise of `high` on real questions (DESIGN.md: right at least nine times in ten)."""
HIGH_TARGETS = (0.90, 0.92, 0.94, 0.96, 0.98, 1.0)
"""In-fold precision targets tried for the `right` threshold, lowest first."""
MAX_FALSE_DECLINE = 0.02
"""Answerable questions the `covered` threshold may decline on the training folds: a decline sends the
caller to 12345 with nothing, so it must be rare for questions the corpus answers."""
DOMAIN_MARGIN = 0.02
"""Added to the highest off-domain probability of an answerable training question: the domain threshold
must sit above every policy question seen, not on one."""


@dataclass
class Row:
    """One dev question that the calibration decides, with what it reads and what was true."""

    question: EvalQuestion
    set: str
    fold: int
    signals: dict[str, float]
    right: bool  # the composed answer cites a gold clause

    def vector(self) -> list[float]:
        return [self.signals[name] for name in SIGNALS]


def _weights(rows: Sequence[Row], set_weights: dict[str, float]) -> list[float]:
    """Each set weighs its share in SET_WEIGHTS, however many questions it has."""
    sizes = {s: sum(r.set == s for r in rows) for s in set_weights}
    return [set_weights[r.set] / max(1, sizes[r.set]) for r in rows]


def high_threshold(probabilities: Sequence[float], rows: Sequence[Row], target: float) -> float:
    """The lowest threshold at which the real rows above it are right at least `target` of the time."""
    real = sorted(((p, r.right) for p, r in zip(probabilities, rows) if r.set == "real"), reverse=True)
    best, right = 1.01, 0
    for n, (p, is_right) in enumerate(real, start=1):
        right += is_right
        if right / n >= target and (n == len(real) or real[n][0] < p):  # never split tied probabilities
            best = p
    return best


def decline_threshold(probabilities: Sequence[float], rows: Sequence[Row]) -> float:
    """The highest threshold that declines at most MAX_FALSE_DECLINE of the answerable rows of each set:
    real questions are declined more easily than written ones, and they are the ones users bring."""
    thresholds = []
    for name in {r.set for r in rows}:
        answerable = sorted(p for p, r in zip(probabilities, rows) if r.question.answerable and r.set == name)
        allowed = int(MAX_FALSE_DECLINE * len(answerable))
        if answerable:
            thresholds.append(answerable[allowed] if allowed < len(answerable) else 0.0)
    return min(thresholds, default=0.0)


def fit_calibration(rows: Sequence[Row], set_weights: dict[str, float], target: float) -> Calibration:
    weights = _weights(rows, set_weights)
    x = [r.vector() for r in rows]
    right = fit_logistic(x, [int(r.right) for r in rows], SIGNALS, weights)
    covered = fit_logistic(x, [int(r.question.answerable) for r in rows], SIGNALS, weights)
    return Calibration(
        right=right, high_threshold=high_threshold([right.probability(r.signals) for r in rows], rows, target),
        covered=covered, decline_threshold=decline_threshold([covered.probability(r.signals) for r in rows], rows))


def cross_validate(rows: Sequence[Row], folds: int, set_weights: dict[str, float]) -> tuple[float, dict[str, Confidence]]:
    """The in-fold target to use, and each row's held-out confidence under it."""
    chosen: tuple[float, dict[str, Confidence]] | None = None
    for target in HIGH_TARGETS:
        decided: dict[str, Confidence] = {}
        for fold in range(folds):
            model = fit_calibration([r for r in rows if r.fold != fold], set_weights, target)
            for r in rows:
                if r.fold == fold:
                    decided[r.question.id] = model.decide(r.signals).confidence
        chosen = (target, decided)
        if _precision([r for r in rows if r.set == "real" and r.question.id in decided], decided) >= HIGH_PRECISION:
            break
    assert chosen is not None
    return chosen


def _precision(rows: Sequence[Row], decided: dict[str, Confidence]) -> float:
    high = [r for r in rows if decided[r.question.id] is Confidence.high]
    return sum(r.right for r in high) / len(high) if high else 1.0


def tier_metrics(outcomes: Sequence[tuple[EvalQuestion, Confidence, bool]]) -> dict[str, float | None]:
    """What users meet, from (question, confidence, cites a right clause) over every question of a set."""
    answerable = [(c, right) for q, c, right in outcomes if q.answerable]
    unanswerable = [c for q, c, _ in outcomes if not q.answerable]
    high = [(q, right) for q, c, right in outcomes if c is Confidence.high]

    def share(values: Sequence[bool]) -> float | None:
        return round(statistics.fmean(values), 4) if values else None

    return {
        "high_precision": share([q.answerable and right for q, right in high]),
        "coverage": share([c is Confidence.high and right for c, right in answerable]),
        "confident_wrong": share([c is Confidence.high and not (q.answerable and right) for q, c, right in outcomes]),
        "cites_right_clause": share([right for _, right in answerable]),
        "low_confidence_rate": share([c is Confidence.low for c, _ in answerable]),
        "false_abstention": share([c is Confidence.declined for c, _ in answerable]),
        "abstention_recall": share([c is not Confidence.high for c in unanswerable]),
    }


# --- the domain model -----------------------------------------------------------------------------


def fit_domain(vectors: np.ndarray, off_domain: Sequence[int], answerable_vectors: np.ndarray) -> DomainModel:
    """Logistic regression on e5 vectors (off-domain = 1), thresholded above every answerable question given."""
    features = tuple(f"e{i}" for i in range(vectors.shape[1]))
    model: LogisticModel = fit_logistic(vectors.tolist(), list(off_domain), features, l2=1e-1)
    weights, bias = np.asarray(model.weights), model.bias
    draft = DomainModel(weights=tuple(map(float, weights)), bias=bias, threshold=1.0)
    highest = max((draft.off_domain(v) for v in answerable_vectors), default=0.0)
    return draft.model_copy(update={"threshold": min(1.0, highest + DOMAIN_MARGIN)})
