"""The composer's rules on hand-made clauses: dangling references, one marker per list, number questions."""

from __future__ import annotations

import pytest

from assistant.answering.compose import (
    ASKS_FOR_NUMBER,
    DANGLING,
    RankedClause,
    SpanWeights,
    compose,
    select_spans,
)
from assistant.schema import Clause


def clause(text: str, clause_id: str = "doc#1") -> Clause:
    paragraphs = tuple(text.split("\n\n"))
    return Clause(clause_id=clause_id, doc_id="doc", label="第一条", text=text.replace("\n\n", "\n"),
                  paragraphs=paragraphs)


@pytest.mark.parametrize("text", ["依照前款规定，登记机关应当公告。", "有前款第二项情形的，不予受理。",
                                  "上述材料应当真实。", "前述期限届满的，可以申请。",
                                  "个体工商户申请注销登记的，无需提交第二项、第三项材料；",
                                  "市场主体属于外商投资企业的，还应当提交上述文件的中文译本。"])
def test_dangling_spans_are_recognised(text: str) -> None:
    assert DANGLING.search(text)


@pytest.mark.parametrize("text", ["市场主体应当依法办理登记。", "公示期为20日。", "登记机关应当在3个工作日内作出决定。",
                                  ("申请人提交的材料齐全、符合法定形式的，登记机关应当当场予以登记，并发给营业执照；"
                                   "不能当场登记的，应当在3个工作日内予以登记，其中前款所称情形除外。")])
def test_standalone_spans_are_not_dangling(text: str) -> None:
    assert not DANGLING.search(text)


def test_a_dangling_span_brings_its_context_or_is_not_quoted() -> None:
    c = clause("市场主体应当在公示期满后申请注销登记。\n\n依照前款规定申请注销登记的，登记机关应当当场办结。")
    words = {"当场办结": 3.0}
    spans = select_spans(words, False, [RankedClause(c, 1.0)], max_sentences=3,
                         weights=SpanWeights(dense=0, prior=0, number=0, keep_ratio=0.9))
    texts = [s.text for s in spans]
    assert texts[-1].startswith("依照前款") and texts[0].startswith("市场主体应当在公示期满后")


def test_a_span_leaning_on_a_leaning_span_gets_the_span_both_lean_on() -> None:
    c = clause("申请办理注销登记，应当提交下列材料：\n（一）申请书；\n（二）清算报告；\n（三）清税证明。\n\n"
               "除前款规定外，破产管理人还应当提交人民法院指定证明。\n\n"
               "个体工商户申请注销登记的，无需提交第二项、第三项材料。")
    spans = select_spans({"个体工商户": 3.0, "注销": 1.0}, False, [RankedClause(c, 1.0)], max_sentences=3,
                         weights=SpanWeights(dense=0, prior=0, number=0, keep_ratio=0.9))
    texts = [s.text for s in spans]
    assert texts[0].startswith("申请办理注销登记，应当提交下列材料") and texts[-1].startswith("个体工商户申请注销")
    assert not any(t.startswith("除前款") for t in texts)


def test_a_list_of_items_is_one_block_with_one_marker() -> None:
    c = clause("有下列情形之一的，不适用简易注销：\n（一）涉及国家规定实施准入特别管理措施；\n（二）正在被立案调查。")
    spans = select_spans({"简易注销": 2.0}, False, [RankedClause(c, 1.0)], max_sentences=3)
    text = compose(spans, {0: 1})
    assert text.count("[1]") == 1 and text.endswith("[1]") and "\n（二）" in text


def test_a_lower_ranked_clause_sharing_no_word_is_not_cited() -> None:
    top = clause("个体工商户可以按照简易程序办理注销登记。", "doc#1")
    unrelated = clause("国家支持发展第五航权航线。", "doc#2")
    spans = select_spans({"个体工商户": 2.0, "注销": 1.0}, False,
                         [RankedClause(top, 1.0), RankedClause(unrelated, 0.9)], max_sentences=3,
                         weights=SpanWeights(keep_ratio=0.0))
    assert {s.rank for s in spans} == {0}


@pytest.mark.parametrize("question", ["简易注销要公示多久", "罚款上限是多少", "几个工作日办结"])
def test_number_questions_are_recognised(question: str) -> None:
    assert ASKS_FOR_NUMBER.search(question)


@pytest.mark.parametrize("question", ["营业执照丢了怎么办", "简易注销的条件", "谁负责受理投诉"])
def test_other_questions_are_not_number_questions(question: str) -> None:
    assert not ASKS_FOR_NUMBER.search(question)


def test_the_clause_retrieval_put_first_is_quoted_even_when_a_lower_one_repeats_more_words(assistant) -> None:  # noqa: ANN001
    """The ranker may put first a clause that uses other words (外商投资 for 外资); the composer's prior
    follows that order, so the first clause is quoted even when the second repeats the question's words."""
    definition = clause("本法所称外商投资，是指外国投资者直接或者间接在中国境内进行的投资活动。", "doc#2")
    repeats = clause("外资企业法同时废止，外资企业可以继续保留原组织形式。", "doc#42")
    pipeline = assistant.pipeline
    retrieval = assistant.searcher.retrieve("如何认定外资投资", k=3)
    priors = [r.score for r in pipeline.ranked_clauses(retrieval, retrieval.hits)]
    assert priors == [1.0, 0.5, 1 / 3]
    spans = select_spans({"外资": 1.0, "认定": 1.0, "投资": 0.5}, False,
                         [RankedClause(definition, priors[0]), RankedClause(repeats, priors[1])], max_sentences=3,
                         weights=SpanWeights(dense=0.0, prior=1.0, number=0.0, keep_ratio=0.6))
    assert 0 in {s.rank for s in spans}
