"""Choose every tuned constant by k-fold cross-validation on the dev questions, and store it with the index.

What is tuned, in order (each step uses the constants chosen before it):
1. fusion: the RRF constant and the weights of the dense and heading rankings, by MRR@10;
2. ranker: the learned first-stage ranker, kept if it beats fusion, by MRR@10;
3. reranking: the second stage that weighs the relevance model's score (its depth and weights), kept
   only if it beats the ranker alone clearly, by MRR@10;
4. spans: how the composer mixes coverage, unit similarity, clause prior and numbers, by key-fact recall;
5. domain: the off-domain model's threshold;
6. scope: the confidence calibration (evaluation/calibration.py), by precision of `high` on real questions.

Folds keep a question and its rewrites together. The cross-validated estimate of each target metric is
the mean over held-out folds of the constants chosen on the other folds; the constants written to
tuning.json are then chosen on all of dev. The test split is never read here.

Objective weights: the real questions quoted from public pages are the distribution users bring, so they
count half; the team's written questions and their rewrites a quarter each.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import statistics
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..answering.compose import ASKS_FOR_NUMBER, SpanWeights, select_spans
from ..answering.fitted import FusionParams, Tuning
from ..answering.ranking import RERANK_FEATURES, LinearRanker, Reranking, fit_ranker
from ..answering.scope import Calibration, DomainModel
from ..knowledge.query_tower import load_query_tower
from ..schema import Ask
from . import calibration
from .sets import EVAL_DIR, SETS, EvalQuestion, dev_questions

TUNING_VERSION = 3  # bump when what is tuned or how changes: a build then refits instead of reusing
SET_WEIGHTS = {"real": 0.5, "written": 0.25, "rewrites": 0.25}
FOLDS = 5
FUSION_GRID = {"rrf_c": (2, 5, 10, 30, 60), "dense_weight": (0.5, 0.75, 1.0, 1.5, 2.0), "heading_weight": (0.0, 0.25, 0.5, 1.0)}
SPAN_GRID = {"dense": (0.0, 0.5, 1.0), "prior": (0.0, 0.5, 1.0), "number": (0.0, 0.25, 0.5), "keep_ratio": (0.5, 0.6, 0.7)}
RERANKER_MIN_Z = 2.0
"""A relevance model costs a forward pass per clause it reads, so it is kept only when its held-out MRR gain
is more than two standard errors of the paired per-question differences: an untrained model's score, pure
noise, gained 0.003 on ~290 dev questions and would have been kept by a bare comparison."""
RERANK_DEPTHS = (5, 8, 12)
"""How many of the ranker's top clauses the relevance model reads: more finds more right clauses ranked
low, and costs a forward pass each (about 5 ms per clause on two cores)."""


def set_of(q: EvalQuestion) -> str:
    if q.real:
        return "real"
    return "rewrites" if q.source_id else "written"


TRAINING_ONLY = -1
"""The fold of operator-labelled questions: they join every fold's training data and are never held out,
so the cross-validated figures stay estimates on the dev questions."""


def fold_of(q: EvalQuestion, folds: int = FOLDS) -> int:
    if q.split == "operator":
        return TRAINING_ONLY
    return int(hashlib.sha256(q.group.encode()).hexdigest(), 16) % folds


def operator_questions(db_path: Path) -> list[EvalQuestion]:
    """Operators' labels (knowledge/labels.py) as training-only questions: real questions with the clauses
    an operator said answer them, or none."""
    from ..knowledge.labels import operator_labels

    return [EvalQuestion(id=f"operator-{n}", split="operator", kind="answerable" if gold else "unanswerable",
                         question=question, gold=gold, real=True)
            for n, (question, gold) in enumerate(operator_labels(db_path))]


def weighted_mean(values: dict[str, float], questions: Sequence[EvalQuestion]) -> float:
    """Mean per set, then the sets weighted by SET_WEIGHTS (over the sets present)."""
    by_set: dict[str, list[float]] = {}
    for q in questions:
        if q.id in values:
            by_set.setdefault(set_of(q), []).append(values[q.id])
    total = sum(SET_WEIGHTS[s] for s in by_set)
    return sum(SET_WEIGHTS[s] * statistics.fmean(v) for s, v in by_set.items()) / total if total else 0.0


@dataclass
class Selection:
    choice: Hashable
    cv_estimate: float


def cross_validate(table: dict[Hashable, dict[str, float]], questions: Sequence[EvalQuestion],
                   folds: int = FOLDS) -> Selection:
    """Pick the option with the best weighted mean; the estimate is the held-out mean of per-fold picks."""
    best = max(table, key=lambda option: weighted_mean(table[option], questions))
    return Selection(best, _held_out(table, table, questions, folds))


def _fold_choice(chooser: dict[Hashable, dict[str, float]], questions: Sequence[EvalQuestion], fold: int,
                 folds: int = FOLDS) -> Hashable:
    """The option `chooser` ranks best on every fold but `fold`."""
    train = [q for q in questions if fold_of(q, folds) != fold]
    return max(chooser, key=lambda option: weighted_mean(chooser[option], train))


def fingerprint(manifest, eval_dir=EVAL_DIR, models: str = "") -> str:  # noqa: ANN001 - an IndexManifest
    """What the tuned constants depend on: the corpus, the embedding model, the learned models (see
    `learned_models`), the dev questions, the training questions (training/), this code."""
    from .training_sets import MINED_PAIRS, OFF_DOMAIN

    digest = hashlib.sha256(f"{TUNING_VERSION}|{manifest.corpus_hash}|{manifest.embedding_model}|{models}".encode())
    for path in [*(eval_dir / name for name in sorted(SETS.values())), OFF_DOMAIN, MINED_PAIRS]:
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:16]


def build_tuned_index(settings, embeddings, progress: bool = True,  # noqa: ANN001
                      report: Callable[[str], None] = lambda _: None):  # noqa: ANN201 - an IndexManifest
    """`build_index` plus the tuned constants, fitted on the new index before it is swapped in.

    When nothing they depend on changed (see `fingerprint`), the previous index's tuning.json is kept:
    refitting takes ~30 s, a rebuild of an unchanged corpus a few.
    """
    from ..knowledge.store import build_index, load_index
    from ..service import Assistant

    previous = Tuning.load_if_present(settings.index_dir)

    def fit(staging: Path) -> None:
        staged = settings.model_copy(update={"index_dir": staging})
        index = load_index(staged)
        mark = fingerprint(index.manifest, models=learned_models(settings))
        if previous is not None and previous.report.get("fingerprint") == mark:
            previous.save(staging)
            report("调参：语料、模型和评测集均未变化，沿用上次交叉验证的参数")
            return
        tuning = tune(Assistant(staged, index, embeddings, tuning=Tuning()), progress=report)
        tuning.model_copy(update={"report": {**tuning.report, "fingerprint": mark}}).save(staging)

    return build_index(settings, embeddings, progress, finalize=fit)


def build_updated_index(settings, embeddings):  # noqa: ANN001, ANN201 - an IndexManifest
    """The index after a knowledge-base change, fast: only new texts are embedded, BM25 and the word
    statistics the scope signals read are recomputed from the new corpus, and the fitted constants are
    carried over from the previous index (marked `carried_over`); `refit_scope` then recalibrates the
    scope model, and the next `policy-qa build` refits everything (~30 s)."""
    from ..knowledge.store import build_index

    previous = Tuning.load_if_present(settings.index_dir)

    def carry_over(staging: Path) -> None:
        if previous is not None:
            report = {**previous.report, "carried_over": True, "fingerprint": None}
            previous.model_copy(update={"report": report}).save(staging)

    return build_index(settings, embeddings, progress=False, finalize=carry_over)


def refit_scope(settings, embeddings) -> Tuning:  # noqa: ANN001
    """The abstention calibration after a knowledge-base change: the scope model refitted by
    cross-validation on the new index (~10 s), fusion, ranker and span weights kept. It runs after the
    new index is already serving (so a change is served within the update's time) and writes
    index/tuning.json atomically; a running server reloads when that file changes."""
    from ..knowledge.store import load_index
    from ..service import Assistant

    index = load_index(settings)
    current = Tuning.load(settings.index_dir)
    scope, scope_report = _tune_scope(Assistant(settings, index, embeddings, tuning=current), dev_questions(),
                                      operator_questions(settings.db_path))
    report = {**current.report, "scope": scope_report, "carried_over": ["fusion", "ranker", "spans"],
              "scope_refit_for": index.manifest.corpus_hash}
    refitted = current.model_copy(update={"scope": scope, "report": report})
    refitted.save(settings.index_dir)
    return refitted


def tune(assistant, eval_dir=EVAL_DIR, progress: Callable[[str], None] = lambda _: None) -> Tuning:  # noqa: ANN001
    """Cross-validate and choose the constants on `assistant`'s index; returns the Tuning to save."""
    questions = dev_questions(eval_dir)
    answerable = [q for q in questions if q.answerable and q.gold]
    operator = operator_questions(assistant.settings.db_path)
    report: dict = {"dev_questions": len(questions), "folds": FOLDS, "set_weights": SET_WEIGHTS,
                    "operator_labels": len(operator)}

    progress("fusion")
    fusion, fusion_report = _tune_fusion(assistant, answerable)
    tower = load_query_tower(assistant.settings.query_encoder)
    if tower is not None:  # the same fusion grid with the trained question encoder: keep it only if clearly better
        assistant.searcher.use_query_tower(tower)
        tower_fusion, tower_report = _tune_fusion(assistant, answerable)
        gain = paired_gain(tower_report["per_question"], fusion_report["per_question"])
        kept = gain.z > RERANKER_MIN_Z
        report["query_tower"] = {"name": tower.name, "kept": kept, "gain": gain._asdict(),
                                 "cv_mrr@10": tower_report["cv_mrr@10"], "cv_recall@5": tower_report["cv_recall@5"],
                                 "cv_by_set": tower_report["cv_by_set"],
                                 "without": {k: fusion_report[k] for k in ("cv_mrr@10", "cv_recall@5", "cv_by_set")}}
        if kept:
            fusion, fusion_report = tower_fusion, tower_report
        else:
            assistant.searcher.use_query_tower(None)
    else:
        report["query_tower"] = {"name": None, "kept": False, "why": "no question encoder configured"}
    fusion_report.pop("per_question")
    report["fusion"] = fusion_report
    assistant.searcher.fusion = fusion

    progress("ranker")
    ranker, ranker_report = _tune_ranker(assistant, answerable, fusion_report,
                                         [q for q in operator if q.gold])
    report["ranker"] = ranker_report
    assistant.searcher.ranker = ranker

    progress("reranking")
    reranking, reranking_report = _tune_reranking(assistant, answerable, ranker_report.pop("per_fold"))
    report["reranking"] = reranking_report
    assistant.searcher.reranking = reranking

    progress("spans")
    spans, span_report = _tune_spans(assistant, answerable)
    report["spans"] = span_report

    progress("domain")
    domain, domain_report = _tune_domain(assistant, questions)
    report["domain"] = domain_report
    assistant.pipeline.tuning = assistant.pipeline.tuning.model_copy(update={"domain": domain, "spans": spans})

    progress("scope")
    scope, scope_report = _tune_scope(assistant, questions, operator)
    report["scope"] = scope_report
    return Tuning(fusion=fusion, query_tower=tower.name if report["query_tower"]["kept"] else None, ranker=ranker,
                  reranking=reranking, spans=spans, scope=scope, domain=domain, report=report)


def learned_models(settings) -> str:  # noqa: ANN001
    """The configured learned models as the tuning depends on them: each by name and version."""
    from ..knowledge.query_tower import BUNDLED_DIR as TOWER_DIR
    from ..knowledge.relevance import BUNDLED_DIR as RELEVANCE_DIR

    def describe(setting: str | None, bundled: Path) -> str:
        if setting is None or setting.strip().lower() in ("", "none", "off"):
            return "none"
        directory = bundled if setting == "bundled" else Path(setting)
        manifest = directory / "manifest.json"
        return f"{setting}:{hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]}" if manifest.is_file() else setting

    return (f"reranker={describe(settings.reranker, RELEVANCE_DIR)};"
            f"query_encoder={describe(settings.query_encoder, TOWER_DIR)}")


# --- fusion --------------------------------------------------------------------------------------


def _tune_fusion(assistant, questions: list[EvalQuestion]) -> tuple[FusionParams, dict]:  # noqa: ANN001
    searcher = assistant.searcher
    prepared = []
    for q in questions:
        retrieval = searcher.retrieve(q.question, k=1)
        exact = next((assistant.index.clauses[h.clause_index].clause_id for h in retrieval.hits if h.exact), None)
        prepared.append((q, exact, searcher.raw_scores(q.question)))
    options = [FusionParams(rrf_c=c, dense_weight=d, heading_weight=h) for c, d, h in itertools.product(*FUSION_GRID.values())]
    mrr: dict[Hashable, dict[str, float]] = {}
    recall5: dict[Hashable, dict[str, float]] = {}
    for option in options:
        mrr[option], recall5[option] = {}, {}
        for q, exact, raw in prepared:
            order = searcher.order(q.question, raw, searcher.fuse(raw, "hybrid", option), "hybrid", ranker=None)
            mrr[option][q.id], recall5[option][q.id] = _rank_metrics(_ranked_ids(assistant, exact, order), q.gold)
    selection = cross_validate(mrr, questions)
    held_out_r5 = _held_out(recall5, mrr, questions)
    choice: FusionParams = selection.choice  # type: ignore[assignment]
    return choice, {"grid": FUSION_GRID, "chosen": choice.model_dump(), "cv_mrr@10": round(selection.cv_estimate, 4),
                    "cv_recall@5": round(held_out_r5, 4),
                    "cv_by_set": _held_out_by_set({"mrr@10": mrr, "recall@5": recall5}, mrr, questions),
                    "per_question": _held_out_values(mrr, questions)}


def _held_out(metric: dict[Hashable, dict[str, float]], chooser: dict[Hashable, dict[str, float]],
              questions: Sequence[EvalQuestion], folds: int = FOLDS) -> float:
    """Held-out weighted mean of `metric` when each fold's option is chosen by `chooser` on the others."""
    values = []
    for fold in range(folds):
        best = _fold_choice(chooser, questions, fold, folds)
        values.append(weighted_mean(metric[best], [q for q in questions if fold_of(q, folds) == fold]))
    return statistics.fmean(values)


def _held_out_values(table: dict[Hashable, dict[str, float]], questions: Sequence[EvalQuestion]) -> dict[str, float]:
    """Each question's value under the option chosen on the other folds (for paired comparisons)."""
    values: dict[str, float] = {}
    for fold in range(FOLDS):
        best = _fold_choice(table, questions, fold)
        values |= {q.id: table[best][q.id] for q in questions if fold_of(q) == fold and q.id in table[best]}
    return values


def _held_out_by_set(metrics: dict[str, dict[Hashable, dict[str, float]]], chooser: dict[Hashable, dict[str, float]],
                     questions: Sequence[EvalQuestion]) -> dict[str, dict[str, float]]:
    """Per set, the pooled held-out value of each metric (every question scored by its fold's choice)."""
    per_question: dict[str, dict[str, float]] = {name: {} for name in metrics}
    for fold in range(FOLDS):
        best = _fold_choice(chooser, questions, fold)
        for q in questions:
            if fold_of(q) == fold:
                for name, table in metrics.items():
                    if q.id in table[best]:
                        per_question[name][q.id] = table[best][q.id]
    pooled: dict[str, dict[str, list[float]]] = {}
    for q in questions:
        for name in metrics:
            if q.id in per_question[name]:
                pooled.setdefault(set_of(q), {}).setdefault(name, []).append(per_question[name][q.id])
    return {s: {name: round(statistics.fmean(v), 4) for name, v in d.items()} for s, d in pooled.items()}


# --- ranker --------------------------------------------------------------------------------------


def _ranked_ids(assistant, exact: str | None, order) -> list[str]:  # noqa: ANN001
    """The top ten clause ids as retrieval returns them: an exact reference first, then `order`."""
    ids = [exact] if exact else []
    for i in order:
        clause_id = assistant.index.clauses[int(i)].clause_id
        if clause_id not in ids:
            ids.append(clause_id)
        if len(ids) >= 10:
            break
    return ids


def _rank_metrics(ids: list[str], gold: list[str]) -> tuple[float, float]:
    """Reciprocal rank and recall@5 of the best-ranked gold clause."""
    ranks = [ids.index(g) + 1 for g in gold if g in ids[:10]]
    best = min(ranks) if ranks else None
    return (1.0 / best if best else 0.0), float(best is not None and best <= 5)


def _tune_ranker(assistant, questions: list[EvalQuestion], fusion_report: dict,  # noqa: ANN001
                 training_only: Sequence[EvalQuestion] = ()) -> tuple[LinearRanker | None, dict]:
    """Fit the pairwise ranker per fold on the fused candidates; keep it only if it beats fusion alone.
    `training_only` questions (operator labels) join every fold's training data."""
    searcher = assistant.searcher
    data = []
    for q in [*questions, *training_only]:
        exact = _exact_id(assistant, q.question)
        raw = searcher.raw_scores(q.question)
        fused = searcher.fuse(raw, "hybrid")
        pool = searcher.order(q.question, raw, fused, "hybrid", ranker=None)[: searcher.candidate_k]
        features = searcher.features(q.question, raw, fused, pool)
        labels = np.array([assistant.index.clauses[int(i)].clause_id in q.gold for i in pool], dtype=int)
        data.append((q, exact, pool, features, labels))

    def fit(subset: list) -> LinearRanker:
        rows = np.concatenate([d[3] for d in subset])
        labels = np.concatenate([d[4] for d in subset])
        groups = np.concatenate([np.full(len(d[4]), n) for n, d in enumerate(subset)])
        return fit_ranker(rows, labels, groups)

    mrr: dict[str, float] = {}
    recall5: dict[str, float] = {}
    per_fold: list[LinearRanker] = []
    for fold in range(FOLDS):
        model = fit([d for d in data if fold_of(d[0]) != fold])
        per_fold.append(model)
        for q, exact, pool, features, _ in data:
            if fold_of(q) == fold:
                order = pool[np.argsort(-model.scores(features), kind="stable")]
                mrr[q.id], recall5[q.id] = _rank_metrics(_ranked_ids(assistant, exact, order), q.gold)
    cv_mrr = round(weighted_mean(mrr, questions), 4)
    keep = cv_mrr > fusion_report["cv_mrr@10"]
    ranker = fit(data) if keep else None
    return ranker, {"cv_mrr@10": cv_mrr, "cv_recall@5": round(weighted_mean(recall5, questions), 4),
                    "cv_by_set": _by_set({"mrr@10": mrr, "recall@5": recall5}, questions), "kept": keep,
                    "weights": dict(zip(ranker.features, ranker.weights)) if ranker else None,
                    "per_fold": per_fold if keep else None}


def _exact_id(assistant, question: str) -> str | None:  # noqa: ANN001
    """The clause an exact reference in the question names, if any (it is ranked first, whatever the ranker)."""
    retrieval = assistant.searcher.retrieve(question, k=1)
    return next((assistant.index.clauses[h.clause_index].clause_id for h in retrieval.hits if h.exact), None)


def _by_set(metrics: dict[str, dict[str, float]], questions: Sequence[EvalQuestion]) -> dict[str, dict]:
    return {s: {name: _round(_mean([values[q.id] for q in questions if set_of(q) == s and q.id in values]))
                for name, values in metrics.items()} for s in SET_WEIGHTS}


def _tune_reranking(assistant, questions: list[EvalQuestion],  # noqa: ANN001
                    fold_rankers: Sequence[LinearRanker] | None) -> tuple[Reranking | None, dict]:
    """The second stage: per depth, fit the weights of (ranker score, relevance logit) per fold; keep the
    best depth only if its held-out MRR gain over the ranker alone exceeds RERANKER_MIN_Z standard errors.
    Each question is ranked by the first-stage ranker fitted without its fold (`fold_rankers`), so both
    sides of the comparison are held out."""
    searcher = assistant.searcher
    reranker = searcher.reranker
    if reranker is None or searcher.ranker is None or not fold_rankers:
        return None, {"reranker": reranker.name if reranker else None, "kept": False,
                      "why": "no relevance model configured" if reranker is None else "no first-stage ranker"}
    deepest = max(RERANK_DEPTHS)
    data = []
    for q in questions:
        raw = searcher.raw_scores(q.question)
        ranking = searcher.rank(q.question, raw, searcher.fuse(raw, "hybrid"), "hybrid",
                                ranker=fold_rankers[fold_of(q)], reranking=_NO_RERANKING)
        top = ranking.order[:deepest]
        rows = np.column_stack([[ranking.scores[int(i)] for i in top], searcher.relevance(q.question, top)])
        labels = np.array([assistant.index.clauses[int(i)].clause_id in q.gold for i in top], dtype=int)
        data.append((q, _exact_id(assistant, q.question), ranking.order, rows, labels))

    def fit(subset: list, depth: int) -> LinearRanker:
        rows = np.concatenate([d[3][:depth] for d in subset])
        labels = np.concatenate([d[4][:depth] for d in subset])
        groups = np.concatenate([np.full(len(d[4][:depth]), n) for n, d in enumerate(subset)])
        return fit_ranker(rows, labels, groups, names=RERANK_FEATURES)

    def reordered(order: np.ndarray, rows: np.ndarray, model: LinearRanker, depth: int) -> np.ndarray:
        top = order[:depth]
        final = model.scores(rows[: len(top)], RERANK_FEATURES)
        return np.concatenate([top[np.argsort(-final, kind="stable")], order[depth:]])

    baseline = {q.id: _rank_metrics(_ranked_ids(assistant, exact, order), q.gold)[0] for q, exact, order, _, _ in data}
    results = {}
    for depth in RERANK_DEPTHS:
        mrr: dict[str, float] = {}
        recall5: dict[str, float] = {}
        for fold in range(FOLDS):
            model = fit([d for d in data if fold_of(d[0]) != fold], depth)
            for q, exact, order, rows, _ in data:
                if fold_of(q) == fold:
                    ids = _ranked_ids(assistant, exact, reordered(order, rows, model, depth))
                    mrr[q.id], recall5[q.id] = _rank_metrics(ids, q.gold)
        results[depth] = {"cv_mrr@10": round(weighted_mean(mrr, questions), 4),
                          "cv_recall@5": round(weighted_mean(recall5, questions), 4),
                          "cv_by_set": _by_set({"mrr@10": mrr, "recall@5": recall5}, questions),
                          "gain": paired_gain(mrr, baseline)._asdict()}
    depth = max(RERANK_DEPTHS, key=lambda d: (results[d]["cv_mrr@10"], -d))
    keep = results[depth]["gain"]["z"] > RERANKER_MIN_Z
    reranking = Reranking(depth=depth, reranker=reranker.name, ranker=fit(data, depth)) if keep else None
    return reranking, {"reranker": reranker.name, "kept": keep, "depth": depth,
                       "baseline_cv_mrr@10": round(weighted_mean(baseline, questions), 4),
                       **results[depth], "by_depth": {d: {k: r[k] for k in ("cv_mrr@10", "cv_recall@5", "gain")}
                                                      for d, r in results.items()},
                       "weights": dict(zip(RERANK_FEATURES, reranking.ranker.weights)) if reranking else None}


_NO_RERANKING = Reranking(depth=0, reranker="", ranker=LinearRanker(weights=(0.0, 0.0), mean=(0.0, 0.0),
                                                                     std=(1.0, 1.0), features=RERANK_FEATURES))
"""A second stage that reads nothing: the ranker's own order (while the second stage is being fitted)."""


class Gain(NamedTuple):
    """A paired comparison of two options over the same questions."""

    mean: float
    se: float
    z: float


def paired_gain(better: dict[str, float], worse: dict[str, float]) -> Gain:
    """Mean per-question difference, its standard error and their ratio (0 when there is no spread)."""
    diffs = [better[q] - worse[q] for q in better if q in worse]
    if len(diffs) < 2:
        return Gain(0.0, 0.0, 0.0)
    mean, se = statistics.fmean(diffs), statistics.stdev(diffs) / len(diffs) ** 0.5
    return Gain(round(mean, 4), round(se, 4), round(mean / se, 2) if se else 0.0)


# --- spans ---------------------------------------------------------------------------------------


def _tune_spans(assistant, questions: list[EvalQuestion]) -> tuple[SpanWeights, dict]:  # noqa: ANN001
    pipeline = assistant.pipeline
    options = [SpanWeights(dense=d, prior=p, number=n, keep_ratio=r) for d, p, n, r in itertools.product(*SPAN_GRID.values())]
    table: dict[Hashable, dict[str, float]] = {option: {} for option in options}
    cites: dict[Hashable, dict[str, float]] = {option: {} for option in options}
    max_sentences = assistant.settings.max_answer_sentences
    for q in questions:
        prepared = pipeline.prepare(Ask(question=q.question))
        if prepared.decision.reason in MODEL_DECIDES:  # composed from spans
            ranked = pipeline.ranked_clauses(prepared.retrieval, prepared.hits)
            words = pipeline.question_terms(prepared.query)
            wants_number = bool(ASKS_FOR_NUMBER.search(q.question))
            for option in options:
                spans = select_spans(words, wants_number, ranked, max_sentences, option)
                text = "".join(s.text for s in spans)
                if q.key_facts:
                    table[option][q.id] = sum(fact in text for fact in q.key_facts) / len(q.key_facts)
                cites[option][q.id] = float(any(ranked[s.rank].clause.clause_id in q.gold for s in spans))
        else:  # references and declines do not depend on the span weights
            cited = {c.clause_id for c in prepared.answer.citations}
            for option in options:
                if q.key_facts:
                    table[option][q.id] = sum(fact in prepared.answer.answer for fact in q.key_facts) / len(q.key_facts)
                cites[option][q.id] = float(bool(cited & set(q.gold)))
    selection = cross_validate(table, questions)
    choice: SpanWeights = selection.choice  # type: ignore[assignment]
    return choice, {"grid": SPAN_GRID, "chosen": choice.model_dump(),
                    "cv_key_fact_recall": round(selection.cv_estimate, 4),
                    "cv_cites_right_clause": round(_held_out(cites, table, questions), 4),
                    "cv_by_set": _held_out_by_set({"key_fact_recall": table, "cites_right_clause": cites},
                                                  table, questions)}


# --- scope ---------------------------------------------------------------------------------------


def _tune_domain(assistant, questions: list[EvalQuestion]) -> tuple[DomainModel | None, dict]:  # noqa: ANN001
    """The off-domain model, fitted on the training questions (never on dev); its threshold sits above every
    answerable dev question of the training folds, and the held-out figures say what it declines."""
    from .training_sets import domain_questions

    training = domain_questions() + [(text, False) for text in corpus_phrases(assistant.index)]
    if not any(off for _, off in training) or all(off for _, off in training):
        return None, {"kept": False, "why": "no off-domain training questions (training/offdomain_questions.jsonl)"}
    embed = assistant.searcher.query_vector
    vectors = np.vstack([embed(text) for text, _ in training])
    labels = [int(off) for _, off in training]
    dev = {q.id: embed(q.question) for q in questions}
    declined: dict[str, float] = {}
    for fold in range(FOLDS):
        answerable = np.vstack([dev[q.id] for q in questions if q.answerable and fold_of(q) != fold])
        model = calibration.fit_domain(vectors, labels, answerable)
        for q in questions:
            if fold_of(q) == fold:
                declined[q.id] = float(model.off_domain(dev[q.id]) >= model.threshold)
    model = calibration.fit_domain(vectors, labels, np.vstack([dev[q.id] for q in questions if q.answerable]))
    by_set = {s: {"answerable_declined": _round(_mean([declined[q.id] for q in questions if set_of(q) == s and q.answerable])),
                  "unanswerable_declined": _round(_mean([declined[q.id] for q in questions if set_of(q) == s and not q.answerable]))}
              for s in SET_WEIGHTS}
    return model, {"kept": True, "training_questions": len(training), "off_domain": sum(labels),
                   "threshold": round(model.threshold, 4), "cv_by_set": by_set}


def corpus_phrases(index) -> list[str]:  # noqa: ANN001 - a ClauseIndex
    """What the corpus itself says a policy question may be about: every heading, plan measure title and
    clause opening (cut at its first comma). Real questions mined from pages cover the laws people argue
    about; these cover the rest (the plan's 12345热线, 火炬高新区) so that terse policy questions never look
    off-domain."""
    phrases: set[str] = set()
    for clause in index.clauses:
        phrases.update(h for h in clause.heading_path if h)
        if not clause.label.startswith("第"):
            phrases.add(clause.label)
        first = (clause.sentences or (clause.text,))[0]
        phrases.add(re.split(r"[，；：]", first)[0][:40])
    return sorted(p for p in phrases if len(p) >= 4)


MODEL_DECIDES = ("model", "no_scope_model", "not_covered")  # ScopeDecision reasons of questions the calibration decides


def _tune_scope(assistant, questions: list[EvalQuestion],  # noqa: ANN001
                training_only: Sequence[EvalQuestion] = ()) -> tuple[Calibration | None, dict]:
    """Fit the confidence calibration (evaluation/calibration.py) and report what users would meet,
    every dev question decided by models fitted on the other folds (`training_only` questions, operator
    labels, join every fold's training data)."""
    pipeline = assistant.pipeline
    saved = pipeline.tuning
    pipeline.tuning = saved.model_copy(update={"scope": None})  # compose every answer, label it right or not
    try:
        prepared = {q.id: pipeline.prepare(Ask(question=q.question)) for q in [*questions, *training_only]}
    finally:
        pipeline.tuning = saved

    def right(q: EvalQuestion) -> bool:
        cited = {c.clause_id for c in prepared[q.id].answer.citations}
        return q.answerable and bool(cited & set(q.gold))

    rows = [calibration.Row(q, set_of(q), fold_of(q), pipeline.signals(p.query, p.retrieval, p.hits), right(q))
            for q, p in ((q, prepared[q.id]) for q in [*questions, *training_only])
            if p.decision.reason in MODEL_DECIDES]
    if len({r.right for r in rows}) < 2 or len({r.question.answerable for r in rows}) < 2:
        return None, {"rows": len(rows), "kept": False, "why": "dev questions of one kind only"}
    target, held_out = calibration.cross_validate(rows, FOLDS, SET_WEIGHTS)
    model = calibration.fit_calibration(rows, SET_WEIGHTS, target)
    outcome = {q.id: (q, held_out.get(q.id, prepared[q.id].decision.confidence), right(q)) for q in questions}
    by_set = {s: calibration.tier_metrics([o for o in outcome.values() if set_of(o[0]) == s]) for s in SET_WEIGHTS}
    return model, {
        "rows": len(rows), "in_fold_target": target, "high_precision_goal": calibration.HIGH_PRECISION,
        "max_false_decline": calibration.MAX_FALSE_DECLINE,
        "high_threshold": round(model.high_threshold, 4), "decline_threshold": round(model.decline_threshold, 4),
        "right_weights": dict(zip(model.right.features, (round(w, 4) for w in model.right.weights))),
        "cv_by_set": by_set,
        # the build's summary line
        "cv_low_confidence_rate": by_set["written"]["low_confidence_rate"],
        "cv_abstention_recall": by_set["real"]["abstention_recall"],
    }


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
