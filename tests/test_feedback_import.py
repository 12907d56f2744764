"""The one-time import of the legacy feedback.jsonl (POLICY_QA_FEEDBACK_PATH) into the SQLite database:
imported once, never twice, reasons folded in, ids kept, damaged lines skipped, the file never written
again; and `policy-qa feedback` listing it from the database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.serving.feedback import FeedbackStore

pytestmark = pytest.mark.slow  # runs the CLI in subprocesses


def rating(id_: str, question: str, at: str, **extra: object) -> bytes:
    record = {"kind": "rating", "id": id_, "created_at": at, "rating": "like", "question": question,
              "answer": f"{question}的答案", "clause_ids": [f"{id_}#1"], "source": "ui", **extra}
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def reason(ref: str, text: str) -> bytes:
    return (json.dumps({"kind": "reason", "ref": ref, "reason": text, "created_at": "2024-05-02T00:00:00+00:00"},
                       ensure_ascii=False) + "\n").encode("utf-8")


LEGACY = b"".join([
    rating("aaa111", "问一", "2024-05-01T08:00:00+00:00"),
    reason("aaa111", "第一次的原因"),
    b'{"kind": "rating", "question": "\xff\xfe"}\n',  # not UTF-8
    rating("bbb222", "问二", "2024-05-01T09:00:00+00:00", rating="dislike", reason="当时的原因"),
    b'{"kind": "rating", "id": "torn", "rating": "li\n',  # a crash mid-write, then more lines
    reason("aaa111", "后来的原因"),  # the newest reason wins
    reason("nosuch", "没有对应的评分"),
    rating("ccc333", "问三", "2024-05-01T10:00:00+00:00"),
    b'{"kind": "rating", "id": "torn2", "rating": "dis',  # a torn last line
])


def imports(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT sha256, size, ratings FROM feedback_imports").fetchall()


def test_the_legacy_file_is_imported_with_ids_and_reasons(tmp_path: Path) -> None:
    legacy = tmp_path / "feedback.jsonl"
    legacy.write_bytes(LEGACY)
    entries = FeedbackStore(tmp_path / "policy_qa.sqlite3", legacy_path=legacy).list()
    assert [(e.id, e.rating, e.reason, e.clause_ids) for e in entries] == [
        ("aaa111", "like", "后来的原因", ["aaa111#1"]),
        ("bbb222", "dislike", "当时的原因", ["bbb222#1"]),
        ("ccc333", "like", None, ["ccc333#1"]),
    ]
    assert entries[0].question == "问一" and entries[0].created_at == "2024-05-01T08:00:00+00:00"
    assert [(size, count) for _, size, count in imports(tmp_path / "policy_qa.sqlite3")] == [(len(LEGACY), 3)]


def test_it_is_imported_once_and_the_file_is_no_longer_written(tmp_path: Path) -> None:
    db, legacy = tmp_path / "policy_qa.sqlite3", tmp_path / "feedback.jsonl"
    legacy.write_bytes(LEGACY)
    store = FeedbackStore(db, legacy_path=legacy)
    new = store.add("dislike", "新问题", "新答案", ["doc#9"])
    store.add_reason("aaa111", "数据库里改的原因")  # a reason given after the move
    assert legacy.read_bytes() == LEGACY
    for _ in range(2):  # restarts: each new store checks the file again
        entries = FeedbackStore(db, legacy_path=legacy).list()
        assert [e.id for e in entries] == ["aaa111", "bbb222", "ccc333", new.id]
        assert entries[0].reason == "数据库里改的原因"  # not overwritten by the file's older reason
    assert len(imports(db)) == 1
    assert legacy.read_bytes() == LEGACY


def test_a_repeated_import_duplicates_nothing(tmp_path: Path) -> None:
    """Even without the marker (a second copy of the file elsewhere, or a file appended to by an old
    server after the move) nothing already imported is duplicated; only what is new is added."""
    db, legacy = tmp_path / "policy_qa.sqlite3", tmp_path / "feedback.jsonl"
    legacy.write_bytes(LEGACY)
    assert len(FeedbackStore(db, legacy_path=legacy).list()) == 3
    with legacy.open("ab") as fh:
        fh.write(b"\n" + rating("ddd444", "问四", "2024-05-03T08:00:00+00:00"))
    entries = FeedbackStore(db, legacy_path=legacy).list()
    assert [e.id for e in entries] == ["aaa111", "bbb222", "ccc333", "ddd444"]
    assert len(imports(db)) == 2
    copy = tmp_path / "elsewhere" / "feedback.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(legacy.read_bytes())
    assert [e.id for e in FeedbackStore(db, legacy_path=copy).list()] == ["aaa111", "bbb222", "ccc333", "ddd444"]
    assert len(imports(db)) == 2  # the same content is known, wherever it lies


def test_no_legacy_file_or_an_unreadable_one_is_no_obstacle(tmp_path: Path) -> None:
    db = tmp_path / "policy_qa.sqlite3"
    assert FeedbackStore(db, legacy_path=tmp_path / "missing.jsonl").list() == []
    assert not db.exists()
    (tmp_path / "a-directory.jsonl").mkdir()
    store = FeedbackStore(db, legacy_path=tmp_path / "a-directory.jsonl")
    entry = store.add("like", "问题", "答案")
    assert [e.id for e in store.list()] == [entry.id] and imports(db) == []


def test_the_cli_lists_from_the_database_and_says_where(tmp_path: Path) -> None:
    db, legacy = tmp_path / "policy_qa.sqlite3", tmp_path / "feedback.jsonl"
    legacy.write_bytes(LEGACY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_QA_")}
    env.update(POLICY_QA_DB_PATH=str(db), POLICY_QA_FEEDBACK_PATH=str(legacy))
    cli = [str(Path(sys.executable).with_name("policy-qa")), "feedback"]
    listed = subprocess.run([*cli, "--json"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == ["aaa111", "bbb222", "ccc333"]
    shown = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "原因：后来的原因" in shown.stdout and f"共 3 条：👍 2，👎 1（{db}）" in shown.stdout
    assert str(legacy) not in shown.stdout
    assert len(imports(db)) == 1
    (tmp_path / "broken.sqlite3").mkdir()
    env["POLICY_QA_DB_PATH"] = str(tmp_path / "broken.sqlite3")
    failed = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert failed.returncode != 0 and "反馈存储路径是一个目录" in failed.stderr and "Traceback" not in failed.stderr
