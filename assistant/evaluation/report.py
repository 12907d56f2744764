"""The evaluation: retrieval, citation, grounding and abstention metrics per retrieval method, and the gate.

Runs every question of eval/questions.jsonl through the same `Assistant` users get, once per method
(bm25, dense, hybrid), and writes JSON plus a markdown table. The gate compares the hybrid metrics on
the held-out test split with eval/floors.json and the committed eval/baseline.json.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

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
from ..answering.scope import Calibration, fit_logistic, rule_out_of_scope
from ..config import PROJECT_ROOT
from ..schema import Answer
from ..service import Assistant

EVAL_DIR = PROJECT_ROOT / "eval"
METHODS: tuple[Method, ...] = ("bm25", "dense", "hybrid")
Split = Literal["dev", "test", "all"]
# Metrics where higher is better, except these, where lower is.
LOWER_IS_BETTER = {"false_abstention", "latency_p50_ms", "latency_p95_ms"}


class EvalQuestion(BaseModel):
    id: str
    split: str
    kind: str
    question: str
    gold: list[str] = []
    key_facts: list[str] = []

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


def load_questions(path: Path = EVAL_DIR / "questions.jsonl", split: Split = "all") -> list[EvalQuestion]:
    questions = [EvalQuestion.model_validate_json(line) for line in path.read_text("utf-8").splitlines() if line]
    return [q for q in questions if split == "all" or q.split == split]


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
    abstained_unanswerable = unanswerable = abstained_answerable = answerable = 0
    for q in questions:
        started = time.perf_counter()
        answer = assistant.ask(q.question, method=method, mode=mode)
        answers.append(answer)
        latencies.append((time.perf_counter() - started) * 1000)
        text = strip_markers(answer.answer)
        valid += citations_valid(answer, assistant)
        texts = citation_texts(answer.citations)  # title + label + text, as the answer path checks
        if not answer.abstained:
            for sentence in split_sentences(answer.answer):
                found = numbers_in(strip_markers(sentence))
                cited = [texts[n] for n in parse_markers(sentence) if n in texts]
                numbers_total += len(found)
                numbers_ok += len(found) - len(missing_numbers(strip_markers(sentence), cited))
        if q.answerable:
            answerable += 1
            abstained_answerable += answer.abstained
            facts_total += len(q.key_facts)
            facts_found += sum(fact in text for fact in q.key_facts)
        else:
            unanswerable += 1
            abstained_unanswerable += answer.abstained
        records.append({
            "id": q.id, "kind": q.kind, "question": q.question, "abstained": answer.abstained,
            "answer": answer.answer, "cited": [c.clause_id for c in answer.citations], "gold": q.gold,
        })
    metrics = {
        "citation_validity": valid / (len(questions) or 1),
        "key_fact_recall": facts_found / (facts_total or 1),
        "numbers_in_cited_clause": numbers_ok / numbers_total if numbers_total else 1.0,
        "abstention_recall": abstained_unanswerable / (unanswerable or 1),
        "false_abstention": abstained_answerable / (answerable or 1),
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
    scores = [citation_scores(a.answer, a.citations) for a in answered]
    kept = sum(len(a.grounding.kept) for a in answered if a.grounding)
    removed = sum(len(a.grounding.removed) for a in answered if a.grounding)
    return {
        "citation_recall": statistics.fmean(s.recall for s in scores) if scores else 0.0,
        "citation_precision": statistics.fmean(s.precision for s in scores) if scores else 0.0,
        "generated_share": sum(a.mode == "generative" for a in answered) / (len(answered) or 1),
        "removed_sentence_rate": removed / (kept + removed) if kept + removed else 0.0,
    }


def run_eval(assistant: Assistant, split: Split = "test", methods: tuple[Method, ...] = METHODS,
             mode: str = "extractive") -> dict:
    """All metrics for each method on one split; the generative mode runs hybrid retrieval only."""
    questions = load_questions(split=split)
    methods = methods if mode == "extractive" else ("hybrid",)
    report: dict = {"split": split, "mode": mode, "questions": len(questions), "methods": {}, "records": {}}
    for method in methods:
        metrics = retrieval_metrics(assistant, questions, method)
        answer_side, records = answer_metrics(assistant, questions, method, mode)
        report["methods"][method] = {k: round(v, 4) for k, v in (metrics | answer_side).items()}
        report["records"][method] = records
    return report


def markdown_table(report: dict) -> str:
    methods = list(report["methods"])
    names = list(next(iter(report["methods"].values())))
    lines = [
        f"Split: {report['split']} ({report['questions']} questions)",
        "",
        "| metric | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{report['methods'][m][name]:.3f}" for m in methods) + " |")
    return "\n".join(lines) + "\n"


def gate(report: dict, floors: dict[str, float]) -> list[str]:
    """Failures of the hybrid metrics against the floors (the contract); regressions against the
    baseline are only warnings (see `regressions`)."""
    hybrid = report["methods"]["hybrid"]
    failures = []
    for name, floor in floors.items():
        value = hybrid[name]
        bad = value > floor if name in LOWER_IS_BETTER else value < floor
        if bad:
            failures.append(f"{name} = {value:.3f}, floor {floor:.3f}")
    return failures


def regressions(report: dict, baseline: dict[str, float], tolerance: float = 0.02) -> list[str]:
    hybrid = report["methods"]["hybrid"]
    found = []
    for name, before in baseline.items():
        if name.startswith("latency") or name not in hybrid:
            continue
        now = hybrid[name]
        worse = now > before + tolerance if name in LOWER_IS_BETTER else now < before - tolerance
        if worse:
            found.append(f"{name}: {before:.3f} → {now:.3f}")
    return found


def calibrate(assistant: Assistant, target_false_abstention: float = 0.05) -> tuple[Calibration, dict]:
    """Fit the abstention model on the dev split's retrieval signals (rules and exact references aside),
    then move the bias so that at most `target_false_abstention` of answerable dev questions abstain."""
    rows, labels = [], []
    for q in load_questions(split="dev"):
        query = q.question
        if rule_out_of_scope(query):
            continue
        retrieval = assistant.searcher.retrieve(query, k=assistant.settings.top_k)
        if retrieval.reference is not None:
            continue  # references are answered or declined by rule, not by the model
        hits, _ = assistant._prefer_in_force(retrieval.hits)  # noqa: SLF001 - same decision as ask()
        rows.append(assistant.signals(query, retrieval, hits).vector())
        labels.append(int(q.answerable))
    model = fit_logistic(rows, labels)
    z_in = sorted(model.bias + sum(w * x for w, x in zip(model.weights, r)) for r, y in zip(rows, labels) if y)
    allowed = int(target_false_abstention * len(z_in))
    shift = -z_in[allowed] + 1e-6 if z_in and z_in[allowed] < 0 else 0.0
    model = Calibration(weights=model.weights, bias=model.bias + shift)
    stats = {"rows": len(rows), "answerable": sum(labels), "unanswerable": len(labels) - sum(labels),
             "bias_shift": round(shift, 4)}
    return model, stats


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-generative" if report.get("mode") == "generative" else ""
    json_path = out_dir / f"eval-{report['split']}{suffix}.json"
    md_path = out_dir / f"eval-{report['split']}{suffix}.md"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    md_path.write_text(markdown_table(report), encoding="utf-8")
    return json_path, md_path
