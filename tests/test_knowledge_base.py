"""The knowledge base end to end with real files: add, version, --as-of, retire, and bad input that
changes nothing. Each test works on its own copy of the corpus and the built index."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest
from kb_files import (
    LOCAL_NOTICE,
    REGISTERED_CAPITAL_ID,
    chromium,
    registered_capital_lines,
    revised_registered_capital,
    write_docx,
    write_pdf,
)

from assistant.config import Settings
from assistant.errors import IngestError
from assistant.evaluation.tuning import build_updated_index
from assistant.knowledge.library import KnowledgeBase
from assistant.service import Assistant

POLICY_QA = str(Path(sys.executable).with_name("policy-qa"))


@pytest.fixture
def kb_settings(index_settings: Settings, tmp_path: Path) -> Settings:
    shutil.copytree(index_settings.corpus_dir, tmp_path / "corpus")
    shutil.copytree(index_settings.index_dir, tmp_path / "index")
    return Settings(_env_file=None, corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index",
                    db_path=tmp_path / "kb.sqlite3")


@pytest.fixture
def rebuild(kb_settings: Settings, assistant: Assistant):  # noqa: ANN201
    return lambda: build_updated_index(kb_settings, assistant.embeddings).clauses


def snapshot(settings: Settings) -> dict[str, str]:
    """Every corpus file's and the index manifest's hash: what 'unchanged' means."""
    files = [p for p in settings.corpus_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
    files.append(settings.index_dir / "manifest.json")
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def cited(settings: Settings, question: str, as_of: date | None = None) -> list[str]:
    assistant = Assistant.load(settings)
    return [c.clause_id for c in assistant.ask(question, as_of=as_of).citations]


def test_an_added_local_document_answers_what_only_it_says(kb_settings: Settings, rebuild, tmp_path: Path) -> None:
    base = KnowledgeBase(kb_settings, today=lambda: date(2026, 11, 28))
    assert not any("首贷" in c for c in cited(kb_settings, "中小企业首贷贴息最高多少？"))
    result = base.add("贴息办法.docx", write_docx(tmp_path / "n.docx", LOCAL_NOTICE).read_bytes(), rebuild, actor="test")
    preview = result.preview
    assert preview.title == "厦门市中小企业首贷续贷贴息办法"
    assert (preview.doc_number, preview.issuer) == ("厦府办规〔2024〕5号", "厦门市人民政府办公厅")
    assert (preview.promulgated, preview.effective, preview.valid_until) == ("2024-02-01", "2024-03-01", "2029-02-28")
    assert preview.category == "规范性文件" and preview.clause_count == 7
    assert preview.first_labels == ["第一条", "第二条", "第三条"] and preview.last_labels[-1] == "第七条"
    ids = cited(kb_settings, "中小企业首贷贴息最高多少？")
    assert ids[0] == f"{preview.doc_id}#3"
    listed = {d.doc_id: d for d in base.documents()}
    assert listed[preview.doc_id].status.value == "in_force" and listed[preview.doc_id].clause_count == 7
    history = base.history()
    assert history[0].doc_id == preview.doc_id and history[0].actor == "test" and history[0].sha256 == preview.sha256


def test_an_expired_document_is_flagged_and_its_answers_say_so(kb_settings: Settings, rebuild, tmp_path: Path) -> None:
    expired = [line.replace("有效期五年", "有效期二年") for line in LOCAL_NOTICE]
    base = KnowledgeBase(kb_settings)
    result = base.add("old.docx", write_docx(tmp_path / "o.docx", expired).read_bytes(), rebuild)
    assert result.preview.valid_until == "2026-02-28" and any("有效期已于" in w for w in result.preview.warnings)
    assert {d.doc_id: d.status.value for d in base.documents()}[result.preview.doc_id] == "expired"
    answer = Assistant.load(kb_settings).ask("中小企业首贷贴息最高多少？")
    assert answer.citations[0].status.value == "expired"
    assert any("有效期已于2026-02-28届满" in n for n in answer.notices)


def test_a_new_version_supersedes_the_old_and_as_of_cites_the_version_then_in_force(
        kb_settings: Settings, rebuild, tmp_path: Path) -> None:
    question = "公司被吊销营业执照后多久未注销会被公告？公告期限多长？"
    assert f"{REGISTERED_CAPITAL_ID}#8" in cited(kb_settings, question)
    base = KnowledgeBase(kb_settings)
    result = base.add("修订.docx", write_docx(tmp_path / "r.docx", revised_registered_capital()).read_bytes(), rebuild)
    new_id = result.preview.doc_id
    assert result.preview.replaces == REGISTERED_CAPITAL_ID and result.change.action == "version"
    now = cited(kb_settings, question)
    assert f"{new_id}#8" in now and f"{REGISTERED_CAPITAL_ID}#8" not in now
    assert f"{REGISTERED_CAPITAL_ID}#8" in cited(kb_settings, question, as_of=date(2025, 1, 1))
    assert [v.doc_id for v in base.versions(new_id)] == [REGISTERED_CAPITAL_ID, new_id]
    old = {d.doc_id: d for d in base.documents()}[REGISTERED_CAPITAL_ID]
    assert old.status.value == "superseded" and old.superseded_by == new_id


def test_a_retired_document_is_no_longer_cited(kb_settings: Settings, rebuild) -> None:
    question = "公司被吊销营业执照后多久未注销会被公告？公告期限多长？"
    base = KnowledgeBase(kb_settings)
    base.retire(REGISTERED_CAPITAL_ID, rebuild)
    assert not any(c.startswith(REGISTERED_CAPITAL_ID) for c in cited(kb_settings, question))
    assert (kb_settings.corpus_dir / "retired" / f"{REGISTERED_CAPITAL_ID}.md").exists()
    assert {d.doc_id: d.status.value for d in base.documents()}[REGISTERED_CAPITAL_ID] == "retired"
    assert base.history()[0].action == "retire"


@pytest.mark.skipif(chromium() is None, reason="needs chromium to print the PDF")
def test_a_printed_pdf_gives_the_clauses_of_its_source(kb_settings: Settings, tmp_path: Path) -> None:
    """Chromium's PDF wraps lines and prints a header and footer (date, title, URL, page x/y) on
    every page: the clauses must still be the source's, word for word."""
    lines = ["国务院关于实施《中华人民共和国公司法》注册资本登记管理制度的规定", "中华人民共和国国务院令第784号",
             *registered_capital_lines()]
    pdf = write_pdf(tmp_path / "规定.pdf", lines)
    document, preview = KnowledgeBase(kb_settings).preview("规定.pdf", pdf.read_bytes(), doc_id="pdf-copy")
    from assistant.knowledge.corpus import read_source
    from assistant.knowledge.parsing import parse_document

    source = parse_document(read_source(kb_settings.corpus_dir / "regulations" / f"{REGISTERED_CAPITAL_ID}.md"))
    assert [c.text.replace("\n", "") for c in document.clauses] == [c.text.replace("\n", "") for c in source.clauses]
    assert preview.doc_number == "中华人民共和国国务院令第784号"
    assert any("重复上传" in w for w in preview.warnings)


