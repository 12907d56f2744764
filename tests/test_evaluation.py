"""The eval set's own integrity and the gate's arithmetic."""

from __future__ import annotations

import json

from assistant.evaluation.report import EVAL_DIR, gate, load_questions, percentile


def test_the_question_set_is_large_balanced_and_points_at_real_clauses(assistant) -> None:
    questions = load_questions()
    assert len(questions) >= 150
    unanswerable = [q for q in questions if q.kind == "unanswerable"]
    assert len(unanswerable) / len(questions) >= 0.25
    assert {q.kind for q in questions} == {"answerable", "number", "reference", "unanswerable"}
    assert len({q.id for q in questions}) == len(questions)
    for q in questions:
        for clause_id in q.gold:
            assistant.clause(clause_id)  # raises for an unknown id
        for fact in q.key_facts:
            assert fact in assistant.clause(q.gold[0]).text, (q.id, fact)
    plan_ids = {c.clause_id for c in assistant.index.clauses if c.doc_id.startswith("xiamen")}
    assert plan_ids <= {g for q in questions for g in q.gold}, "every plan measure has a question"


def test_the_gate_fails_below_a_floor_and_passes_at_it() -> None:
    report = {"methods": {"hybrid": {"recall@5": 0.9, "false_abstention": 0.1}}}
    assert gate(report, {"recall@5": 0.9}) == []
    assert gate(report, {"recall@5": 0.95}) == ["recall@5 = 0.900, floor 0.950"]
    assert gate(report, {"false_abstention": 0.08}) == ["false_abstention = 0.100, floor 0.080"]


def test_floors_never_sit_below_the_agreed_minimums() -> None:
    floors = json.loads((EVAL_DIR / "floors.json").read_text())["extractive"]
    minimums = {"recall@5": 0.90, "mrr@10": 0.80, "abstention_recall": 0.85, "citation_validity": 1.0,
                "numbers_in_cited_clause": 1.0}
    assert all(floors[name] >= value for name, value in minimums.items())
    assert floors["false_abstention"] <= 0.08
    generative = json.loads((EVAL_DIR / "floors.json").read_text())["generative"]
    assert {"citation_recall", "citation_precision", "numbers_in_cited_clause"} <= set(generative)


def test_percentiles() -> None:
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == 95.0
