"""How the chat page renders an answer (assistant.serving.webui), without a browser: quoted spans one
per line, a 项 list with one marker, the quoted sentence marked in its clause with its 款/项, the 工单
reply text, and corpus or user text never becoming markup. tests/test_ui_browser.py checks the same
things in a real page."""

from __future__ import annotations

import re

from assistant.answering.compose import LOW_CONFIDENCE_INTRO, LOW_CONFIDENCE_REFERRAL
from assistant.schema import Answer, Citation, Confidence, DocStatus, DocumentInfo
from assistant.serving.ui_render import (
    answer_blocks,
    answer_html,
    basis_line,
    documents_html,
    plain_text,
    quoted_places,
    quoted_ranges,
    reply_text,
    short_title,
)
from assistant.serving.webui import history_turns

ART_240 = ("公司在存续期间未产生债务，或者已清偿全部债务的，经全体股东承诺，可以按照规定通过简易程序注销公司登记。\n"
           "通过简易程序注销公司登记，应当通过国家企业信用信息公示系统予以公告，公告期限不少于二十日。公告期限届满后，"
           "未有异议的，公司可以在二十日内向公司登记机关申请注销公司登记。\n"
           "公司通过简易程序注销公司登记，股东对本条第一款规定的内容承诺不实的，应当对注销登记前的债务承担连带责任。")
ART_48 = ("有下列情形之一的，市场主体不得申请办理简易注销登记：\n（一）在经营异常名录中的；\n（二）存在股权被冻结的；\n"
          "（三）正在被立案调查的。")


def citation(n: int, doc_id: str, title: str, label: str, text: str, doc_number: str | None = "令第1号",
             status: DocStatus = DocStatus.in_force) -> Citation:
    return Citation(n=n, clause_id=f"{doc_id}#{n}", doc_id=doc_id, doc_title=title, label=label, text=text,
                    doc_number=doc_number, effective="2024-07-01", status=status,
                    status_zh={"in_force": "现行有效", "draft": "征求意见稿", "superseded": "已被修订/取代"}[status.value])


GONGSI = citation(1, "gongsi-fa", "中华人民共和国公司法", "第二百四十条", ART_240, "主席令第十五号")
XIZE = citation(2, "xize", "中华人民共和国市场主体登记管理条例实施细则", "第四十八条", ART_48, "总局令第52号")
ANSWER_TEXT = (
    "公司在存续期间未产生债务，或者已清偿全部债务的，经全体股东承诺，可以按照规定通过简易程序注销公司登记。[1]\n"
    "通过简易程序注销公司登记，应当通过国家企业信用信息公示系统予以公告，公告期限不少于二十日。[1]\n"
    "有下列情形之一的，市场主体不得申请办理简易注销登记：\n（一）在经营异常名录中的；\n（二）存在股权被冻结的；\n"
    "（三）正在被立案调查的。[2]"
)


def answer(**overrides: object) -> Answer:
    fields: dict[str, object] = {"question": "简易注销怎么办理？", "answer": ANSWER_TEXT, "abstained": False,
                                 "citations": [GONGSI, XIZE]}
    fields.update(overrides)
    return Answer(**fields)


def test_each_quoted_span_is_a_block_and_a_list_of_items_keeps_one_marker() -> None:
    blocks = answer_blocks(ANSWER_TEXT)
    assert [b.markers for b in blocks] == [[1], [1], [2]]
    assert len(blocks[2].lines) == 4 and blocks[2].quoted.startswith("有下列情形之一的")
    html = answer_html(answer(notices=["第一行\n\n第二行"]), "abc123")
    assert "\n" not in html  # a blank line would end the HTML block in Gradio's Markdown
    assert html.count('class="pq-cite"') == 3
    items = re.search(r"<ul>(.*?)</ul>", html).group(1)
    assert items.count("<li>") == 3 and items.count("pq-cite") == 1


def test_unmarked_lines_around_quotes_stay_plain() -> None:
    text = f"{LOW_CONFIDENCE_INTRO}\n句子一。[1]\n{LOW_CONFIDENCE_REFERRAL}"
    blocks = answer_blocks(text)
    assert [b.markers for b in blocks] == [[], [1], []]


def test_generated_sentences_run_together_are_split_after_their_markers() -> None:
    blocks = answer_blocks("可以简易注销。[1]公告期为二十日[1]。还需公示[2]（见条文）")
    assert [b.lines for b in blocks] == [("可以简易注销。[1]",), ("公告期为二十日[1]。",), ("还需公示[2]（见条文）",)]


