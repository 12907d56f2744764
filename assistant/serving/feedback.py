"""Like / dislike feedback on answers, kept in the project's SQLite database (`POLICY_QA_DB_PATH`).

One row per rating in the `feedback` table; a reason given later overwrites the row's reason (the newest
wins). Every write is one transaction on its own connection, so threads and processes can share the
database and a record is either whole or absent, even when the process is killed.

Feedback used to be appended to a JSONL file (`POLICY_QA_FEEDBACK_PATH`). On first use a store imports
that file once, in one transaction: the import is recorded in the `feedback_imports` table by the file's
size and SHA-256, ratings keep their ids and `INSERT OR IGNORE` makes a repeated or concurrent import
harmless. The JSONL file is never written again.

Every record is capped in size (`max_record_bytes`, measured as the record's JSON, as in the JSONL days),
whoever writes it (API or page), and a database that cannot be opened or written raises
`FeedbackStorageError`, which the API answers with a 503 and /healthz reports.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

logger = logging.getLogger(__name__)

Rating = Literal["like", "dislike"]
MAX_REASON_CHARS = 1000
# A question (<= 500 chars), a short answer and a few clause ids take a few KB of UTF-8; 16 KB leaves
# room for a long generated answer while one record can never grow the database by more than that.
DEFAULT_MAX_RECORD_BYTES = 16 * 1024
BUSY_TIMEOUT_S = 30  # as AuditLog: concurrent writers wait for each other instead of failing

# `seq` keeps insertion order stable (an explicit INTEGER PRIMARY KEY survives VACUUM); `id` is the
# public id, unique so that re-importing the legacy file never duplicates a rating.
SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS feedback (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        rating TEXT NOT NULL,            -- like, dislike
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        clause_ids TEXT NOT NULL,        -- a JSON array of clause ids
        reason TEXT,
        source TEXT NOT NULL             -- ui, api
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS feedback_imports (
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        source_path TEXT NOT NULL,       -- where the file was when imported (for the record only)
        imported_at TEXT NOT NULL,
        ratings INTEGER NOT NULL,        -- ratings found in the file (already present ones included)
        PRIMARY KEY (sha256, size)
    )
    """,
)
COLUMNS = ("id", "created_at", "rating", "question", "answer", "clause_ids", "reason", "source")


class FeedbackStorageError(OSError):
    """The feedback database cannot be opened or written (a directory, a read-only disk, a full disk, ...)."""


class FeedbackTooLargeError(ValueError):
    """One record is over the store's size cap."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"反馈内容过大（{size} 字节）：每条最多 {limit // 1024} KB，请精简答案或原因")
        self.size, self.limit = size, limit


class StorageHealth(BaseModel):
    """Whether feedback can be stored; `detail` says why not, in Chinese, without the server's paths."""

    writable: bool
    detail: str | None = None


class FeedbackEntry(BaseModel):
    """One rated answer, as listed by `policy-qa feedback`."""

    id: str
    created_at: str
    rating: Rating
    question: str
    answer: str
    clause_ids: list[str] = []
    reason: str | None = None
    source: str = Field("ui", description="'ui' or 'api'")