def scanned_pdf() -> bytes:
    import io

    import pypdf

    writer = pypdf.PdfWriter()
    for _ in range(2):
        writer.add_blank_page(595, 842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def fake_docx() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.txt", "不是 Word 文档")
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "make", "message", "status"), [
    ("empty.docx", lambda: b"", "文件为空", 422),
    ("scan.pdf", scanned_pdf, "扫描件无文字层，请提供文字版", 422),
    ("zip.docx", fake_docx, "不是有效的 Word", 422),
    ("big.txt", lambda: "第一条 内容。\n".encode() * 200_000, "文件过大", 413),
    ("cover.txt", lambda: "关于做好有关工作的通知\n请各单位认真贯彻落实。\n".encode(), "没有识别出任何条文", 422),
    ("old.doc", lambda: b"\xd0\xcf\x11\xe0", "另存为 .docx", 422),
], ids=["empty", "scanned-pdf", "zip-not-docx", "too-big", "no-clauses", "legacy-doc"])
def test_bad_files_are_refused_with_a_reason_and_change_nothing(
        kb_settings: Settings, rebuild, name: str, make, message: str, status: int) -> None:  # noqa: ANN001
    before = snapshot(kb_settings)
    base = KnowledgeBase(kb_settings.model_copy(update={"max_upload_mb": 1.0}))
    with pytest.raises(IngestError, match=message) as raised:
        base.add(name, make(), rebuild)
    assert raised.value.status == status
    assert snapshot(kb_settings) == before and base.history() == []


def test_a_gb18030_text_file_and_a_path_in_its_name_are_handled(kb_settings: Settings, rebuild, tmp_path: Path) -> None:
    data = "\n".join(LOCAL_NOTICE).encode("gb18030")
    result = KnowledgeBase(kb_settings).add("../../etc/贴息办法.txt", data, rebuild)
    assert result.preview.file_name == "贴息办法.txt" and result.preview.doc_number == "厦府办规〔2024〕5号"
    written = kb_settings.corpus_dir / "added" / f"{result.preview.doc_id}.md"
    assert "单户企业年度贴息最高五十万元" in written.read_text("utf-8")
    assert not list(tmp_path.parent.glob("etc"))


def test_a_failed_index_update_puts_the_corpus_back(kb_settings: Settings, tmp_path: Path) -> None:
    before = snapshot(kb_settings)

    def failing_rebuild() -> int:
        raise KeyboardInterrupt  # as if stopped mid-build

    with pytest.raises(KeyboardInterrupt):
        KnowledgeBase(kb_settings).add("r.docx", write_docx(tmp_path / "r.docx", revised_registered_capital()).read_bytes(),
                                       failing_rebuild)
    assert snapshot(kb_settings) == before


