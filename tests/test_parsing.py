"""Chinese legal structure: real snippets from the corpus, and the whole corpus parsed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import CORPUS_DIR

from assistant.knowledge.corpus import SourceFile, corpus_files, read_source
from assistant.knowledge.parsing import parse_document, parse_plan, parse_regulation
from assistant.schema import DocStatus, DocumentMeta

REGULATION = """# 中华人民共和国市场主体登记管理条例

<!-- INFO END -->

## 第一章　总则

第一条 为了规范市场主体登记管理行为，推进法治化市场建设，制定本条例。

第二条 本条例所称市场主体，是指在中华人民共和国境内以营利为目的从事经营活动的下列自然人、法人及非法人组织：

（一）公司、非公司企业法人及其分支机构；

（二）个体工商户。

## 第三章 登记规范

第三十三条 市场主体未发生债权债务的，可以按照简易程序办理注销登记。

市场主体应当将承诺书及注销登记申请通过国家企业信用信息公示系统公示，公示期为20日。

第十五条规定的事项，依照本条例第十五条办理。

第三十四条 人民法院裁定强制清算的，市场主体清算组可以持人民法院终结强制清算程序的裁定申请注销登记。
"""


def regulation_clauses():
    return {c.number: c for c in parse_regulation("dengji", REGULATION)}


def test_articles_are_numbered_and_keep_their_chapter() -> None:
    clauses = regulation_clauses()
    assert sorted(clauses) == [1, 2, 33, 34]
    assert clauses[33].clause_id == "dengji#33"
    assert clauses[33].label == "第三十三条"
    assert clauses[33].heading_path == ("第三章 登记规范",)
    assert clauses[1].heading_path == ("第一章 总则",)  # the full-width gap becomes one space


def test_a_heading_is_never_split_from_its_body() -> None:
    article = regulation_clauses()[33]
    assert article.text.startswith("市场主体未发生债权债务的")
    assert "公示期为20日" in article.text


def test_a_cross_reference_at_the_start_of_a_line_does_not_open_an_article() -> None:
    clauses = regulation_clauses()
    assert 15 not in clauses
    assert clauses[33].paragraphs[-1] == "第十五条规定的事项，依照本条例第十五条办理。"


def test_items_fold_into_the_paragraph_that_introduces_them() -> None:
    article = regulation_clauses()[2]
    assert len(article.paragraphs) == 1
    assert article.paragraphs[0].endswith("（一）公司、非公司企业法人及其分支机构；\n（二）个体工商户。")


def test_title_and_promulgation_lines_are_not_clauses() -> None:
    body = "# 某条例\n2014年7月23日 国务院第57次常务会议通过\n<!-- INFO END -->\n第一条 总则内容。\n"
    (only,) = parse_regulation("x", body)
    assert only.text == "总则内容。"


PLAN = """ 为深入贯彻党中央、国务院关于打造一流营商环境决策部署，特制定本方案。
 以习近平新时代中国特色社会主义思想为指导，加快打造一流营商环境。
 1.优化市场准入退出。深入实施外商投资准入前国民待遇加负面清单管理制度。建立健全歇业备案制度。
2.促进市场公平竞争。严格执行国家关于垄断行为的认定标准。
 5.强化市场监管水平。推动“双随机、一公开”监管常态化。
 1.高效解决商业纠纷。建立拍前税款预核机制。
三、畅通国际国内双循环，打造特区开放新优势
（一）巩固提升外循环层级
1.打造制度型开放范本。探索对接国际通行规则。
四、强化区域先行先试，构建全域创新新优势
（一）自贸试验区打造开放创新高地
加快数字自贸区建设。
"""


def test_plan_measures_without_headings_are_grouped_where_numbering_restarts() -> None:
    ids = [c.clause_id.split("#")[1] for c in parse_plan("plan", PLAN)]
    assert ids == ["preamble.1", "preamble.2", "g1.1", "g1.2", "g1.5", "g2.1", "3.1.1", "4.1"]


def test_plan_headings_are_never_invented() -> None:
    clauses = {c.clause_id.split("#")[1]: c for c in parse_plan("plan", PLAN)}
    assert clauses["g1.5"].heading_path == ()
    assert clauses["g1.5"].label == "强化市场监管水平"
    assert clauses["3.1.1"].heading_path == ("三、畅通国际国内双循环，打造特区开放新优势", "（一）巩固提升外循环层级")
    assert clauses["4.1"].label == "自贸试验区打造开放创新高地"
    assert clauses["preamble.2"].label == "序言第2段"


def test_measure_sentences_leave_out_the_heading() -> None:
    measure = {c.clause_id: c for c in parse_plan("plan", PLAN)}["plan#g1.1"]
    assert measure.sentences == ("深入实施外商投资准入前国民待遇加负面清单管理制度。", "建立健全歇业备案制度。")


def test_the_whole_corpus_parses_with_the_article_counts_of_its_sources() -> None:
    counts = {}
    for path in corpus_files(CORPUS_DIR):
        source = read_source(path)
        document = parse_document(source)
        counts[source.meta.doc_id] = len(document.clauses)
        numbers = [c.number for c in document.clauses if c.number is not None]
        if source.meta.kind == "regulation":
            assert numbers == list(range(1, len(numbers) + 1)), path.name
            declared = re.search(r"^articles: (\d+)$", path.read_text("utf-8"), re.M)
            assert declared and int(declared.group(1)) == len(numbers), path.name
        for clause in document.clauses:
            assert "[bookmark:" not in clause.text and "\u200b" not in clause.text
    assert counts["shichang-zhuti-dengji-guanli-tiaoli"] == 55
    assert counts["gongsi-fa"] == 266
    assert counts["xiamen-zaichuang-yingshang-huanjing-xinyoushi"] == 27


def test_the_plan_is_a_draft_and_the_2020_payment_regulation_is_superseded() -> None:
    plan = read_source(CORPUS_DIR / "plans" / "xiamen-zaichuang-yingshang-huanjing-xinyoushi.md")
    old = read_source(CORPUS_DIR / "regulations" / "baozhang-zhongxiao-qiye-kuanxiang-zhifu-tiaoli-2020.md")
    assert plan.meta.status is DocStatus.draft
    assert old.meta.status is DocStatus.superseded
    assert old.meta.superseded_by == "baozhang-zhongxiao-qiye-kuanxiang-zhifu-tiaoli"


def test_an_unknown_kind_is_refused_with_the_file_name(tmp_path: Path) -> None:
    meta = DocumentMeta(doc_id="x", kind="memo", title="备忘录", status="in_force", source="test")
    from assistant.errors import CorpusError

    with pytest.raises(CorpusError, match="kind must be"):
        parse_document(SourceFile(path=tmp_path / "x.md", meta=meta, body="第一条 内容。"))
