"""The evaluation: retrieval, citation, grounding and scope metrics per eval set and retrieval method,
and the gate.

Every question of each set (real questions from public pages, written ones, rewrites) goes through
the same `Assistant` users get, once per method (bm25, dense, hybrid); the report is JSON plus a
markdown table per set. The gate compares the hybrid metrics on the held-out test split with
eval/floors.json, whose floors come from cross-validated dev estimates minus a margin (tuning.py).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from ..answering.compose import LOW_CONFIDENCE_INTRO, LOW_CONFIDENCE_REFERRAL
from ..answering.grounding import (
    citation_scores,
    citation_texts,
    missing_numbers,
    numbers_in,
    parse_markers,
    split_sentences,
    strip_markers,
)
from ..answering.retrieval import Method
from ..schema import Answer, Ask, Confidence
from ..service import Assistant
from .sets import SETS, EvalQuestion, Split, load_set

METHODS: tuple[Method, ...] = ("bm25", "dense", "hybrid")
# Metrics where higher is better, except these, where lower is.
LOWER_IS_BETTER = {"false_abstention", "low_confidence_rate", "confident_wrong", "latency_p50_ms", "latency_p95_ms"}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def retrieval_metrics(assistant: Assistant, questions: list[EvalQuestion], method: Method) -> dict[str, float]:
    """Clause-level recall@1, recall@5 and MRR@10 over answerable questions."""
    r1 = r5 = mrr = 0.0
    answerable = [q for q in questions if q.answerable and q.gold]
    for q in answerable:
        hits = assistant.searcher.retrieve(q.question, k=10, method=method).hits
        ids = [assistant.index.clauses[h.clause_index].clause_id for h in hits]
        ranks = [ids.index(g) + 1 for g in q.gold if g in ids]
        best = min(ranks) if ranks else None
        r1 += best == 1
        r5 += best is not None and best <= 5
        mrr += 1.0 / best if best else 0.0
    n = len(answerable) or 1
    return {"recall@1": r1 / n, "recall@5": r5 / n, "mrr@10": mrr / n}


def citations_valid(answer: Answer, assistant: Assistant) -> bool:
    """Every [n] resolves to a citation, and every citation is an indexed clause with its exact text."""
    by_n = {c.n: c for c in answer.citations}
    for n in parse_markers(answer.answer):
        if n not in by_n:
            return False
    for citation in answer.citations:
        try:
            if assistant.clause(citation.clause_id).text != citation.text:
                return False
        except KeyError:
            return False
    return True


def answer_metrics(assistant: Assistant, questions: list[EvalQuestion], method: Method,
                   mode: str = "extractive") -> tuple[dict, list[dict]]:
    """Answer-level metrics, plus one record per question for the JSON report."""
    assistant.searcher.clear_query_cache()  # time first-time questions, not cache hits
    records = []
    answers: list[Answer] = []
    latencies: list[float] = []
    facts_found = facts_total = numbers_ok = numbers_total = valid = 0
    not_high_unanswerable = declined_unanswerable = unanswerable = 0
    declined_answerable = low_answerable = answerable = cites_right = with_gold = 0
    high = high_right = 0
    for q in questions:
        started = time.perf_counter()
        answer = assistant.ask(Ask(question=q.question, method=method, mode=mode))
        answers.append(answer)
        latencies.append((time.perf_counter() - started) * 1000)
        text = strip_markers(answer.answer)
        valid += citations_valid(answer, assistant)
        texts = citation_texts(answer.citations)  # title + label + text, as the answer path checks
        if not answer.abstained:
            for sentence in split_sentences(answer.answer):
                markers = parse_markers(sentence)
                if not markers:
                    continue  # our own framing (the low-confidence lines), not a claim from a clause
                found = numbers_in(strip_markers(sentence))
                cited = [texts[n] for n in markers if n in texts]
                numbers_total += len(found)
                numbers_ok += len(found) - len(missing_numbers(strip_markers(sentence), cited))
        if q.answerable:
            answerable += 1
            declined_answerable += answer.confidence is Confidence.declined
            low_answerable += answer.confidence is Confidence.low
            if q.key_facts:  # per question, as tuning.py cross-validates it
                facts_total += 1
                facts_found += sum(fact in text for fact in q.key_facts) / len(q.key_facts)
            if q.gold:
                with_gold += 1
                right = bool({c.clause_id for c in answer.citations} & set(q.gold))
                cites_right += right
                high_right += right and answer.confidence is Confidence.high
        else:
            unanswerable += 1
            not_high_unanswerable += answer.confidence is not Confidence.high
            declined_unanswerable += answer.confidence is Confidence.declined
        high += answer.confidence is Confidence.high
        records.append({
            "id": q.id, "kind": q.kind, "question": q.question, "confidence": answer.confidence.value,
            "answer": answer.answer, "cited": [c.clause_id for c in answer.citations], "gold": q.gold,
        })
    metrics = {
        "cites_right_clause": cites_right / (with_gold or 1),
        # The confidence tiers as users meet them: `high` must be right (an unanswerable question answered
        # high is wrong); coverage is the share of answerable questions answered high and right.
        "high_precision": high_right / high if high else 1.0,
        "coverage": high_right / (with_gold or 1),
        "confident_wrong": (high - high_right) / (len(questions) or 1),
        "citation_validity": valid / (len(questions) or 1),
        "key_fact_recall": facts_found / (facts_total or 1),
        "numbers_in_cited_clause": numbers_ok / numbers_total if numbers_total else 1.0,
        # Unanswerable questions not given a confident answer (declined, or the low-confidence form).
        "abstention_recall": not_high_unanswerable / (unanswerable or 1),
        "decline_recall": declined_unanswerable / (unanswerable or 1),
        "false_abstention": declined_answerable / (answerable or 1),
        "low_confidence_rate": low_answerable / (answerable or 1),
        "latency_p50_ms": statistics.median(latencies) if latencies else 0.0,
        "latency_p95_ms": percentile(latencies, 0.95),
    }
    if mode == "generative":
        metrics |= generative_metrics(answers)
    return metrics, records


def generative_metrics(answers: list[Answer]) -> dict[str, float]:
    """ALCE citation recall and precision (Gao et al., 2023) of what users got, judged by the same
    support measure and numbers check that trims generated answers (grounding.py), averaged over
    answered questions; plus how often the model's own text was shown and how much of it was cut."""
    answered = [a for a in answers if not a.abstained]
    scores = [citation_scores(_claims(a.answer), a.citations) for a in answered]
    kept = sum(len(a.grounding.kept) for a in answered if a.grounding)
    removed = sum(len(a.grounding.removed) for a in answered if a.grounding)
    return {
        "citation_recall": statistics.fmean(s.recall for s in scores) if scores else 0.0,
        "citation_precision": statistics.fmean(s.precision for s in scores) if scores else 0.0,
        "generated_share": sum(a.mode == "generative" for a in answered) / (len(answered) or 1),
        "removed_sentence_rate": removed / (kept + removed) if kept + removed else 0.0,
    }


