"""What a question asks for and which clauses answer it: every pattern on its examples, the clause kinds
on real clauses, and the ranker reading the pairing."""

from __future__ import annotations

import pytest

from assistant.answering.kinds import CONSEQUENCE, DEFINITION, is_defining, is_liability
from assistant.answering.ranking import FEATURES

KINDS = (CONSEQUENCE, DEFINITION)


@pytest.mark.parametrize(("kind", "question"), [(k, q) for k in KINDS for q in k.fires_on],
                         ids=lambda v: getattr(v, "name", v))
def test_kind_is_told_by_its_wording(kind, question: str) -> None:  # noqa: ANN001
    assert kind.fires(question)


@pytest.mark.parametrize(("kind", "question"), [(k, q) for k in KINDS for q in k.passes],
                         ids=lambda v: getattr(v, "name", v))
def test_kind_does_not_fire_on_other_questions(kind, question: str) -> None:  # noqa: ANN001
    assert not kind.fires(question)


def test_every_kind_has_examples_on_both_sides_and_a_reason() -> None:
    for kind in KINDS:
        assert len(kind.fires_on) >= 5 and len(kind.passes) >= 5 and kind.why


@pytest.mark.parametrize(("clause_id", "liability", "defining"), [
    ("xingzheng-chufa-fa#76", True, False),       # 第七章 法律责任
    ("shichang-zhuti-dengji-guanli-tiaoli#44", True, False),  # 第六章 法律责任: 虚假登记的罚款
    ("waishang-touzi-fa#2", False, True),         # 本法所称外商投资，是指…
    ("xingzheng-chufa-fa#2", False, True),        # 总则: 行政处罚是指…
    ("shichang-zhuti-dengji-guanli-tiaoli#37", False, False),  # 营业执照遗失补领: neither
])
def test_clause_kinds_on_real_clauses(assistant, clause_id: str, liability: bool, defining: bool) -> None:  # noqa: ANN001
    clause = assistant.index.clauses[assistant.index.by_id[clause_id]]
    assert (is_liability(clause), is_defining(clause)) == (liability, defining)


def test_the_ranker_reads_the_pairing_only_when_the_question_asks(assistant) -> None:  # noqa: ANN001
    searcher = assistant.searcher
    liability_clause = assistant.index.by_id["shichang-zhuti-dengji-guanli-tiaoli#44"]
    columns = [FEATURES.index(n) for n in ("liability_asked", "liability_unasked", "definition_asked")]
    rows = {}
    for question in ("提交虚假材料取得登记会被罚多少", "提交虚假材料取得登记怎么办理"):
        raw = searcher.raw_scores(question)
        fused = searcher.fuse(raw, "hybrid")
        pool = [liability_clause]
        rows[question] = searcher.features(question, raw, fused, __import__("numpy").array(pool))[0, columns]
    assert list(rows["提交虚假材料取得登记会被罚多少"]) == [1.0, 0.0, 0.0]
    assert list(rows["提交虚假材料取得登记怎么办理"]) == [0.0, 1.0, 0.0]
