"""The shared grounding checks: numbers, support, sentence verdicts and ALCE scores."""

from __future__ import annotations

import pytest

from assistant.answering.grounding import (
    DEFAULT_MIN_SUPPORT,
    REASONS_ZH,
    check_answer,
    citation_scores,
    clause_numbers,
    cn_to_number,
    is_supported,
    missing_numbers,
    numbers_in,
    parse_markers,
    split_sentences,
    strip_markers,
    support,
)
from assistant.schema import Citation, DocStatus

# Real clause texts from the corpus (市场主体登记管理条例 第三十二条/第三十三条; 款项支付条例 第九条).
QINGSUAN = (
    "市场主体注销登记前依法应当清算的，清算组应当自成立之日起10日内将清算组成员、清算组负责人名单"
    "通过国家企业信用信息公示系统公告。清算组可以通过国家企业信用信息公示系统发布债权人公告。"
)
JIANYI = (
    "市场主体未发生债权债务或者已将债权债务清偿完结，未发生或者已结清清偿费用、职工工资、社会保险费用、"
    "法定补偿金、应缴纳税款（滞纳金、罚款），并由全体投资人书面承诺对上述情况的真实性承担法律责任的，"
    "可以按照简易程序办理注销登记。市场主体应当将承诺书及注销登记申请通过国家企业信用信息公示系统公示，"
    "公示期为20日。"
)
FUKUAN = (
    "机关、事业单位从中小企业采购货物、工程、服务，应当自货物、工程、服务交付之日起30日内支付款项；"
    "合同另有约定的，从其约定，但付款期限最长不得超过60日。"
)


def cite(n: int, text: str, label: str = "第三十三条", title: str = "市场主体登记管理条例") -> Citation:
    return Citation(
        n=n, clause_id=f"doc#{n}", doc_id="doc", doc_title=title, label=label, text=text,
        status=DocStatus.in_force, status_zh="现行有效",
    )


# -- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("三十三", 33), ("二十", 20), ("十五", 15), ("一百零五", 105), ("二〇二五", 2025),
     ("五十万", 500_000), ("一亿二千万", 120_000_000), ("两", 2), ("30", 30), ("1.5亿", 150_000_000)],
)
def test_cn_to_number(numeral: str, value: int) -> None:
    assert cn_to_number(numeral) == value


def test_cn_to_number_without_a_digit_is_none() -> None:
    assert cn_to_number("千万") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("应当自交付之日起30日内支付款项[1]。", {"30"}),
        ("应当自交付之日起三十日内支付款项。", {"30"}),
        ("处五十万元以上二百万元以下的罚款", {"500000", "2000000"}),
        ("处50万元以上200万元以下的罚款", {"500000", "2000000"}),
        ("持股百分之三十以上", {"30%"}),
        ("持股30%以上", {"30%"}),
        ("持股30％以上", {"30%"}),
        ("经代表三分之二以上表决权的股东通过", {"2/3"}),
        ("本条例自2025年6月1日起施行", {"2025-06-01"}),
        ("本条例自二〇二五年六月一日起施行", {"2025-06-01"}),
        ("每年3月31日前公开", {"03-31"}),
        ("依照第三十三条办理", {"33"}),
        ("10,000元", {"10000"}),
        ("两年内", {"2"}),
        ("千分之五", {"5‰"}),
    ],
)
def test_numbers_in_normalises_forms(text: str, expected: set[str]) -> None:
    assert numbers_in(text) == expected


@pytest.mark.parametrize(
    "text",
    ["统一社会信用代码", "推行“一件事一次办”", "进一步优化营商环境，十分重要", "有下列情形之一的",
     "1. 企业可以网上办理", "（一）依法设立", "一是精简材料", "最多跑一次", "[1][2]"],
)
def test_numbers_in_skips_idioms_enumerators_and_markers(text: str) -> None:
    assert numbers_in(text) == set()


def test_clause_numbers_reads_dates_by_part() -> None:
    found = clause_numbers(["本条例自2025年6月1日起施行。"])
    assert {"2025-06-01", "2025-06", "2025", "06-01"} <= found


def test_missing_numbers_matches_across_numeral_forms() -> None:
    assert missing_numbers("公示期为二十日[1]。", [JIANYI]) == set()
    assert missing_numbers("公示期为30日[1]。", [JIANYI]) == {"30"}
    assert missing_numbers("付款期限最长不得超过六十日", [FUKUAN]) == set()
    assert missing_numbers("逾期处八十八万元罚款", [FUKUAN]) == {"880000"}


def test_a_date_must_match_whole() -> None:
    clause = "本条例自2025年6月1日起施行。"
    assert missing_numbers("自2025年6月1日起施行", [clause]) == set()
    assert missing_numbers("自2025年7月1日起施行", [clause]) == {"2025-07-01"}


# -- markers and sentences --------------------------------------------------------------------


def test_parse_markers_variants() -> None:
    assert parse_markers("甲[1]乙[2,3]丙【4】丁［5］戊[6-8][1]") == [1, 2, 3, 4, 5, 6, 7, 8]
    assert strip_markers("办理[1][2]。") == "办理。"