def _claims(text: str) -> str:
    """The answer without our own framing lines (the low-confidence intro and referral), which cite nothing."""
    return "\n".join(line for line in text.splitlines() if line not in (LOW_CONFIDENCE_INTRO, LOW_CONFIDENCE_REFERRAL))


def run_eval(assistant: Assistant, split: Split = "test", methods: tuple[Method, ...] = METHODS,
             mode: str = "extractive", sets: tuple[str, ...] = tuple(SETS)) -> dict:
    """All metrics for each set and method on one split; the generative mode runs hybrid retrieval only."""
    methods = methods if mode == "extractive" else ("hybrid",)
    report: dict = {"split": split, "mode": mode, "sets": {}}
    for name in sets:
        questions = load_set(name, split)  # type: ignore[arg-type]
        entry: dict = {"questions": len(questions), "methods": {}, "records": {}}
        for method in methods:
            metrics = retrieval_metrics(assistant, questions, method)
            answer_side, records = answer_metrics(assistant, questions, method, mode)
            entry["methods"][method] = {k: round(v, 4) for k, v in (metrics | answer_side).items()}
            entry["records"][method] = records
        report["sets"][name] = entry
    report["phrasing"] = phrasing_spread(report, split)
    return report


def phrasing_spread(report: dict, split: Split) -> dict[str, dict[str, float]]:
    """The same questions in three phrasings (the written original, terse keywords, long-winded): how
    far hybrid retrieval and citations move between them, from the records the run already has."""
    if "rewrites" not in report["sets"] or "written" not in report["sets"]:
        return {}
    rewrites = {q.id: q for q in load_set("rewrites", split)}
    originals = {q.source_id for q in rewrites.values()}
    records = {r["id"]: r for name in ("written", "rewrites") for r in report["sets"][name]["records"]["hybrid"]}
    by_style: dict[str, list[float]] = {}
    for rid, record in records.items():
        style = rewrites[rid].style if rid in rewrites else ("original" if rid in originals else None)
        if style and record["gold"]:
            by_style.setdefault(style, []).append(float(bool(set(record["cited"]) & set(record["gold"]))))
    return {style: {"questions": len(v), "cites_right_clause": round(statistics.fmean(v), 4)}
            for style, v in sorted(by_style.items())}