def test_the_cli_previews_adds_lists_and_shows_history(kb_settings: Settings, tmp_path: Path) -> None:
    env = {"POLICY_QA_CORPUS_DIR": str(kb_settings.corpus_dir), "POLICY_QA_INDEX_DIR": str(kb_settings.index_dir),
           "POLICY_QA_DB_PATH": str(kb_settings.db_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    notice = write_docx(tmp_path / "贴息办法.docx", LOCAL_NOTICE)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([POLICY_QA, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300, check=False,
                              cwd=tmp_path)

    declined = run("add", str(notice), stdin="n\n")
    assert declined.returncode == 1 and "厦府办规〔2024〕5号" in declined.stdout and "知识库未改动" in declined.stdout
    added = run("add", str(notice), "--yes")
    assert added.returncode == 0, added.stderr
    assert "已添加新文件《厦门市中小企业首贷续贷贴息办法》" in added.stdout
    listed = run("documents")
    assert "厦门市中小企业首贷续贷贴息办法" in listed.stdout and "有效期至2029-02-28" in listed.stdout
    assert "添加" in run("history").stdout
    answer = run("ask", "首贷贴息最高多少")
    assert "五十万元" in answer.stdout
    past = run("search", "首贷贴息", "--as-of", "2023-01-01", "--json")
    assert "首贷续贷贴息" not in past.stdout  # not yet in force in 2023
    bad = run("ask", "首贷贴息", "--as-of", "2023-13-01")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr


def test_a_text_that_repeals_a_doc_number_is_that_documents_new_version(kb_settings: Settings, rebuild,
                                                                        tmp_path: Path) -> None:
    base = KnowledgeBase(kb_settings)
    first = base.add("v1.docx", write_docx(tmp_path / "v1.docx", LOCAL_NOTICE).read_bytes(), rebuild).preview
    renamed = [line.replace("首贷续贷贴息办法", "融资贴息实施办法").replace("厦府办规〔2024〕5号", "厦府办规〔2026〕2号")
               .replace("2024年3月1日起施行", "2026年6月1日起施行") for line in LOCAL_NOTICE]
    renamed[-3] += "《厦门市中小企业首贷续贷贴息办法》（厦府办规〔2024〕5号）同时废止。"
    unrelated = [line.replace("厦府办规〔2024〕5号", "厦府办规〔2026〕3号").replace("首贷续贷贴息办法", "担保费补助办法")
                 for line in LOCAL_NOTICE]
    assert base.preview("other.docx", write_docx(tmp_path / "o.docx", unrelated).read_bytes())[1].replaces is None
    second = base.add("v2.docx", write_docx(tmp_path / "v2.docx", renamed).read_bytes(), rebuild).preview
    assert second.title == "厦门市中小企业融资贴息实施办法" and second.replaces == first.doc_id


def test_an_earlier_text_uploaded_after_its_revision_is_kept_as_the_old_version(kb_settings: Settings, rebuild,
                                                                                 tmp_path: Path) -> None:
    base = KnowledgeBase(kb_settings)
    current = base.add("2024.docx", write_docx(tmp_path / "a.docx", LOCAL_NOTICE).read_bytes(), rebuild).preview
    earlier = [line.replace("首贷续贷贴息办法", "首贷续贷贴息办法（2022年版）", 1) if i == 0 else
               line.replace("2024年3月1日起施行", "2022年3月1日起施行").replace("最高五十万元", "最高三十万元")
               for i, line in enumerate(LOCAL_NOTICE)]
    old = base.add("2022.docx", write_docx(tmp_path / "b.docx", earlier).read_bytes(), rebuild).preview
    assert old.superseded_by == current.doc_id and old.replaces is None
    assert any("旧版本" in w for w in old.warnings)
    listed = {d.doc_id: d for d in base.documents()}
    assert listed[current.doc_id].status.value == "in_force" and listed[old.doc_id].status.value == "superseded"
    assert cited(kb_settings, "中小企业首贷贴息最高多少？")[0] == f"{current.doc_id}#3"
    assert cited(kb_settings, "中小企业首贷贴息最高多少？", as_of=date(2023, 1, 1))[0] == f"{old.doc_id}#3"


def test_after_a_change_the_scope_model_is_refitted_and_the_rest_carried_over(
        kb_settings: Settings, rebuild, assistant: Assistant, tmp_path: Path) -> None:
    from assistant.answering.fitted import Tuning
    from assistant.evaluation.tuning import refit_scope

    before = Tuning.load(kb_settings.index_dir)
    KnowledgeBase(kb_settings).add("n.docx", write_docx(tmp_path / "n.docx", LOCAL_NOTICE).read_bytes(), rebuild)
    carried = Tuning.load(kb_settings.index_dir)
    assert carried.report["carried_over"] is True and carried.scope == before.scope
    refitted = refit_scope(kb_settings, assistant.embeddings)
    manifest = json.loads((kb_settings.index_dir / "manifest.json").read_text())
    assert refitted.report["scope_refit_for"] == manifest["corpus_hash"]
    assert refitted.report["scope"]["rows"] > 0 and 0 <= refitted.report["scope"]["cv_abstention_recall"] <= 1
    assert (refitted.fusion, refitted.ranker, refitted.spans) == (before.fusion, before.ranker, before.spans)
    assert Tuning.load(kb_settings.index_dir) == refitted  # written where the server reads it
