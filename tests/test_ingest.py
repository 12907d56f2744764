"""The ingestion heuristics, each with cases where it must fire and where it must not."""

from __future__ import annotations

from datetime import date

import pytest

from assistant.errors import IngestError
from assistant.knowledge.ingest import ingest
from assistant.knowledge.ingest.cleanup import (
    PAGE_NUMBER,
    join_wrapped_lines,
    map_radicals,
    normalise_lines,
    strip_page_furniture,
)
from assistant.knowledge.ingest.metadata import (
    base_title,
    find_category,
    find_doc_number,
    find_effective,
    find_signature,
    find_valid_until,
    structure_kind,
)
from assistant.knowledge.ingest.readers import extract_text


def test_radicals_become_the_ideographs_and_nothing_else_changes() -> None:
    assert map_radicals("中华⼈⺠共和国⻔槛⼀⼗") == "中华人民共和国门槛一十"
    text = "第一条（一）１２３，ＡＢＣ；“引号”"
    assert map_radicals(text) == text  # full-width forms stay (NFKC would have changed them)


@pytest.mark.parametrize("line", ["- 3 -", "— 12 —", "第 3 页", "第3页 共9页", "3 / 9", "17"])
def test_page_numbers_are_recognised(line: str) -> None:
    assert PAGE_NUMBER.match(line)


@pytest.mark.parametrize("line", ["第三条 应当在3日内办结。", "2024年3月1日", "（三）第3项", "300万元"])
def test_content_is_not_a_page_number(line: str) -> None:
    assert not PAGE_NUMBER.match(line)


def test_running_headers_go_but_a_line_repeated_in_the_body_stays() -> None:
    pages = [["厦门市人民政府文件", f"第{n}条 内容{n}。", "各区应当加强监督。", f"— {n} —"] for n in range(1, 4)]
    kept = strip_page_furniture(pages)
    assert "厦门市人民政府文件" not in kept and not any("—" in line for line in kept)
    assert kept.count("各区应当加强监督。") == 0  # at the bottom edge of every page: furniture
    middle = [["标题", f"第{n}条 内容{n}。", "各区应当加强监督。", f"第{n}条之二 又一段。", "页脚"] for n in range(1, 4)]
    assert strip_page_furniture(middle).count("各区应当加强监督。") == 3  # not at an edge: content


def test_wrapped_lines_join_and_paragraph_ends_do_not() -> None:
    lines = [
        "第一条 为了优化营商环境，持续激发市场活力和社会创造力，保护各类市场主",
        "体的合法权益，制定本条例。",
        "第二条 本条例所称营商环境，是指企业等市场主体在市场经济活动中所涉",
        "及的体制机制性因素和条件。",
        "短标题",
        "第三条 下一条。",
    ]
    assert join_wrapped_lines(lines) == [
        "第一条 为了优化营商环境，持续激发市场活力和社会创造力，保护各类市场主体的合法权益，制定本条例。",
        "第二条 本条例所称营商环境，是指企业等市场主体在市场经济活动中所涉及的体制机制性因素和条件。",
        "短标题",
        "第三条 下一条。",
    ]


def test_a_full_line_before_a_structure_start_or_a_doc_number_is_not_joined() -> None:
    lines = ["国务院关于实施《中华人民共和国公司法》注册资本登记管理制度的规定", "中华人民共和国国务院令第784号",
             "厦门市人民政府办公厅关于进一步优化营商环境若干措施的通知文件", "（一）推进登记便利化"]
    assert join_wrapped_lines(lines) == lines


def test_an_article_number_gets_its_space() -> None:
    assert normalise_lines(["第十二条应当公示。", "第十二条之一\u3000内容", "第十二条 已有空格"]) == [
        "第十二条　应当公示。", "第十二条之一\u3000内容", "第十二条 已有空格"]


