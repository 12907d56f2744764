"""Like / dislike feedback on answers, appended to a local JSONL file that survives restarts.

Each line is one event: a rating (`kind="rating"`) or a reason added later to an earlier rating
(`kind="reason"`, `ref` = the rating's id). `FeedbackStore.list()` folds reasons into their ratings.
Appending whole lines under a lock keeps the file readable even when the process is killed.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

Rating = Literal["like", "dislike"]
MAX_REASON_CHARS = 1000


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

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _append(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as fh:
                if fh.tell() and not _ends_with_newline(self.path):
                    fh.write(b"\n")  # a torn last line (a crash mid-write) must not swallow this record
                fh.write(line.encode("utf-8"))
                fh.flush()

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


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"


def _clean_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = reason.strip()[:MAX_REASON_CHARS]
    return reason or None
