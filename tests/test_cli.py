"""`policy-qa` as a user runs it: real subprocesses, JSON on stdout, clean errors on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.config import Settings

CLI = [str(Path(sys.executable).with_name("policy-qa"))]


def run(*args: str, settings: Settings, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_QA_")}
    environment.update(POLICY_QA_INDEX_DIR=str(settings.index_dir), POLICY_QA_CORPUS_DIR=str(settings.corpus_dir))
    environment.update(env)
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, env=environment, timeout=600)


def assert_clean_failure(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_ask_json_prints_one_object_with_the_contract_fields(index_settings: Settings) -> None:
    result = run("ask", "--json", "公司想简易注销，需要公示多久？", settings=index_settings)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert {"question", "answer", "abstained", "citations", "timings_ms"} <= set(answer)
    assert "20日" in answer["answer"] and not answer["abstained"]
    # The 20-day period is quoted from a clause that states it (the 简易注销 articles of 公司法, 登记条例
    # and its 实施细则 all do; which of them ranks first is the ranker's business, not this contract's).
    assert any("20日" in c["text"] or "二十日" in c["text"] for c in answer["citations"])
    assert all(c["clause_id"].split("#")[0] in {"gongsi-fa", "shichang-zhuti-dengji-guanli-tiaoli",
                                                 "shichang-zhuti-dengji-guanli-tiaoli-shishi-xize"}
               for c in answer["citations"])
    assert {"n", "clause_id", "doc_title", "label", "text", "doc_number", "effective"} <= set(answer["citations"][0])


def test_ask_declines_the_weather(index_settings: Settings) -> None:
    answer = json.loads(run("ask", "--json", "明天厦门天气怎么样", settings=index_settings).stdout)
    assert answer["abstained"] and "12345" in answer["answer"] and answer["citations"] == []


def test_an_empty_question_exits_non_zero_with_a_message(index_settings: Settings) -> None:
    assert_clean_failure(run("ask", "--json", "", settings=index_settings), "问题为空")


def test_ask_reads_questions_from_stdin_one_json_line_each(index_settings: Settings) -> None:
    result = run("ask", "--json", "-", settings=index_settings, stdin="简易注销要公示几天？\n\n登记条例第33条\n")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    assert "20日" in lines[0]["answer"]
    assert lines[1]["question"] == "" and "问题为空" in lines[1]["error"]
    assert lines[2]["citations"][0]["clause_id"] == "shichang-zhuti-dengji-guanli-tiaoli#33"
    assert result.returncode == 2  # one line failed


def test_a_missing_index_says_run_build(index_settings: Settings, tmp_path: Path) -> None:
    missing = index_settings.model_copy(update={"index_dir": tmp_path / "nothing"})
    assert_clean_failure(run("ask", "简易注销", settings=missing), "policy-qa build")


def test_an_index_from_another_corpus_or_model_is_refused(index_settings: Settings, tmp_path: Path) -> None:
    other_corpus = tmp_path / "corpus"
    other_corpus.mkdir()
    (other_corpus / "a.md").write_text('---\nkind: "regulation"\ntitle: "另一"\nstatus: "in_force"\nsource: "t"\n---\n第一条 内容。\n')
    stale = index_settings.model_copy(update={"corpus_dir": other_corpus})
    assert_clean_failure(run("ask", "简易注销", settings=stale), "changed since the index was built")
    result = run("ask", "简易注销", settings=index_settings, POLICY_QA_EMBEDDING_MODEL="BAAI/bge-small-zh-v1.5")
    assert_clean_failure(result, "embedding model")


def test_search_prints_clauses_for_operators(index_settings: Settings) -> None:
    result = run("search", "--json", "-k", "3", "登记条例第33条", settings=index_settings)
    hits = json.loads(result.stdout)
    assert hits[0]["citation"]["clause_id"] == "shichang-zhuti-dengji-guanli-tiaoli#33"
    assert "公示期为20日" in hits[0]["citation"]["text"]
    plain = run("search", "--doc", "gongsi-fa", "清算组", settings=index_settings)
    assert plain.returncode == 0 and "《中华人民共和国公司法》" in plain.stdout


def test_a_broken_corpus_fails_the_build_and_keeps_the_old_index(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bad.md").write_text("没有前置元数据\n")
    settings = Settings(_env_file=None, corpus_dir=corpus, index_dir=tmp_path / "index")
    result = run("build", "--no-progress", settings=settings)
    assert_clean_failure(result, "bad.md")
    assert "原有索引仍可使用" in result.stderr


@pytest.mark.parametrize("split", ["test"])
def test_the_eval_gate_passes_on_the_held_out_split(index_settings: Settings, tmp_path: Path, split: str) -> None:
    result = run("eval", "--split", split, "--out", str(tmp_path), settings=index_settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "eval gate passed" in result.stdout
    report = json.loads((tmp_path / f"eval-{split}.json").read_text())
    assert set(report["sets"]) == {"real", "written", "rewrites"}
    assert all(set(entry["methods"]) == {"bm25", "dense", "hybrid"} for entry in report["sets"].values())
    assert (tmp_path / f"eval-{split}.md").read_text().startswith("Set: real, split test")


def test_invalid_utf8_in_an_argument_or_a_batch_line_is_no_traceback(index_settings: Settings) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_QA_")}
    environment.update(POLICY_QA_INDEX_DIR=str(index_settings.index_dir))
    argument = subprocess.run([*CLI, "ask", "--json", b"\xff\xfe\xe6\xb3\xa8\xe9\x94\x80".decode("utf-8", "surrogateescape")],
                              capture_output=True, env=environment, timeout=600)
    assert argument.returncode == 0 and b"Traceback" not in argument.stderr, argument.stderr
    assert json.loads(argument.stdout)["question"] == "注销"
    batch = subprocess.run([*CLI, "ask", "--json", "-"], input=b"\xff\xfe\n\xe6\xb3\xa8\xe9\x94\x80\n\xe5\x85\xac\xe5\x8f\xb8\xe6\xb3\x95\xe7\xac\xac0\xe6\x9d\xa1\n",
                           capture_output=True, env=environment, timeout=600)
    assert b"Traceback" not in batch.stderr, batch.stderr
    lines = [json.loads(line) for line in batch.stdout.decode().splitlines()]
    assert len(lines) == 3, "every line of the batch gets its object"
    assert lines[2]["question"] == "公司法第0条" and "没有第零条" in lines[2]["answer"]