class LegacyFile(BaseModel):
    """The parsed legacy JSONL: its identity (size, SHA-256) and its ratings with reasons folded in."""

    path: str
    size: int
    sha256: str
    entries: list[FeedbackEntry]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FeedbackStore:
    """Feedback in SQLite; safe to share between threads and processes (one connection per call)."""

    def __init__(
        self,
        path: Path,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        legacy_path: Path | None = None,
    ) -> None:
        self.path = Path(path)  # the SQLite database (POLICY_QA_DB_PATH)
        self.legacy_path = Path(legacy_path) if legacy_path is not None else None  # the old JSONL, import only
        self.max_record_bytes = max_record_bytes
        self._ready_lock = threading.Lock()
        self._ready = False

    # ---- writing --------------------------------------------------------------------------------

    def add(
        self,
        rating: Rating,
        question: str,
        answer: str,
        clause_ids: list[str] | None = None,
        reason: str | None = None,
        source: str = "ui",
    ) -> FeedbackEntry:
        """Record a rating; returns the stored entry (its id lets a reason be added later)."""
        entry = FeedbackEntry(
            id=uuid.uuid4().hex[:12],
            created_at=_now(),
            rating=rating,
            question=question,
            answer=answer,
            clause_ids=list(clause_ids or []),
            reason=_clean_reason(reason),
            source=source,
        )
        self._check_size({"kind": "rating", **entry.model_dump()})
        self._prepare()
        with self._transaction() as connection:
            _insert(connection, entry)
        return entry

    def add_reason(self, feedback_id: str, reason: str) -> None:
        """Attach a (later) reason to an earlier rating; the newest reason wins, an unknown id is ignored."""
        cleaned = _clean_reason(reason)
        if not cleaned:
            return
        self._check_size({"kind": "reason", "ref": feedback_id, "reason": cleaned, "created_at": _now()})
        self._prepare()
        with self._transaction() as connection:
            connection.execute("UPDATE feedback SET reason = ? WHERE id = ?", (cleaned, feedback_id))

    def _check_size(self, record: dict) -> None:
        """The cap is on the record's JSON line, as it was in the JSONL file, so limits keep their meaning."""
        size = len((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        if size > self.max_record_bytes:
            raise FeedbackTooLargeError(size, self.max_record_bytes)

    # ---- reading --------------------------------------------------------------------------------

    def list(self) -> list[FeedbackEntry]:
        """All ratings, oldest first, with their reasons; nothing is created when there is nothing to list."""
        legacy_pending = self.legacy_path is not None and self.legacy_path.is_file()
        if not self.path.exists() and not legacy_pending:
            return []
        self._prepare()
        with closing(self._connect()) as connection:
            try:
                rows = connection.execute(
                    f"SELECT {', '.join(COLUMNS)} FROM feedback ORDER BY created_at, seq"
                ).fetchall()
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from exc
        return [_entry(row) for row in rows]

    def health(self) -> StorageHealth:
        """Whether a record could be stored now, without writing or creating anything (for /healthz)."""
        try:
            if self.path.exists():
                return self._health_of_existing()
            parent = _nearest_existing(self.path.parent)
            if not parent.is_dir():
                return StorageHealth(writable=False, detail="反馈存储路径的上级不是目录")
            if not os.access(parent, os.W_OK | os.X_OK):
                return StorageHealth(writable=False, detail="反馈数据库目录不存在且无法创建")
            return StorageHealth(writable=True)
        except OSError as exc:
            return StorageHealth(writable=False, detail=_describe_os_error(exc))

    def _health_of_existing(self) -> StorageHealth:
        """An existing database must be a writable SQLite file in a directory SQLite can write its journal to."""
        if not self.path.is_file():
            return StorageHealth(writable=False, detail="反馈存储路径是一个目录" if self.path.is_dir()
                                 else "反馈存储路径不是文件")
        # os.access, not a trial open(): closing a second descriptor of the file would drop the POSIX locks
        # SQLite holds on it in this process. access() reports a read-only disk (EROFS) even for root.
        if not os.access(self.path, os.W_OK):
            return StorageHealth(writable=False, detail="没有写入反馈存储的权限")
        if not os.access(self.path.parent, os.W_OK | os.X_OK):
            return StorageHealth(writable=False, detail="反馈数据库所在目录不可写（无法创建日志文件）")
        uri = self.path.resolve().as_uri() + "?mode=rw"
        try:
            with closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)) as connection:
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            return StorageHealth(writable=False, detail=_describe_sqlite_error(exc, self.path))
        return StorageHealth(writable=True)

    # ---- the database ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A fresh connection in autocommit mode (transactions are explicit), errors in Chinese."""
        try:
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except OSError as exc:
            raise FeedbackStorageError(exc.errno, _describe_os_error(exc)) from exc
        except sqlite3.Error as exc:
            raise _storage_error(exc, self.path) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue instead of deadlocking."""
        with closing(self._connect()) as connection:
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    _rollback(connection)
                    raise
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from exc

    def _prepare(self) -> None:
        """Create the tables and import the legacy JSONL, once per store; later calls return at once."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            legacy = read_legacy(self.legacy_path) if self.legacy_path is not None else None
            with self._transaction() as connection:
                for statement in SCHEMA:
                    connection.execute(statement)
                if legacy is not None:
                    _import(connection, legacy)
            self._ready = True


def _rollback(connection: sqlite3.Connection) -> None:
    """Undo a failed transaction; SQLite may already have rolled it back (a full disk), which is fine."""
    try:
        connection.execute("ROLLBACK")
    except sqlite3.Error:
        pass


# ---- the legacy JSONL import ----------------------------------------------------------------------


def read_legacy(path: Path) -> LegacyFile | None:
    """The old feedback.jsonl parsed the way its `list()` did; None when absent, empty or unreadable."""
    try:
        if not path.is_file():
            return None
        data = path.read_bytes()
    except OSError as exc:
        logger.warning("legacy feedback file %s not imported: %s", path, exc)  # retried on the next start
        return None
    if not data.strip():
        return None
    return LegacyFile(path=str(path.resolve()), size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                      entries=parse_legacy(data.decode("utf-8", errors="replace")))


