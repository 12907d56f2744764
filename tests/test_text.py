"""Numerals, sentences and tokens: the small pieces everything else leans on."""

from __future__ import annotations

import pytest

from assistant.numerals import cn_to_int, int_to_cn
from assistant.text import (
    clean_docx_artefacts,
    content_words,
    split_sentences,
    tokenize,
)


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("三十三", 33), ("33", 33), ("十", 10), ("十五", 15), ("一百零五", 105), ("二百四十", 240), ("二百六十六", 266)],
)
def test_chinese_and_arabic_numerals_meet(numeral: str, value: int) -> None:
    assert cn_to_int(numeral) == value


@pytest.mark.parametrize("value", [1, 10, 11, 20, 33, 100, 101, 110, 119, 240, 266])
def test_article_numbers_round_trip(value: int) -> None:
    assert cn_to_int(int_to_cn(value)) == value


def test_not_a_numeral_is_refused() -> None:
    with pytest.raises(ValueError):
        cn_to_int("三x")


def test_sentences_end_at_chinese_stops_and_line_breaks() -> None:
    assert split_sentences("公示期为20日。在公示期内无异议的，可以申请；个体户\n无需公示！") == [
        "公示期为20日。", "在公示期内无异议的，可以申请；", "个体户", "无需公示！",
    ]


def test_docx_bookmarks_and_zero_width_characters_are_removed() -> None:
    assert clean_docx_artefacts("[bookmark: _Toc797614610][bookmark: _Toc14429]1.优化\u200b市场") == "1.优化市场"


def test_tokens_drop_question_scaffolding_but_keep_topic_words() -> None:
    tokens = tokenize("公司想简易注销，需要公示多久？")
    assert {"简易", "注销", "公示"} <= set(tokens)
    assert not {"想", "需要", "多久", "，"} & set(tokens)


def test_content_words_are_precise_mode_words() -> None:
    assert content_words("我们公司股权被冻结了，还能申请简易注销吗") >= {"股权", "冻结", "申请"}
    assert "多久" not in content_words("要公示多久")


@pytest.mark.parametrize(("question", "added"), [("个体户怎么注销", "个体工商户"), ("外企投诉找谁", "外商投资企业"),
                                                 ("年报逾期怎么办", "年度报告"), ("招投标要公示几天", "招标投标")])
def test_colloquial_words_bring_their_formal_terms(question: str, added: str) -> None:
    from assistant.text import expand_colloquial

    assert added in expand_colloquial(question)


@pytest.mark.parametrize("question", ["营业执照丢了怎么办", "个体工商户怎么注销", "政府采购的质疑期限"])
def test_questions_in_formal_words_are_left_alone(question: str) -> None:
    from assistant.text import expand_colloquial

    assert expand_colloquial(question) == question
