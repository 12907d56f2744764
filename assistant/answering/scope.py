"""The scope decision: answer with high confidence, answer in the low-confidence form, or decline.

Declining needs positive evidence, and that comes from the rules in scope_rules.py and from references
to documents or articles the corpus does not hold. For everything else a logistic model estimates
whether the retrieved clauses answer the question; below its threshold the answer is given in the
low-confidence form (closest clauses marked 可能相关, with the 12345 referral), never withheld.

e5 cosines sit between 0.7 and 1.0 for everything, so no raw cosine separates in-scope from out-of-scope
questions. The model combines signals that do separate:

- coverage: the share of the question's content words, weighted by how specific each is to the corpus
  (idf over clauses), found in the top clauses' text;
- unknown: the idf-weighted share of its content words that occur nowhere in the corpus;
- the best BM25 clause score (log-scaled); the best dense score and its margin over the background.

Its weights and threshold are fitted by cross-validation on the dev questions when the index is built
(evaluation/tuning.py) and stored with the index, because the dense signals depend on the embedding model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ..schema import Confidence

FEATURES = ("coverage", "unknown", "bm25_log", "dense_top", "dense_margin")


@dataclass(frozen=True)
class Signals:
    """What the scope model reads about one question and its retrieval."""

    coverage: float
    unknown: float
    bm25_log: float
    dense_top: float
    dense_margin: float

    def vector(self) -> list[float]:
        return [getattr(self, name) for name in FEATURES]


@dataclass(frozen=True)
class ScopeDecision:
    """How to answer: `reason` names the rule or signal that decided (shown in logs and the eval)."""

    confidence: Confidence
    reason: str
    probability: float | None = None


class ScopeModel(BaseModel):
    """Logistic regression over `Signals`; `threshold` on its probability separates high from low."""

    model_config = ConfigDict(frozen=True)

    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.5

    def probability(self, signals: Signals) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, signals.vector()))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def decide(self, signals: Signals) -> ScopeDecision:
        p = self.probability(signals)
        return ScopeDecision(Confidence.high if p >= self.threshold else Confidence.low, "model", round(p, 4))


def fit_logistic(rows: list[list[float]], labels: list[int], steps: int = 3000, lr: float = 0.3,
                 l2: float = 1e-2) -> ScopeModel:
    """Class-balanced logistic regression by gradient descent on standardised features.

    A handful of features and a few hundred rows need nothing more; standardising lets a feature with a
    narrow range (a cosine between 0.83 and 0.95) weigh in, and the weights are mapped back to raw units.
    """
    import numpy as np

    x = np.asarray(rows, dtype=float)
    y = np.asarray(labels, dtype=float)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    sample_weight = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        grad = (p - y) * sample_weight
        w -= lr * (z.T @ grad / len(y) + l2 * w)
        b -= lr * grad.mean()
    raw_w = w / std
    return ScopeModel(weights=tuple(float(v) for v in raw_w), bias=float(b - (raw_w * mean).sum()))