def test_summary_names_each_document_once_with_its_articles() -> None:
    other = citation(3, "gongsi-fa", "中华人民共和国公司法", "第二百四十一条", "……")
    short = {"xize": short_title(XIZE.doc_title, ("市场主体登记管理条例实施细则", "登记条例实施细则", "实施细则"))}
    assert basis_line([GONGSI, XIZE, other], short) == "《公司法》第二百四十条、第二百四十一条；《登记条例实施细则》第四十八条"
    assert "依据：" in answer_html(answer(), "x", short)


def test_the_quoted_sentence_is_marked_in_its_clause_with_its_paragraph() -> None:
    quote = "通过简易程序注销公司登记，应当通过国家企业信用信息公示系统予以公告，公告期限不少于二十日。"
    ranges = quoted_ranges(ART_240, [quote])
    assert [ART_240[a:b] for a, b in ranges] == [quote]
    assert quoted_places(GONGSI, ranges) == "第二款"
    html = answer_html(answer(), "x")
    assert f"<mark>{quote}</mark>" in html
    assert "引用位置：第一款、第二款" in html
    assert "公告期限届满后" in html and "<mark>公告期限届满后" not in html  # the rest of the 款 is not marked


def test_an_item_is_placed_by_its_paragraph_and_item_number() -> None:
    ranges = quoted_ranges(ART_48, ["（二）存在股权被冻结的；"])
    assert quoted_places(XIZE, ranges) == "第一款第二项"


def test_a_sentence_not_quoted_verbatim_is_left_unmarked() -> None:
    assert quoted_ranges(ART_240, ["公司可以自行决定注销。"]) == []


def test_reply_text_is_the_answer_then_basis_lines_with_document_number() -> None:
    draft = citation(3, "plan", "某行动方案（征求意见稿）", "优化市场准入退出", "……", None, DocStatus.draft)
    text = reply_text(answer(citations=[GONGSI, XIZE, draft], notices=["注意：所引为征求意见稿。"]))
    head, _, basis = text.partition("\n\n依据：\n")
    assert head.startswith("公司在存续期间") and "（三）正在被立案调查的。[2]" in head
    assert "注意：所引为征求意见稿。" in head and "注：注意" not in head
    assert basis.splitlines() == ["[1]《中华人民共和国公司法》第二百四十条（文号：主席令第十五号）",
                                  "[2]《中华人民共和国市场主体登记管理条例实施细则》第四十八条（文号：总局令第52号）",
                                  "[3]《某行动方案（征求意见稿）》优化市场准入退出（征求意见稿）"]


def test_notice_gets_one_prefix() -> None:
    html = answer_html(answer(notices=["注意：所引为征求意见稿。", "所引条文没有规定具体数字。"]), "x")
    assert "注：注意" not in html
    assert "注意：所引为征求意见稿。" in html and "注：所引条文没有规定具体数字。" in html


def test_low_confidence_has_its_own_style_and_badge() -> None:
    html = answer_html(answer(confidence=Confidence.low), "x")
    assert 'class="pq-answer pq-low' in html and "低置信度" in html and "可能相关：" in html
    assert "依据：" not in html.split("pq-copy-reply")[0]
    assert "pq-low" not in answer_html(answer(), "x")


def test_corpus_and_question_text_never_becomes_markup() -> None:
    evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    bad = citation(1, "evil", f"恶意{evil}", f"第一条{evil}", f"条文{evil}。", f'"{evil}')
    html = answer_html(answer(answer=f"条文{evil}。[1]", citations=[bad], notices=[evil]), 'id"><b>')
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html
    table = documents_html([DocumentInfo(doc_id="e", title=evil, kind="plan", status=DocStatus.in_force,
                                         status_zh="现行有效", clause_count=1)])
    assert "<script" not in table and "<img" not in table


def test_follow_up_context_is_the_answer_text_not_the_rendered_sources() -> None:
    rendered = answer_html(answer(), "x")
    text = plain_text(rendered)
    assert text.startswith("依据：") and "公司在存续期间" in text
    assert "公司通过简易程序注销公司登记，股东对本条" not in text  # an unquoted part of a source
    turns = history_turns([{"role": "user", "content": "简易注销怎么办理？"},
                           {"role": "assistant", "content": rendered, "metadata": {"id": "x"}}])
    assert [t.role for t in turns] == ["user", "assistant"] and "<" not in turns[1].content


def test_plan_measures_are_quoted_headings_in_the_summary() -> None:
    measure = citation(1, "plan", "厦门市某行动方案（征求意见稿）", "优化市场准入退出", "……", None, DocStatus.draft)
    assert basis_line([measure], {"plan": "营商环境行动方案"}) == "《营商环境行动方案》“优化市场准入退出”"