def parse_legacy(text: str) -> list[FeedbackEntry]:
    """Ratings in file order with reasons folded in (newest wins); torn or damaged lines are skipped."""
    entries: dict[str, FeedbackEntry] = {}
    reasons: dict[str, str] = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line after a crash, or a line with a damaged byte
        if not isinstance(record, dict):
            continue
        if record.get("kind") == "reason" and isinstance(record.get("ref"), str):
            reasons[record["ref"]] = str(record.get("reason") or "")
        elif record.get("kind") == "rating":
            try:
                entry = FeedbackEntry.model_validate(record)
            except ValidationError:
                continue
            entries[entry.id] = entry
    for ref, reason in reasons.items():
        if ref in entries and reason:
            entries[ref] = entries[ref].model_copy(update={"reason": reason})
    return list(entries.values())


def _import(connection: sqlite3.Connection, legacy: LegacyFile) -> None:
    """Inside the caller's write transaction: skip a file already imported, else insert what is new."""
    done = connection.execute("SELECT 1 FROM feedback_imports WHERE sha256 = ? AND size = ?",
                              (legacy.sha256, legacy.size)).fetchone()
    if done:
        return
    for entry in legacy.entries:
        _insert(connection, entry, ignore_existing=True)  # an id already here (an earlier import) is kept as is
    connection.execute(
        "INSERT INTO feedback_imports (sha256, size, source_path, imported_at, ratings) VALUES (?, ?, ?, ?, ?)",
        (legacy.sha256, legacy.size, legacy.path, _now(), len(legacy.entries)),
    )
    logger.info("imported %d legacy feedback ratings from %s", len(legacy.entries), legacy.path)


# ---- rows -----------------------------------------------------------------------------------------


def _insert(connection: sqlite3.Connection, entry: FeedbackEntry, ignore_existing: bool = False) -> None:
    values = entry.model_dump()
    values["clause_ids"] = json.dumps(values["clause_ids"], ensure_ascii=False)
    verb = "INSERT OR IGNORE" if ignore_existing else "INSERT"
    connection.execute(f"{verb} INTO feedback ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                       tuple(values[column] for column in COLUMNS))


def _entry(row: tuple) -> FeedbackEntry:
    values = dict(zip(COLUMNS, row))
    try:
        values["clause_ids"] = json.loads(values["clause_ids"] or "[]")
    except json.JSONDecodeError:
        values["clause_ids"] = []
    return FeedbackEntry.model_validate(values)


# ---- errors ---------------------------------------------------------------------------------------


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _storage_error(exc: sqlite3.Error, path: Path) -> FeedbackStorageError:
    return FeedbackStorageError(errno.EIO, _describe_sqlite_error(exc, path))


def _describe_os_error(exc: OSError) -> str:
    """A Chinese reason for a failed write that names no server path."""
    reasons = {
        "IsADirectoryError": "反馈存储路径是一个目录",
        "NotADirectoryError": "反馈存储路径的上级不是目录",
        "PermissionError": "没有写入反馈存储的权限",
        "FileNotFoundError": "反馈存储目录不存在",
        "FileExistsError": "反馈存储路径的上级不是目录",
    }
    if type(exc).__name__ in reasons:
        return reasons[type(exc).__name__]
    if exc.errno == errno.ENOSPC:
        return "磁盘已满"
    if exc.errno == errno.EROFS:
        return "反馈存储所在磁盘为只读"
    return f"无法写入反馈存储（{type(exc).__name__}）"


def _describe_sqlite_error(exc: sqlite3.Error, path: Path) -> str:
    """A Chinese reason for a SQLite failure, from its error code (SQLite's messages may name paths)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_CANTOPEN"):
        parent = _nearest_existing(path.parent)
        if not os.access(parent, os.W_OK | os.X_OK):
            return "没有写入反馈存储的权限"
        return "无法打开反馈数据库"
    if name.startswith("SQLITE_READONLY"):
        return "反馈数据库只读（文件、目录或磁盘不可写）"
    if name.startswith("SQLITE_FULL"):
        return "磁盘已满"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return "反馈数据库文件已损坏或不是 SQLite 数据库"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "反馈数据库繁忙，请稍后重试"
    if name.startswith("SQLITE_IOERR"):
        return "读写反馈数据库时磁盘出错"
    return f"无法写入反馈存储（{name or type(exc).__name__}）"


def _clean_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = reason.strip()[:MAX_REASON_CHARS]
    return reason or None
