"""Malformed corpus files get an error that names the file and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import CorpusError
from assistant.knowledge.corpus import corpus_files, corpus_hash, read_source

GOOD_FRONT_MATTER = '---\nkind: "regulation"\ntitle: "测试条例"\nstatus: "in_force"\nsource: "test"\n---\n'


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("第一条 没有前置元数据。\n", "no YAML front matter"),
        ('---\ntitle: "未闭合"\n第一条 内容。\n', "not closed"),
        ('---\ntitle: [未闭合\n---\n第一条 内容。\n', "not valid YAML"),
        ("---\n- 一个列表\n---\n第一条 内容。\n", "must be a YAML mapping"),
        (GOOD_FRONT_MATTER + "\n  \n", "body after the front matter is empty"),
        ('---\nkind: "regulation"\ntitle: "缺来源"\nstatus: "in_force"\n---\n第一条 内容。\n', "source"),
        ('---\nkind: "regulation"\ntitle: "状态错"\nstatus: "valid"\nsource: "t"\n---\n第一条 内容。\n', "status"),
    ],
)
def test_malformed_files_are_refused_by_name(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, "bad.md", content)
    with pytest.raises(CorpusError, match=message) as caught:
        read_source(path)
    assert str(path) in str(caught.value)


def test_non_utf8_is_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "gbk.md", (GOOD_FRONT_MATTER + "第一条 内容。\n").encode("gbk"))
    with pytest.raises(CorpusError, match="not UTF-8") as caught:
        read_source(path)
    assert "gbk.md" in str(caught.value)


def test_a_good_file_keeps_its_body_verbatim_but_for_docx_artefacts(tmp_path: Path) -> None:
    path = write(tmp_path, "ok.md", GOOD_FRONT_MATTER + "[bookmark: _Toc1]第一条 内容。\n")
    source = read_source(path)
    assert source.meta.doc_id == "ok"
    assert source.body == "第一条 内容。\n"


def test_an_empty_corpus_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no .md or .txt documents"):
        corpus_files(tmp_path)
    with pytest.raises(CorpusError, match="not found"):
        corpus_files(tmp_path / "missing")


def test_the_corpus_hash_changes_with_any_byte(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", GOOD_FRONT_MATTER + "第一条 内容。\n")
    before = corpus_hash([path])
    path.write_text(GOOD_FRONT_MATTER + "第一条 内容！\n", encoding="utf-8")
    assert corpus_hash([path]) != before
