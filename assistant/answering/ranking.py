"""Learning to rank: a linear model over general features of (question, clause) re-orders the fused
candidates.

No single fusion weight serves both written and real questions (BM25 wins on one, dense on the other),
so the ranker reads each signal with a weight learned from the dev questions, by cross-validation
(evaluation/tuning.py), and stored with the index in tuning.json. The features say nothing about any
particular law or wording:

- fused: the reciprocal-rank-fusion score the candidates come from;
- bm25, dense, heading: each field's score relative to the question's best, and its reciprocal rank;
- coverage: the idf-weighted share of the question's words found in the clause, and in its headings;
- named: the question names the clause's document;
- in_force: the clause's document is in force (not superseded or a draft);
- length: log of the clause length (long articles match more words by chance);
- span_dense: the best cosine of any one of the clause's sentences, relative to the pool's best (a
  short article is one retrieval unit, but the sentence that answers may be one of several);
- span_coverage: the best idf-weighted coverage of the question's words by any one sentence;
- liability_asked, liability_unasked: the clause is in a 法律责任 chapter and the question asks about
  consequences, or does not; definition_asked: the clause defines and the question asks what a term
  means (kinds.py);

A second stage (`Reranking`) re-orders the ranker's top few with a relevance model that reads the
question and each clause together (knowledge/relevance.py, or a local cross-encoder): only the top
`depth` are read, because reading costs a forward pass per clause.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict

FEATURES = (
    "fused", "bm25_rel", "bm25_rr", "dense_rel", "dense_rr", "heading_rel", "heading_rr",
    "coverage", "heading_coverage", "named", "in_force", "length", "span_dense", "span_coverage",
    "liability_asked", "liability_unasked", "definition_asked",
)
RERANK_FEATURES = ("ranker", "relevance")


class LinearRanker(BaseModel):
    """Standardise the features, then a weighted sum; higher ranks first."""

    model_config = ConfigDict(frozen=True)

    weights: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    features: tuple[str, ...] = FEATURES  # what each weight reads

    def scores(self, features: np.ndarray, names: tuple[str, ...] = FEATURES) -> np.ndarray:
        """Scores of rows whose columns are `names` (a superset of the features this ranker reads)."""
        columns = [names.index(name) for name in self.features]
        z = (features[:, columns] - np.asarray(self.mean)) / np.asarray(self.std)
        return z @ np.asarray(self.weights)


class Reranking(BaseModel):
    """The second stage: the ranker's top `depth` clauses scored again by the ranker's score and the
    relevance model's logit together (weights fitted by cross-validation, like the ranker's)."""

    model_config = ConfigDict(frozen=True)

    depth: int
    reranker: str  # the relevance model it was fitted with: its weights mean nothing with another one
    ranker: LinearRanker

    def scores(self, first_stage: np.ndarray, relevance: np.ndarray) -> np.ndarray:
        return self.ranker.scores(np.column_stack([first_stage, relevance]), RERANK_FEATURES)


def reciprocal_rank(scores: np.ndarray) -> np.ndarray:
    """1/(1+rank) over all clauses by descending score; 0 for clauses with no positive score."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(len(scores))
    return np.where(scores > 0, 1.0 / (1.0 + ranks), 0.0)


def relative(scores: np.ndarray) -> np.ndarray:
    top = scores.max(initial=0.0)
    return scores / top if top > 0 else np.zeros_like(scores)


def candidate_features(candidates: np.ndarray, fused: np.ndarray, bm25: np.ndarray, dense: np.ndarray,
                       heading: np.ndarray, coverage: list[float], heading_coverage: list[float],
                       named: np.ndarray, in_force: np.ndarray, lengths: np.ndarray,
                       span_best: list[float], span_coverage: list[float], liability: np.ndarray,
                       defining: np.ndarray, asks_consequence: bool, asks_definition: bool) -> np.ndarray:
    """One row of FEATURES per candidate clause (indices into the clause arrays)."""
    columns = [
        fused[candidates] / (fused.max(initial=0.0) or 1.0),
        relative(bm25)[candidates], reciprocal_rank(bm25)[candidates],
        (dense[candidates] - dense.max(initial=0.0)) * 10.0, reciprocal_rank(dense)[candidates],
        relative(heading)[candidates], reciprocal_rank(heading)[candidates],
        np.asarray(coverage), np.asarray(heading_coverage),
        named[candidates].astype(float), in_force[candidates].astype(float),
        np.log1p(lengths[candidates]) / math.log(1000.0),
        (np.asarray(span_best) - max(span_best, default=0.0)) * 10.0,
        np.asarray(span_coverage),
        liability[candidates] * float(asks_consequence), liability[candidates] * float(not asks_consequence),
        defining[candidates] * float(asks_definition),
    ]
    return np.stack(columns, axis=1)


def fit_ranker(rows: np.ndarray, labels: np.ndarray, groups: np.ndarray, steps: int = 2000, lr: float = 0.5,
               l2: float = 1e-3, names: tuple[str, ...] = FEATURES) -> LinearRanker:
    """Pairwise logistic loss (RankNet) within each question: a gold clause should outscore the others.

    Pairs only compare candidates of the same question, so a feature's scale across questions (how
    good the best match is) cannot mislead it; gradient descent on standardised features is enough
    for a dozen weights and a few thousand pairs.
    """
    mean, std = rows.mean(axis=0), rows.std(axis=0) + 1e-9
    z = (rows - mean) / std
    pos_idx, neg_idx = [], []
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        pos, neg = members[labels[members] == 1], members[labels[members] == 0]
        for p in pos:
            pos_idx.extend([p] * len(neg))
            neg_idx.extend(neg)
    diff = z[np.asarray(pos_idx)] - z[np.asarray(neg_idx)] if pos_idx else np.zeros((0, z.shape[1]))
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        if not len(diff):
            break
        margin = diff @ w
        grad = -(diff * (1.0 / (1.0 + np.exp(margin)))[:, None]).mean(axis=0) + l2 * w
        w -= lr * grad
    return LinearRanker(weights=tuple(map(float, w)), mean=tuple(map(float, mean)), std=tuple(map(float, std)),
                        features=names)
