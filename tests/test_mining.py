"""Training pairs are labelled by the statute TEXT a page quotes, never by the article number it cites."""

from __future__ import annotations

import pytest

from assistant.evaluation.training_sets import eval_holdouts, load_mined, load_off_domain
from assistant.learning.mining import ClauseMatcher, MinedRecord, RawDomainRecord, domain_questions, mine_pairs

pytest.importorskip("opencc")

# 公司法 2018 第七十一条, quoted with its old number: the same rule is 2023 第八十四条.
OLD_TEXT = ("有限责任公司的股东之间可以相互转让其全部或者部分股权。股东向股东以外的人转让股权，应当经其他股东过半数同意。"
            "经股东同意转让的股权，在同等条件下，其他股东有优先购买权。")


@pytest.fixture(scope="module")
def matcher(assistant) -> ClauseMatcher:  # noqa: ANN001
    return ClauseMatcher(assistant.index.clauses, assistant.index.documents)


def record(quote: str, law: str | None = "公司法", question: str = "股东可以把股权转给外人吗？",
           url: str | None = "https://example.org/a") -> MinedRecord:
    return MinedRecord(url=url, questions=[question], quotes=[quote], law=law, article="第七十一条")


def test_an_old_numbered_quote_is_labelled_by_its_text(matcher: ClauseMatcher) -> None:
    pairs = mine_pairs([record(OLD_TEXT)], matcher, set(), set())
    assert {p.clause_id for p in pairs} == {"gongsi-fa#84"}
    pair = pairs[0]
    assert pair.question == "股东可以把股权转给外人吗？" and pair.site == "example.org"
    assert pair.span in matcher.clauses[[c.clause_id for c in matcher.clauses].index("gongsi-fa#84")].text


def test_numbers_and_traditional_characters_do_not_hide_a_match(matcher: ClauseMatcher) -> None:
    quote = ("公司經營管理發生嚴重困難，繼續存續會使股東利益受到重大損失，通過其他途徑不能解決的，"
             "持有公司10%以上表決權的股東，可以請求人民法院解散公司。")  # the law says 百分之十
    pairs = mine_pairs([record(quote, question="小股東能要求解散公司嗎？")], matcher, set(), set())
    assert {p.clause_id for p in pairs} == {"gongsi-fa#231"}
    assert pairs[0].question == "小股东能要求解散公司吗？"  # stored in the script users write


def test_a_quote_two_articles_share_labels_neither(matcher: ClauseMatcher) -> None:
    """清算 (第二百三十五条) and 减资 (第二百二十四条) notices differ in a word and a number: no margin."""
    quote = "应当自作出决议之日起十日内通知债权人，并于三十日内在报纸上或者国家企业信用信息公示系统公告。"
    assert mine_pairs([record(quote)], matcher, set(), set()) == []


@pytest.mark.parametrize("quote", [
    "依法处理。",                          # too short to say which article
    "本法自公布之日起施行。",                # in many laws: no margin
    "公司应当依法纳税并接受社会监督和公众评议。",  # a paraphrase of nothing in particular
])
def test_no_label_without_a_clear_match(matcher: ClauseMatcher, quote: str) -> None:
    assert mine_pairs([record(quote, law=None)], matcher, set(), set()) == []


def test_a_page_that_names_another_law_than_its_words_is_dropped(matcher: ClauseMatcher) -> None:
    assert mine_pairs([record(OLD_TEXT, law="企业破产法")], matcher, set(), set()) == []


def test_eval_pages_and_questions_never_become_training_data(matcher: ClauseMatcher) -> None:
    urls, questions = eval_holdouts()
    some_url = sorted(urls)[0]
    assert mine_pairs([record(OLD_TEXT, url=some_url)], matcher, urls, questions) == []
    from assistant.evaluation.sets import load_set

    eval_question = load_set("real", "dev")[0].question
    assert mine_pairs([record(OLD_TEXT, question=eval_question)], matcher, urls, questions) == []
    kept = domain_questions([RawDomainRecord(url=some_url, question="明天会下雨吗", kind="off_domain"),
                             RawDomainRecord(url=None, question="明天會下雨嗎", kind="off_domain")], urls, questions)
    assert [q.question for q in kept] == ["明天会下雨吗"]


def test_the_committed_training_sets_hold_no_eval_page_or_question() -> None:
    urls, questions = eval_holdouts()
    from assistant.evaluation.training_sets import MINED_PAIRS, OFF_DOMAIN, MinedPair, normalise

    raw = [MinedPair.model_validate_json(line) for line in MINED_PAIRS.read_text("utf-8").splitlines() if line]
    assert len(raw) >= 400 and raw == load_mined()  # nothing had to be filtered out on reading
    assert not {p.source for p in raw} & urls and not {normalise(p.question) for p in raw} & questions
    off = load_off_domain()
    assert off and len(off) == len(OFF_DOMAIN.read_text("utf-8").splitlines())
    assert {r.kind for r in off} == {"off_domain", "near_domain"}
