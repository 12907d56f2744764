"""Operators' relevance labels in SQLite: for a question, which clause answers it, or that none does.

An operator who looks a question up in the 条文检索（坐席） tab knows better than any model which article
answered the caller. Those labels are kept (`POLICY_QA_DB_PATH`, beside the change history and feedback)
and read back as training data: `policy-qa train fit` adds them to the relevance model's groups, and
`policy-qa build` adds the labelled questions to the training folds of the ranker and the calibration
(never to the held-out folds, so the cross-validated figures stay on the dev questions).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

SCHEMA = """
CREATE TABLE IF NOT EXISTS relevance_labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    operator TEXT NOT NULL,
    question TEXT NOT NULL,
    verdict TEXT NOT NULL,         -- answers, none
    clause_id TEXT                 -- the clause that answers (NULL when none does)
)
"""
BUSY_TIMEOUT_S = 30

Verdict = Literal["answers", "none"]


class RelevanceLabel(BaseModel):
    """One operator judgement."""

    id: int | None = None
    at: str = ""
    operator: str = Field(max_length=200)
    question: str = Field(min_length=1, max_length=2000)
    verdict: Verdict
    clause_id: str | None = Field(None, max_length=300)


class LabelStore:
    """Append-only labels; one connection per call, so threads and processes can share the database."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        connection.execute(SCHEMA)
        return connection

    def add(self, label: RelevanceLabel) -> RelevanceLabel:
        row = label.model_copy(update={"at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        fields = row.model_dump(exclude={"id"})
        with closing(self._connect()) as connection, connection:
            cursor = connection.execute(
                f"INSERT INTO relevance_labels ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                tuple(fields.values()))
        return row.model_copy(update={"id": cursor.lastrowid})

    def all(self) -> list[RelevanceLabel]:
        if not self.path.exists():
            return []
        with closing(self._connect()) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM relevance_labels ORDER BY id").fetchall()
        return [RelevanceLabel(**dict(row)) for row in rows]


def operator_labels(path: Path) -> list[tuple[str, list[str]]]:
    """(question, the clause ids that answer it) per labelled question; the latest verdict on a
    (question, clause) pair wins, and a question whose latest verdict is `none` has no clause."""
    latest: dict[str, dict[str | None, str]] = {}
    for label in LabelStore(path).all():
        verdicts = latest.setdefault(label.question, {})
        if label.verdict == "none":
            verdicts.clear()
        verdicts[label.clause_id] = label.verdict
    return [(question, [c for c, v in verdicts.items() if c and v == "answers"]) for question, verdicts in latest.items()]
