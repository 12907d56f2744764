"""The feedback store's own limits, in process, on a real SQLite file: a size cap on every record (whoever
writes it), a storage failure raised as one error type with a Chinese reason, a health check that writes
nothing, and many concurrent writers (threads, and two processes) whose records all arrive intact.
The HTTP side (413, 503, /healthz) is tested against a live server in test_api_access.py."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT
from assistant.serving.feedback import FeedbackStorageError, FeedbackStore, FeedbackTooLargeError


def row_count(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT count(*) FROM feedback").fetchone()[0]


def test_a_record_over_the_cap_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "policy_qa.sqlite3", max_record_bytes=2048)
    first = store.add("like", "简易注销怎么办理？", "短答案")
    with pytest.raises(FeedbackTooLargeError, match="每条最多 2 KB"):
        store.add("like", "简易注销怎么办理？", "长" * 1000)  # 3,000 bytes of UTF-8 in the answer alone
    with pytest.raises(FeedbackTooLargeError):
        store.add_reason(first.id, "因" * 1000)
    assert row_count(store.path) == 1
    assert [(e.id, e.reason) for e in store.list()] == [(first.id, None)]


@pytest.mark.parametrize(("layout", "reason"), [
    ("directory", "反馈存储路径是一个目录"),
    ("under-a-file", "反馈存储路径的上级不是目录"),
    ("not-a-database", "反馈数据库文件已损坏或不是 SQLite 数据库"),
])
def test_unwritable_storage_is_one_error_with_a_reason_and_no_path(tmp_path: Path, layout: str, reason: str) -> None:
    if layout == "directory":
        path = tmp_path / "policy_qa.sqlite3"
        path.mkdir()
    elif layout == "under-a-file":
        (tmp_path / "plain-file").write_text("x")
        path = tmp_path / "plain-file" / "policy_qa.sqlite3"
    else:
        path = tmp_path / "policy_qa.sqlite3"
        path.write_bytes(b"this is no SQLite file\n" * 100)
    store = FeedbackStore(path)
    with pytest.raises(FeedbackStorageError) as caught:
        store.add("dislike", "问题", "答案")
    assert isinstance(caught.value, OSError)
    assert caught.value.strerror == reason and str(tmp_path) not in caught.value.strerror
    health = store.health()
    assert health.writable is False and health.detail == reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_is_a_storage_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        store = FeedbackStore(locked / "policy_qa.sqlite3")
        assert store.health().writable is False
        with pytest.raises(FeedbackStorageError) as caught:
            store.add("like", "问题", "答案")
        assert str(tmp_path) not in caught.value.strerror
    finally:
        locked.chmod(0o700)


def test_health_of_a_new_store_creates_nothing(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "not-yet" / "policy_qa.sqlite3")
    assert store.health().writable is True
    assert store.list() == []
    assert not (tmp_path / "not-yet").exists()
    store.add("like", "问题", "答案")
    assert store.health().writable is True


def test_the_database_is_shared_with_the_change_history(tmp_path: Path) -> None:
    """Feedback lives next to the knowledge base's `changes` table without disturbing it."""
    from assistant.knowledge.audit import AuditLog, ChangeRecord

    db = tmp_path / "policy_qa.sqlite3"
    AuditLog(db).record(ChangeRecord(actor="tester", action="add", doc_id="doc", title="文件"))
    entry = FeedbackStore(db).add("like", "问题", "答案", ["doc#1"])
    assert [c.doc_id for c in AuditLog(db).history()] == ["doc"]
    assert [e.id for e in FeedbackStore(db).list()] == [entry.id]


WRITERS, PER_WRITER = 20, 10


def test_concurrent_writers_lose_and_mix_nothing(tmp_path: Path) -> None:
    """20 threads, each with its own store (one connection per call either way), all records whole."""
    db = tmp_path / "policy_qa.sqlite3"

    def write(writer: int) -> list[str]:
        store = FeedbackStore(db)
        ids = []
        for n in range(PER_WRITER):
            entry = store.add("like" if n % 2 else "dislike", f"问题 {writer}-{n}", f"答案 {writer}-{n} " + "长" * 200,
                              [f"doc#{writer}", f"doc#{n}"])
            store.add_reason(entry.id, f"原因 {writer}-{n}")
            assert store.health().writable  # /healthz polled meanwhile must neither fail nor disturb a writer
            ids.append(entry.id)
        return ids

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        written = [i for ids in pool.map(write, range(WRITERS)) for i in ids]
    entries = {e.id: e for e in FeedbackStore(db).list()}
    assert len(written) == len(set(written)) == len(entries) == WRITERS * PER_WRITER
    for entry in entries.values():
        writer, n = entry.question.removeprefix("问题 ").split("-")
        assert entry.answer == f"答案 {writer}-{n} " + "长" * 200
        assert entry.clause_ids == [f"doc#{writer}", f"doc#{n}"]
        assert entry.reason == f"原因 {writer}-{n}"


WRITER_SCRIPT = """
import json, sys
from pathlib import Path
from assistant.serving.feedback import FeedbackStore
db, legacy, name, count = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
store = FeedbackStore(db, legacy_path=legacy)
ids = [store.add("like", f"{name}-{n}", "答案", [name]).id for n in range(count)]
print(json.dumps(ids))
"""


def test_two_processes_write_and_import_at_once(tmp_path: Path) -> None:
    """Two server processes starting together: the legacy file is imported once, every record is kept."""
    db, legacy = tmp_path / "policy_qa.sqlite3", tmp_path / "feedback.jsonl"
    legacy.write_text("".join(json.dumps({"kind": "rating", "id": f"old{n}", "created_at": "2024-05-01T08:00:00+00:00",
                                          "rating": "like", "question": f"旧问题{n}", "answer": "旧答案"},
                                         ensure_ascii=False) + "\n" for n in range(30)), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    children = [subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(db), str(legacy), name, "40"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=PROJECT_ROOT)
                for name in ("a", "b")]
    written = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        written += json.loads(out)
    entries = FeedbackStore(db, legacy_path=legacy).list()
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids)) == 30 + 80
    assert set(written) | {f"old{n}" for n in range(30)} == set(ids)
    assert ids[:30] == [f"old{n}" for n in range(30)]  # the oldest first
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM feedback_imports").fetchone()[0] == 1
