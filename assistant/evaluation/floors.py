"""Gate floors from cross-validated dev estimates, never from test scores.

A floor is the estimate minus a margin of three binomial standard errors at the size of the test set it
guards (plus, for rates where lower is better). sqrt(p(1-p)/n) is the noise a held-out set of n questions
has around a true rate p; p is taken Agresti-Coull adjusted, (k + 2) / (n + 4), because an estimate of 1.0
or 0.0 from a few dozen questions (the precision of a handful of `high` answers) does not mean the rate
has no noise. Why three: the gate checks about twenty such figures at once (seven per set,
three sets), and at two SE each a correct system would fail one of them in roughly two runs of five; at
three SE (0.13% one-sided each) it fails about one run in thirty, while a regression of ten points on a
set of ~100 questions still fails its floor.
"""

from __future__ import annotations

import math

from .report import LOWER_IS_BETTER
from .sets import SETS, load_set

MARGIN_SE = 3.0
MAX_MARGIN = 0.2  # a floor further than this below its estimate would guard nothing: report, do not gate
# Met by construction (every quoted span is verbatim, every marker resolves), whatever the questions.
EXACT = {"citation_validity": 1.0, "numbers_in_cited_clause": 1.0}


SCOPE_METRICS = ("high_precision", "coverage", "confident_wrong", "low_confidence_rate", "abstention_recall",
                 "false_abstention")


def ranking_report(tuning_report: dict) -> dict:
    """The report of the ranking stage that serves: the second stage, the ranker, or fusion alone."""
    for stage in ("reranking", "ranker"):
        if (tuning_report.get(stage) or {}).get("kept"):
            return tuning_report[stage]
    return tuning_report["fusion"]


def estimates(tuning_report: dict) -> dict[str, dict[str, float]]:
    """The cross-validated estimate of each gated metric, per set."""
    ranking = ranking_report(tuning_report)
    scope = (tuning_report.get("scope") or {}).get("cv_by_set", {})
    out: dict[str, dict[str, float]] = {}
    for name in SETS:
        values = {
            "recall@5": ranking["cv_by_set"].get(name, {}).get("recall@5"),
            "mrr@10": ranking["cv_by_set"].get(name, {}).get("mrr@10"),
            "key_fact_recall": tuning_report["spans"]["cv_by_set"].get(name, {}).get("key_fact_recall"),
            "cites_right_clause": tuning_report["spans"]["cv_by_set"].get(name, {}).get("cites_right_clause"),
            **{metric: scope.get(name, {}).get(metric) for metric in SCOPE_METRICS},
        }
        out[name] = {k: v for k, v in values.items() if v is not None}
    return out


def floors(tuning_report: dict) -> dict:
    """floors.json's extractive part: per set, each metric's floor and where it came from."""
    result: dict = {"method": f"cross-validated dev estimate -/+ {MARGIN_SE} binomial SE at the test set's size"}
    for name, metrics in estimates(tuning_report).items():
        test = load_set(name, "test")  # type: ignore[arg-type]
        sizes = {
            "answerable": sum(q.answerable for q in test),
            "gold": sum(q.answerable and bool(q.gold) for q in test),
            "unanswerable": sum(not q.answerable for q in test),
            "all": len(test),
        }
        entry: dict[str, float] = dict(EXACT)
        for metric, estimate in metrics.items():
            n = {"abstention_recall": sizes["unanswerable"], "confident_wrong": sizes["all"],
                 # high answers: about the coverage share of the answerable questions
                 "high_precision": round(metrics.get("coverage", 1.0) * sizes["gold"]),
                 }.get(metric, sizes["gold"] if metric in ("recall@5", "mrr@10", "cites_right_clause")
                       else sizes["answerable"])
            if not n:
                continue
            adjusted = (estimate * n + 2) / (n + 4)
            margin = MARGIN_SE * math.sqrt(adjusted * (1 - adjusted) / n)
            if margin > MAX_MARGIN:
                result.setdefault("not_gated", {}).setdefault(name, {})[metric] = (
                    f"margin {margin:.2f} at n={n}: too few test questions to gate this figure")
                continue
            floor = estimate + margin if metric in LOWER_IS_BETTER else estimate - margin
            entry[metric] = round(min(max(floor, 0.0), 1.0), 3)
        result[name] = entry
        result.setdefault("estimates", {})[name] = metrics
        result.setdefault("test_sizes", {})[name] = sizes
    return result