@pytest.mark.parametrize(("text", "number"), [
    ("厦府〔2023〕12号", "厦府〔2023〕12号"),
    ("厦府办规[2024]5号", "厦府办规〔2024〕5号"),
    ("国办发（2019）39号", "国办发〔2019〕39号"),
    ("中华人民共和国国务院令\n第746号".replace("\n", ""), "中华人民共和国国务院令第746号"),
    ("国家市场监督管理总局令第52号", "国家市场监督管理总局令第52号"),
])
def test_doc_numbers_are_found_and_brackets_normalised(text: str, number: str) -> None:
    assert find_doc_number(f"标题\n{text}\n正文") == number


@pytest.mark.parametrize("text", ["按照第三条规定办理", "自2024年起实施", "命令第一号文件不在此列"])
def test_text_without_a_doc_number(text: str) -> None:
    assert find_doc_number(text) is None


def test_dates_and_validity() -> None:
    signed = date(2024, 2, 1)
    assert find_effective("本办法自2024年3月1日起施行。", signed) == date(2024, 3, 1)
    assert find_effective("本规定自印发之日起实施。", signed) == signed
    assert find_effective("2024年3月1日召开会议。", signed) is None
    assert find_valid_until("有效期至2028年12月31日。", None) == date(2028, 12, 31)
    assert find_valid_until("有效期五年。", date(2024, 3, 1)) == date(2029, 2, 28)
    assert find_valid_until("有效期五年。", None) is None  # no start: not guessed
    assert find_valid_until("本办法长期有效。", date(2024, 3, 1)) is None


def test_the_signature_block_gives_issuer_and_date() -> None:
    lines = ["第七条 本办法自2024年3月1日起施行。", "厦门市人民政府办公厅", "2024年2月1日", "（此件主动公开）"]
    assert find_signature(lines) == ("厦门市人民政府办公厅", date(2024, 2, 1), 3)
    assert find_signature(["第七条 本办法自2024年3月1日起施行。"]) == (None, None, 0)


@pytest.mark.parametrize(("title", "number", "category"), [
    ("中华人民共和国公司法", None, "法律"),
    ("优化营商环境条例", "中华人民共和国国务院令第722号", "法规"),
    ("市场主体登记管理条例实施细则", "国家市场监督管理总局令第52号", "规章"),
    ("厦门市中小企业首贷续贷贴息办法", "厦府办规〔2024〕5号", "规范性文件"),
    ("厦门市优化营商环境行动方案", None, "工作方案"),
    ("厦门市经济特区优化营商环境条例", "厦门市人民代表大会常务委员会公告〔2024〕3号", "法规"),
])
def test_categories(title: str, number: str | None, category: str) -> None:
    assert find_category(title, number) == category


def test_structure_kind_needs_numbered_articles_from_the_first() -> None:
    assert structure_kind(["第一条 甲。", "第二条 乙。"]) == "regulation"
    assert structure_kind(["一、总体要求", "（一）目标", "1. 措施。"]) == "plan"
    assert structure_kind(["一、总体要求", "第三条规定的情形除外。"]) == "plan"  # a cross-reference


def test_base_title_drops_edition_marks_only() -> None:
    assert base_title("保障中小企业款项支付条例（2020年版）") == base_title("保障中小企业款项支付条例（2025年修订）")
    assert base_title("厦门市行动方案（征求意见稿）") == "厦门市行动方案"
    assert base_title("关于实施《公司法》注册资本登记管理制度的规定") == "关于实施《公司法》注册资本登记管理制度的规定"


