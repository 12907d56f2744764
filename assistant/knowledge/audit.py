"""The knowledge base's change history in SQLite: who changed what, when, from which file.

SQLite is embedded (no server to run) and transactional, so a history entry is either whole or absent
even when two maintainers upload at once. The database path is `POLICY_QA_DB_PATH`.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,          -- add, version, retire
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL,
    version TEXT,
    file_name TEXT,
    sha256 TEXT,
    replaces TEXT                  -- the doc_id a new version superseded
)
"""


class ChangeRecord(BaseModel):
    """One row of the history, as `policy-qa history` and the API show it."""

    id: int | None = None
    at: str = ""
    actor: str
    action: str
    doc_id: str
    title: str
    version: str | None = None
    file_name: str | None = None
    sha256: str | None = None
    replaces: str | None = None


class AuditLog:
    """Append-only change history; each call opens its own connection, so threads need no sharing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute(SCHEMA)
        return connection

    def record(self, change: ChangeRecord) -> ChangeRecord:
        row = change.model_copy(update={"at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        fields = row.model_dump(exclude={"id"})
        with closing(self._connect()) as connection, connection:
            cursor = connection.execute(
                f"INSERT INTO changes ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                tuple(fields.values()),
            )
        return row.model_copy(update={"id": cursor.lastrowid})

    def history(self, doc_id: str | None = None, limit: int = 200) -> list[ChangeRecord]:
        """The newest changes first, optionally of one document."""
        if not self.path.exists():
            return []
        query = "SELECT * FROM changes" + (" WHERE doc_id = ?" if doc_id else "") + " ORDER BY id DESC LIMIT ?"
        with closing(self._connect()) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(query, (doc_id, limit) if doc_id else (limit,)).fetchall()
        return [ChangeRecord(**dict(row)) for row in rows]
