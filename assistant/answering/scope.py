"""The scope decision: answer with high confidence, answer in the low-confidence form, or decline.

`high` is a promise to a hotline operator ("read this out"), so it is decided by a model of whether the
answer is RIGHT, not of whether the question is in scope: a logistic model over retrieval signals
estimates the probability that the composed answer cites a clause that answers the question, and its
threshold is chosen by cross-validation so that at least nine in ten `high` answers on real dev
questions are right (evaluation/tuning.py). Below it the answer is given in the low-confidence form.

Declining needs positive evidence:
- the rules in scope_rules.py and references to documents or articles the corpus does not hold;
- a question outside the policy domain altogether (weather, recipes, chit-chat), recognised by
  `DomainModel` from its e5 vector, trained on real questions from public pages;
- a second logistic model, of whether the corpus covers the question at all, below its threshold: no
  retrieved clause is relevant enough to quote, so the caller is referred to 12345 instead.

e5 cosines sit between 0.7 and 1.0 for everything, so no raw cosine separates anything; the models
combine signals that do (`SIGNALS`). Weights and thresholds depend on the embedding and relevance
models, so they are fitted when the index is built and stored with it (tuning.json).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..schema import Confidence

SIGNALS = (
    "coverage",          # idf-weighted share of the question's words found in the top clauses
    "unknown",           # idf-weighted share of its words found nowhere in the corpus
    "bm25_log",          # the best BM25 clause score, log-scaled
    "dense_top",         # the best dense (e5) score
    "dense_margin",      # ... and its margin over the background (ranks 10-30)
    "rank_top",          # the learned ranker's score of the first clause
    "rank_margin",       # ... and its margin over the second
    "agree_dense",       # the first clause is also dense retrieval's first
    "relevance_top",     # the relevance model's logit for the first clause (0 without the model)
    "relevance_margin",  # ... and its margin over the best other scored clause
    "policy_term",       # the question names a quoted policy term of the plan (“一件事”)
    "asked_stated",      # the question asks for a number, a consequence or a definition the first clause states
    "asked_missing",     # ... or one it does not state (a deadline asked, no number in the clause)
)


@dataclass(frozen=True)
class ScopeDecision:
    """How to answer: `reason` names the rule or signal that decided (shown in logs and the eval)."""

    confidence: Confidence
    reason: str
    probability: float | None = None


class LogisticModel(BaseModel):
    """Logistic regression over named signals (raw units); absent signals read as 0."""

    model_config = ConfigDict(frozen=True)

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, signals: Mapping[str, float]) -> float:
        z = self.bias + sum(w * float(signals.get(name, 0.0)) for name, w in zip(self.features, self.weights))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


class Calibration(BaseModel):
    """The two fitted models and their thresholds: `right` decides high, `covered` decides declines."""

    model_config = ConfigDict(frozen=True)

    right: LogisticModel
    high_threshold: float
    covered: LogisticModel
    decline_threshold: float

    def decide(self, signals: Mapping[str, float]) -> ScopeDecision:
        p_right = self.right.probability(signals)
        if p_right >= self.high_threshold:
            return ScopeDecision(Confidence.high, "model", round(p_right, 4))
        if self.covered.probability(signals) < self.decline_threshold:
            return ScopeDecision(Confidence.declined, "not_covered", round(p_right, 4))
        return ScopeDecision(Confidence.low, "model", round(p_right, 4))


class DomainModel(BaseModel):
    """Logistic regression on the question's e5 vector: the probability that it is not a policy
    question at all. Fitted on real questions from public pages (training/), thresholded by
    cross-validation on dev so that no answerable dev question is declined by it."""

    model_config = ConfigDict(frozen=True)

    weights: tuple[float, ...]
    bias: float
    threshold: float

    def off_domain(self, query_vector: np.ndarray) -> float:
        z = self.bias + float(np.asarray(self.weights) @ np.asarray(query_vector, dtype=float).reshape(-1))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def fit_logistic(rows: Sequence[Sequence[float]], labels: Sequence[int], features: tuple[str, ...] = SIGNALS,
                 sample_weight: Sequence[float] | None = None, steps: int = 3000, lr: float = 0.3,
                 l2: float = 1e-2) -> LogisticModel:
    """Class-balanced logistic regression by gradient descent on standardised features.

    A dozen features and a few hundred rows need nothing more; standardising lets a feature with a
    narrow range (a cosine between 0.83 and 0.95) weigh in, and the weights are mapped back to raw units.
    """
    x = np.asarray(rows, dtype=float).reshape(len(labels), -1)
    y = np.asarray(labels, dtype=float)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    balance = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    weight = balance * (np.asarray(sample_weight, dtype=float) if sample_weight is not None else 1.0)
    weight = weight / weight.mean()
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        grad = (p - y) * weight
        w -= lr * (z.T @ grad / len(y) + l2 * w)
        b -= lr * grad.mean()
    raw_w = w / std
    return LogisticModel(features=features, weights=tuple(float(v) for v in raw_w),
                         bias=float(b - (raw_w * mean).sum()))