def markdown_table(report: dict) -> str:
    lines = []
    for name, entry in report["sets"].items():
        methods = list(entry["methods"])
        metric_names = list(next(iter(entry["methods"].values())))
        lines += [f"Set: {name}, split {report['split']} ({entry['questions']} questions)", "",
                  "| metric | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for metric in metric_names:
            lines.append(f"| {metric} | " + " | ".join(f"{entry['methods'][m][metric]:.3f}" for m in methods) + " |")
        lines.append("")
    if report.get("phrasing"):
        lines += ["Phrasing spread (the same questions, hybrid): answer cites a right clause", "",
                  "| phrasing | questions | cites right clause |", "|---|---|---|"]
        lines += [f"| {style} | {v['questions']} | {v['cites_right_clause']:.3f} |" for style, v in report["phrasing"].items()]
        lines.append("")
    return "\n".join(lines)


def _worse(metric: str, value: float, reference: float, tolerance: float = 0.0) -> bool:
    """Whether `value` is worse than `reference` by more than `tolerance`, in the metric's direction."""
    if metric in LOWER_IS_BETTER:
        return value > reference + tolerance
    return value < reference - tolerance


def gate(report: dict, floors: dict[str, dict[str, float]]) -> list[str]:
    """Failures of each set's hybrid metrics against its floors (the contract); regressions against the
    baseline are only warnings (see `regressions`)."""
    failures = []
    for name, set_floors in floors.items():
        if name not in report["sets"]:
            continue
        hybrid = report["sets"][name]["methods"]["hybrid"]
        for metric, floor in set_floors.items():
            value = hybrid[metric]
            if _worse(metric, value, floor):
                failures.append(f"{name} {metric} = {value:.3f}, floor {floor:.3f}")
    return failures


class Baseline(BaseModel):
    """The hybrid metrics of one earlier run, per set, and the split they were measured on."""

    model_config = ConfigDict(extra="forbid")

    split: str
    sets: dict[str, dict[str, float]]


def load_baseline(path: Path) -> Baseline | None:
    """eval/baseline.json, or None when there is none; a file in another shape is an error that says
    how to replace it (a flat file once made every comparison silently find nothing)."""
    if not path.exists():
        return None
    try:
        return Baseline.model_validate_json(path.read_text("utf-8"))
    except ValidationError:
        raise ValueError(f"{path.name} is not a baseline of this version (expected split and per-set metrics): "
                         "run `policy-qa eval --update-baseline` to write a new one") from None


def regressions(report: dict, baseline: Baseline, tolerance: float = 0.02) -> list[str]:
    """Hybrid metrics worse than the baseline's by more than `tolerance`, on the same split only."""
    if baseline.split != report["split"]:
        return []
    found = []
    for name, before_metrics in baseline.sets.items():
        if name not in report["sets"]:
            continue
        hybrid = report["sets"][name]["methods"]["hybrid"]
        for metric, before in before_metrics.items():
            if metric.startswith("latency") or metric not in hybrid:
                continue
            now = hybrid[metric]
            if _worse(metric, now, before, tolerance):
                found.append(f"{name} {metric}: {before:.3f} → {now:.3f}")
    return found


def baseline_of(report: dict) -> Baseline:
    return Baseline(split=report["split"], sets={name: entry["methods"]["hybrid"] for name, entry in report["sets"].items()})


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-generative" if report.get("mode") == "generative" else ""
    json_path = out_dir / f"eval-{report['split']}{suffix}.json"
    md_path = out_dir / f"eval-{report['split']}{suffix}.md"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    md_path.write_text(markdown_table(report), encoding="utf-8")
    return json_path, md_path