SAVED_PAGE = """<html><head><meta charset="gb2312"><title>厦门市中小企业首贷续贷贴息办法_政策文件_厦门市人民政府</title></head>
<body><div class="nav"><a href="/">首页</a> &gt; <a href="/zwgk">政务公开</a> &gt; 政策文件</div>
<ul class="menu"><li>机构设置</li><li>政务服务</li><li>互动交流</li></ul>
<div class="article"><h1>厦门市中小企业首贷续贷贴息办法</h1><p>厦府办规〔2024〕5号</p>
<p>第一条 为缓解中小企业融资难融资贵问题，支持中小企业首次贷款和续贷，制定本办法。</p>
<p>第二条 本办法所称首贷，是指在本市登记注册的中小企业首次从银行业金融机构获得的流动资金贷款。</p>
<p>第三条 对中小企业首贷，按照贷款实际发生额给予年化百分之一的贴息，单户企业年度贴息最高五十万元。</p>
<p>第四条 本办法自2024年3月1日起施行，有效期五年。</p></div>
<div class="footer">主办：厦门市人民政府办公厅 闽ICP备05004321号 网站标识码3502000001</div></body></html>"""


def test_a_saved_government_page_keeps_the_policy_and_drops_the_navigation() -> None:
    document = ingest("page.html", SAVED_PAGE.encode("gb18030"), "page", today=date(2026, 1, 1))
    assert document.meta.title == "厦门市中小企业首贷续贷贴息办法"
    assert document.meta.doc_number == "厦府办规〔2024〕5号" and document.meta.valid_until == "2029-02-28"
    assert [c.label for c in document.clauses] == ["第一条", "第二条", "第三条", "第四条"]
    text = "\n".join(document.head + document.body)
    assert "政务公开" not in text and "闽ICP备" not in text and "机构设置" not in text


def test_an_unsupported_type_says_what_is_supported() -> None:
    with pytest.raises(IngestError, match=r"\.docx、\.pdf、\.html 或 \.txt"):
        extract_text("policy.xlsx", b"PK\x03\x04")


def test_the_title_stops_at_the_doc_number_line() -> None:
    lines = ["厦门经济特区营商环境促进条例", "厦门市人民代表大会常务委员会公告〔2026〕1号",
             "第一条 为了促进营商环境，制定本条例。", "第二条 本条例自2026年3月1日起施行。"]
    document = ingest("x.txt", "\n".join(lines).encode(), "x")
    assert document.meta.title == "厦门经济特区营商环境促进条例"
    assert document.meta.doc_number == "厦门市人民代表大会常务委员会公告〔2026〕1号"
    assert document.meta.category == "法规"


NAV_PAGE = """<html><head><meta charset="utf-8"><title>厦门市集成电路设计企业流片补贴实施细则_政策文件_厦门市人民政府</title></head>
<body><div class="article"><p>首页 | 政务公开 | 政策文件 | 办事服务 | 互动交流</p>
<p>厦门市集成电路设计企业流片补贴实施细则</p>
<p>第一条 为支持集成电路设计企业开展工程流片，制定本细则。</p>
<p>第二条 对在本市注册的集成电路设计企业，按照流片费用的百分之二十给予补贴。</p>
<p>第三条 本细则自2025年1月1日起施行。</p></div></body></html>"""


def test_a_navigation_bar_inside_the_page_text_never_becomes_part_of_the_title() -> None:
    """The site's menu line came through the extractor and was glued in front of the real title; the
    page's <title> and its heading both give the real one."""
    document = ingest("page.html", NAV_PAGE.encode("utf-8"), "page", today=date(2026, 1, 1))
    assert document.meta.title == "厦门市集成电路设计企业流片补贴实施细则"
    assert "首页" not in document.meta.title and "首页" not in (document.meta.short_names or ("",))[0]
    assert "政务公开" not in "\n".join(document.head + document.body)


@pytest.mark.parametrize(("line", "menu"), [
    ("首页 | 政务公开 | 政策文件 | 办事服务 | 互动交流", True),
    ("首页 > 政务公开 > 政策文件", True),
    ("厦门市集成电路设计企业流片补贴实施细则", False),
    ("第二条 对企业、个体工商户/农民专业合作社，按照以下标准：", False),  # a separator, long items
    ("（一）甲 / 乙", False),                                               # two items are not a menu
])
def test_menu_lines_are_recognised_by_their_short_separated_items(line: str, menu: bool) -> None:
    from assistant.knowledge.ingest import is_menu_line

    assert is_menu_line(line) is menu
