"""The eval sets' integrity, the gate's arithmetic, and floors that come from cross-validation."""

from __future__ import annotations

import json

import pytest

from assistant.evaluation.report import LOWER_IS_BETTER, gate, percentile
from assistant.evaluation.sets import EVAL_DIR, SETS, load_set
from assistant.evaluation.tuning import cross_validate, fold_of, weighted_mean


@pytest.mark.parametrize("name", list(SETS))
def test_every_set_points_at_real_clauses(assistant, name: str) -> None:
    questions = load_set(name)
    assert len({q.id for q in questions}) == len(questions)
    assert {q.split for q in questions} == {"dev", "test"}
    for q in questions:
        assert q.answerable or not q.gold
        for clause_id in q.gold:
            assistant.clause(clause_id)  # raises for an unknown id
        if q.key_facts:
            texts = [assistant.clause(g).text for g in q.gold]
            assert all(any(fact in text for text in texts) for fact in q.key_facts), q.id


def test_real_questions_are_many_and_each_names_its_page() -> None:
    real = load_set("real")
    assert len(real) >= 200 and all(q.real for q in real)
    assert all(q.source and q.source.startswith("http") for q in real)
    assert sum(not q.answerable for q in real) >= 40, "real out-of-scope questions, too"


def test_rewrites_come_in_two_styles_of_the_same_question() -> None:
    rewrites = load_set("rewrites")
    written = {q.id: q for q in load_set("written")}
    by_source: dict[str, set[str]] = {}
    for q in rewrites:
        original = written[q.source_id]
        assert (q.gold, q.split) == (original.gold, original.split)
        by_source.setdefault(q.source_id, set()).add(q.style)
    assert len(by_source) >= 60 and all(styles == {"terse", "verbose"} for styles in by_source.values())


def test_the_written_set_covers_every_plan_measure(assistant) -> None:
    gold = {g for q in load_set("written") for g in q.gold}
    plan_ids = {c.clause_id for c in assistant.index.clauses if c.doc_id.startswith("xiamen")}
    assert plan_ids <= gold


def test_the_gate_fails_below_a_floor_and_passes_at_it() -> None:
    report = {"sets": {"real": {"methods": {"hybrid": {"recall@5": 0.9, "false_abstention": 0.1}}}}}
    assert gate(report, {"real": {"recall@5": 0.9}}) == []
    assert gate(report, {"real": {"recall@5": 0.95}}) == ["real recall@5 = 0.900, floor 0.950"]
    assert gate(report, {"real": {"false_abstention": 0.08}}) == ["real false_abstention = 0.100, floor 0.080"]
    assert gate(report, {"written": {"recall@5": 0.99}}) == [], "a set the run did not cover is not gated"


def test_floors_are_cross_validated_estimates_minus_a_margin() -> None:
    floors = json.loads((EVAL_DIR / "floors.json").read_text())["extractive"]
    assert "cross-validated" in floors["method"]
    for name in SETS:
        for metric, estimate in floors["estimates"][name].items():
            if metric in floors.get("not_gated", {}).get(name, {}):
                continue
            floor = floors[name][metric]
            lower_is_better = metric in LOWER_IS_BETTER
            assert (floor >= estimate) if lower_is_better else (floor <= estimate), (name, metric)
            assert abs(floor - estimate) <= 0.2, f"{name} {metric}: a margin that wide guards nothing"


def test_cross_validation_scores_held_out_folds_only() -> None:
    """Option o_f is right everywhere except on fold f: on the other folds it looks best, so a fold's
    held-out score exposes it; an in-sample estimate would not."""
    from assistant.evaluation.sets import EvalQuestion
    from assistant.evaluation.tuning import FOLDS

    questions = [EvalQuestion(id=f"q{i}", split="dev", kind="answerable", question="x") for i in range(200)]
    table = {f"o{f}": {q.id: float(fold_of(q) != f) for q in questions} for f in range(FOLDS)}
    table["steady"] = {q.id: 0.5 for q in questions}
    selection = cross_validate(table, questions)
    assert selection.cv_estimate == 0.0
    assert max(weighted_mean(option, questions) for option in table.values()) > 0.7


def test_percentiles() -> None:
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == 95.0


def _report(split: str, recall: float) -> dict:
    return {"split": split, "sets": {"real": {"methods": {"hybrid": {"recall@5": recall, "confident_wrong": 0.05,
                                                                     "latency_p50_ms": 9.0}}}}}


def test_a_drop_against_the_baseline_is_reported_on_the_same_split_only() -> None:
    from assistant.evaluation.report import baseline_of, regressions

    baseline = baseline_of(_report("test", 0.90))
    assert regressions(_report("test", 0.85), baseline) == ["real recall@5: 0.900 → 0.850"]
    assert regressions(_report("test", 0.89), baseline) == []   # within the tolerance
    assert regressions(_report("dev", 0.50), baseline) == []    # another split is not comparable
    worse = _report("test", 0.90)
    worse["sets"]["real"]["methods"]["hybrid"]["confident_wrong"] = 0.10  # lower is better here
    assert regressions(worse, baseline) == ["real confident_wrong: 0.050 → 0.100"]


def test_the_committed_baseline_is_readable_and_an_old_flat_one_says_what_to_do(tmp_path) -> None:  # noqa: ANN001
    from assistant.evaluation.report import load_baseline

    committed = load_baseline(EVAL_DIR / "baseline.json")
    assert committed is not None and committed.split == "test" and set(committed.sets) == set(SETS)
    flat = tmp_path / "baseline.json"
    flat.write_text(json.dumps({"recall@5": 0.9, "mrr@10": 0.8}))
    with pytest.raises(ValueError, match="--update-baseline"):
        load_baseline(flat)
    assert load_baseline(tmp_path / "missing.json") is None
