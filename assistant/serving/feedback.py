"""Like / dislike feedback on answers, appended to a local JSONL file that survives restarts.

Each line is one event: a rating (`kind="rating"`) or a reason added later to an earlier rating
(`kind="reason"`, `ref` = the rating's id). `FeedbackStore.list()` folds reasons into their ratings.
Appending whole lines under a lock keeps the file readable even when the process is killed.
Every record is capped in size (`max_record_bytes`), whoever writes it (API or page), and a store that
cannot be written raises `FeedbackStorageError`, which the API answers with a 503 and /healthz reports.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

Rating = Literal["like", "dislike"]
MAX_REASON_CHARS = 1000
# A question (<= 500 chars), a short answer and a few clause ids take a few KB of UTF-8; 16 KB leaves
# room for a long generated answer while one record can never grow the file by more than that.
DEFAULT_MAX_RECORD_BYTES = 16 * 1024


class FeedbackStorageError(OSError):
    """The feedback file cannot be written (a directory, a read-only disk, a full disk, ...)."""


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FeedbackStore:
    """An append-only JSONL feedback log; safe to share between threads of one process."""

    def __init__(self, path: Path, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        self.path = Path(path)
        self.max_record_bytes = max_record_bytes
        self._lock = threading.Lock()

    def _append(self, record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        if len(data) > self.max_record_bytes:
            raise FeedbackTooLargeError(len(data), self.max_record_bytes)
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("ab") as fh:
                    if fh.tell() and not _ends_with_newline(self.path):
                        fh.write(b"\n")  # a torn last line (a crash mid-write) must not swallow this record
                    fh.write(data)
                    fh.flush()
            except OSError as exc:
                raise FeedbackStorageError(exc.errno, _describe_os_error(exc)) from exc

    def health(self) -> StorageHealth:
        """Whether a record could be appended now, without writing one (for /healthz)."""
        try:
            if self.path.exists():
                if not self.path.is_file():
                    return StorageHealth(writable=False, detail="反馈存储路径不是文件")
                with self.path.open("ab"):  # opening for append proves write access, even for root on a read-only disk
                    pass
                return StorageHealth(writable=True)
            parent = _nearest_existing(self.path.parent)
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                return StorageHealth(writable=False, detail="反馈存储目录不存在且无法创建")
            return StorageHealth(writable=True)
        except OSError as exc:
            return StorageHealth(writable=False, detail=_describe_os_error(exc))

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
        self._append({"kind": "rating", **entry.model_dump()})
        return entry

    def add_reason(self, feedback_id: str, reason: str) -> None:
        """Attach a (later) reason to an earlier rating; the newest reason wins."""
        cleaned = _clean_reason(reason)
        if cleaned:
            self._append({"kind": "reason", "ref": feedback_id, "reason": cleaned, "created_at": _now()})

    def list(self) -> list[FeedbackEntry]:
        """All ratings, oldest first, with their reasons folded in; unreadable lines are skipped."""
        if not self.path.exists():
            return []
        entries: dict[str, FeedbackEntry] = {}
        reasons: dict[str, str] = {}
        with self.path.open(encoding="utf-8", errors="replace") as fh:  # a damaged byte spoils one line only
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line after a crash
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


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


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
    if exc.errno == 28:  # ENOSPC
        return "磁盘已满"
    if exc.errno == 30:  # EROFS
        return "反馈存储所在磁盘为只读"
    return f"无法写入反馈存储（{type(exc).__name__}）"


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"


def _clean_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = reason.strip()[:MAX_REASON_CHARS]
    return reason or None