def test_split_sentences_keeps_trailing_markers_with_their_sentence() -> None:
    assert split_sentences("可以在线办理。[1]公示期为20日[2]。\n1. 其他事项[3]！") == [
        "可以在线办理。[1]", "公示期为20日[2]。", "1. 其他事项[3]！",
    ]


# -- support ----------------------------------------------------------------------------------


def test_support_is_high_for_a_paraphrase_and_low_for_an_added_claim() -> None:
    paraphrase = "未发生债权债务的市场主体，可以按照简易程序办理注销登记。"
    invented = "外地企业还能额外申请专项财政补贴和银行贷款贴息支持。"
    assert support(paraphrase, [JIANYI]) >= DEFAULT_MIN_SUPPORT
    assert support(invented, [JIANYI]) < DEFAULT_MIN_SUPPORT
    assert support(paraphrase, [QINGSUAN]) < support(paraphrase, [JIANYI])


def test_support_of_empty_sentence_is_zero() -> None:
    assert support("。", [JIANYI]) == 0.0
    assert support("", [JIANYI]) == 0.0


def test_is_supported_needs_both_overlap_and_numbers() -> None:
    assert is_supported("市场主体应当将承诺书通过国家企业信用信息公示系统公示，公示期为20日。", [JIANYI])
    assert not is_supported("市场主体应当将承诺书通过国家企业信用信息公示系统公示，公示期为45日。", [JIANYI])


# -- whole answers ----------------------------------------------------------------------------


def test_check_answer_keeps_supported_and_reports_each_removal() -> None:
    citations = [cite(1, QINGSUAN, "第三十二条"), cite(2, JIANYI)]
    answer = (
        "未发生债权债务的市场主体，可以按照简易程序办理注销登记[2]。"
        "承诺书及注销登记申请通过国家企业信用信息公示系统公示，公示期为20日。[2]"
        "公示期为30日[2]。"
        "外地企业还能额外申请专项财政补贴和银行贷款贴息支持[1]。"
        "清算组应当在10日内公告[7]。"
        "清算组可以通过国家企业信用信息公示系统发布债权人公告。"
    )
    result = check_answer(answer, citations)
    assert [s.cited for s in result.kept] == [(2,), (2,)]
    assert [s.reason for s in result.removed] == [
        "invented_number", "low_support", "invalid_citation", "no_citation",
    ]
    assert result.removed[0].missing_numbers == ("30",)
    assert result.invalid_markers == [7]
    assert result.text == (
        "未发生债权债务的市场主体，可以按照简易程序办理注销登记[2]。"
        "承诺书及注销登记申请通过国家企业信用信息公示系统公示，公示期为20日[2]。"
    )
    report = result.report()
    assert report["removed"][0] == {"text": "公示期为30日。", "reason": "invented_number",
                                    "reason_zh": REASONS_ZH["invented_number"]}
    assert "[7]" not in result.text and result.cited == [2]


def test_check_answer_accepts_title_and_label_as_support() -> None:
    citations = [cite(1, FUKUAN, "第九条", "保障中小企业款项支付条例")]
    answer = "根据《保障中小企业款项支付条例》第九条，机关、事业单位应当自货物、工程、服务交付之日起30日内支付款项[1]。"
    assert check_answer(answer, citations).removed == []


def test_check_answer_with_a_mapping_of_texts() -> None:
    result = check_answer("付款期限最长不得超过60日[1]。", {1: FUKUAN})
    assert len(result.kept) == 1 and result.kept_share == 1.0


def test_a_marker_in_range_on_the_wrong_clause_is_not_enough() -> None:
    result = check_answer("公示期为20日[1]。", [cite(1, QINGSUAN), cite(2, JIANYI)])
    assert result.kept == [] and result.removed[0].reason == "invented_number"


# -- ALCE ------------------------------------------------------------------------------------


def test_citation_scores_recall_and_precision() -> None:
    citations = [cite(1, QINGSUAN), cite(2, JIANYI)]
    # Sentence 1 is supported by [2] alone; [1] is irrelevant. Sentence 2 is unsupported.
    answer = "市场主体可以按照简易程序办理注销登记[1][2]。外地企业还能申请专项财政补贴[2]。"
    scores = citation_scores(answer, citations)
    assert scores.sentences == 2 and scores.citations == 3
    assert scores.recall == pytest.approx(0.5)
    assert scores.precision == pytest.approx(1 / 3)


def test_citation_scores_perfect_answer() -> None:
    answer = "清算组应当自成立之日起10日内公告[1]。公示期为20日[2]。"
    scores = citation_scores(answer, [cite(1, QINGSUAN), cite(2, JIANYI)])
    assert (scores.recall, scores.precision) == (1.0, 1.0)


def test_citation_scores_empty_answer() -> None:
    scores = citation_scores("", [cite(1, QINGSUAN)])
    assert (scores.sentences, scores.citations, scores.recall, scores.precision) == (0, 0, 0.0, 0.0)
