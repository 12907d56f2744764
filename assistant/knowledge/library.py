"""The knowledge base as maintainers change it: preview an upload, add it (as a new document or a new
version of one), retire a document, list documents and their versions, and keep the history.

A change writes corpus files and then calls `rebuild` (injected by the caller, which knows how the
index and its constants are refreshed). If the rebuild fails, the corpus files are put back byte for
byte, so the corpus and the index never disagree. One change runs at a time (a lock file), because
two uploads that both supersede the same document must not interleave.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel

from ..config import Settings
from ..errors import CorpusError, IngestError, NotFoundError
from ..schema import STATUS_LABELS_ZH, DocStatus, DocumentMeta
from .audit import AuditLog, ChangeRecord
from .corpus import ADDED_DIR, RETIRED_DIR, corpus_files, read_source
from .ingest import IngestedDocument, ingest, valid_doc_id
from .ingest.metadata import base_title
from .parsing import parse_document

REPEAL = re.compile(r"废止|停止执行|不再执行")  # how a new text retires the one it replaces
PREVIEW_LABELS = 3  # first and last clause labels shown in a preview
LOCK_FILE = ".policy-qa.lock"


class DocumentRecord(BaseModel):
    """One corpus document as the maintainer list shows it."""

    doc_id: str
    title: str
    doc_number: str | None
    category: str | None
    effective: str | None
    valid_until: str | None
    status: DocStatus
    status_zh: str
    superseded_by: str | None
    clause_count: int
    file: str


class Preview(BaseModel):
    """What an upload would add, for the maintainer to check before confirming."""

    doc_id: str
    file_name: str
    sha256: str
    title: str
    doc_number: str | None
    issuer: str | None
    category: str | None
    kind: str
    promulgated: str | None
    effective: str | None
    valid_until: str | None
    status: DocStatus
    clause_count: int
    first_labels: list[str]
    last_labels: list[str]
    replaces: str | None = None  # an earlier version this one supersedes
    superseded_by: str | None = None  # a later version already present: this one is added as superseded
    warnings: list[str]


class ChangeResult(BaseModel):
    preview: Preview | None = None
    change: ChangeRecord
    clauses_in_index: int


Rebuild = Callable[[], int]  # refreshes the index from the corpus; returns its clause count


class KnowledgeBase:
    """The corpus directory plus its history; the index is refreshed through `rebuild`."""

    def __init__(self, settings: Settings, today: Callable[[], date] = date.today) -> None:
        self.corpus_dir = settings.corpus_dir
        self.max_bytes = int(settings.max_upload_mb * 1024 * 1024)
        self.audit = AuditLog(settings.db_path)
        self.today = today

    # --- reading -------------------------------------------------------------------------------

    def documents(self, include_retired: bool = True) -> list[DocumentRecord]:
        records = []
        for path in self._paths(include_retired):
            source = read_source(path)
            retired = RETIRED_DIR in path.relative_to(self.corpus_dir).parts[:-1]
            status = DocStatus.retired if retired else source.meta.status_on(self.today())
            records.append(DocumentRecord(
                doc_id=source.meta.doc_id, title=source.meta.title, doc_number=source.meta.doc_number,
                category=source.meta.category, effective=source.meta.effective, valid_until=source.meta.valid_until,
                status=status, status_zh=STATUS_LABELS_ZH[status],
                superseded_by=source.meta.superseded_by, clause_count=len(parse_document(source).clauses),
                file=path.relative_to(self.corpus_dir).as_posix(),
            ))
        return records

    def versions(self, doc_id: str) -> list[DocumentRecord]:
        """Every version in `doc_id`'s lineage (linked by superseded_by), oldest first."""
        records = {r.doc_id: r for r in self.documents()}
        if doc_id not in records:
            raise NotFoundError(f"知识库中没有编号为 {doc_id} 的文件")
        previous = {r.superseded_by: r.doc_id for r in records.values() if r.superseded_by}
        first = doc_id
        while first in previous:
            first = previous[first]
        chain, current = [], first
        while current in records and current not in chain:
            chain.append(current)
            current = records[current].superseded_by
        return [records[d] for d in chain]

    def history(self, doc_id: str | None = None) -> list[ChangeRecord]:
        return self.audit.history(doc_id)

    # --- previewing ----------------------------------------------------------------------------

    def preview(self, file_name: str, data: bytes, doc_id: str | None = None) -> tuple[IngestedDocument, Preview]:
        """Parse an upload without writing anything; IngestError when it cannot become a document."""
        name = Path(file_name.replace("\\", "/")).name  # a client's path (../../x.docx) is only a name here
        if not name or name.startswith("."):
            raise IngestError("文件名无效：请使用普通文件名（如 条例.docx）")
        if len(data) > self.max_bytes:
            raise IngestError(f"文件过大（{len(data) / 1048576:.1f} MB），上限为 {self.max_bytes / 1048576:.0f} MB", 413)
        existing = {m.doc_id: m for m in self._metas()}
        taken = {path.stem for path in self._paths(include_retired=True)}  # retired ids stay taken
        document = ingest(name, data, "pending", self.today())
        wanted = valid_doc_id(doc_id) if doc_id else _suggest_doc_id(document.meta, taken)
        if doc_id and doc_id in taken:
            raise IngestError(f"编号 {doc_id} 已被使用（含已下架文件）：请换一个编号，或不填编号以作为新版本添加")
        version_of = self._earlier_version(document.meta, existing, "\n".join(document.body))
        replaces, superseded_by, meta = None, None, document.meta.model_copy(update={"doc_id": wanted})
        if version_of is not None and _older(meta, version_of):
            # An earlier text uploaded after its revision: kept for --as-of, superseded from the start.
            superseded_by = version_of.doc_id
            meta = meta.model_copy(update={"status": DocStatus.superseded, "superseded_by": version_of.doc_id,
                                           "superseded_on": version_of.effective_date()})
        elif version_of is not None:
            replaces = version_of
        document.meta = meta
        document.clauses = [c.model_copy(update={"doc_id": wanted, "clause_id": c.clause_id.replace("pending#", f"{wanted}#", 1)})
                            for c in document.clauses]
        duplicate = next((m for m in existing.values() if self._same_text(m.doc_id, document)), None)
        if duplicate is not None:
            document.warnings.insert(0, f"与已收录的《{duplicate.title}》（{duplicate.doc_id}）正文相同，可能是重复上传")
        if replaces is not None:
            document.warnings.append(f"将作为《{replaces.title}》的新版本添加，原版本（{replaces.doc_id}）标为“已被修订/取代”")
        if superseded_by is not None:
            document.warnings.append(f"该文件早于已收录的《{version_of.title}》（{superseded_by}），将作为旧版本添加，"
                                     "仅在按日期查询（--as-of）时引用")
        labels = [c.label for c in document.clauses]
        return document, Preview(
            doc_id=wanted, file_name=name, sha256=document.sha256, title=meta.title, doc_number=meta.doc_number,
            issuer=meta.issuer, category=meta.category, kind=meta.kind, promulgated=meta.promulgated,
            effective=meta.effective, valid_until=meta.valid_until, status=meta.status_on(self.today()),
            clause_count=len(labels), first_labels=labels[:PREVIEW_LABELS], last_labels=labels[-PREVIEW_LABELS:],
            replaces=replaces.doc_id if replaces else None, superseded_by=superseded_by, warnings=document.warnings,
        )

    # --- changing ------------------------------------------------------------------------------

    def add(self, file_name: str, data: bytes, rebuild: Rebuild, doc_id: str | None = None,
            actor: str = "cli") -> ChangeResult:
        """Preview, then write the document (superseding an earlier version) and refresh the index."""
        with self._locked():
            document, preview = self.preview(file_name, data, doc_id)
            writes: dict[Path, str] = {self.corpus_dir / ADDED_DIR / f"{preview.doc_id}.md": document.corpus_text()}
            if preview.replaces:
                old_path = self._path_of(preview.replaces)
                replaced_on = document.meta.effective_date() or self.today().isoformat()
                writes[old_path] = _with_fields(old_path, status=DocStatus.superseded.value,
                                                superseded_by=preview.doc_id, superseded_on=replaced_on)
            clauses = self._apply(writes, moves={}, rebuild=rebuild)
            change = self.audit.record(ChangeRecord(
                actor=actor, action="version" if preview.replaces else "add", doc_id=preview.doc_id,
                title=preview.title, version=preview.effective, file_name=preview.file_name,
                sha256=preview.sha256, replaces=preview.replaces))
        return ChangeResult(preview=preview, change=change, clauses_in_index=clauses)

    def retire(self, doc_id: str, rebuild: Rebuild, actor: str = "cli") -> ChangeResult:
        """Move a document out of use (kept under retired/ for the record) and refresh the index."""
        with self._locked():
            path = self._path_of(doc_id)
            meta = read_source(path).meta
            if len(self._paths(include_retired=False)) == 1:
                raise IngestError("这是知识库中唯一的文件，不能下架")
            target = self.corpus_dir / RETIRED_DIR / path.name
            writes = {}
            for other in self._metas():  # a version that pointed to this one is current again
                if other.superseded_by == doc_id:
                    writes[self._path_of(other.doc_id)] = _with_fields(
                        self._path_of(other.doc_id), status=DocStatus.in_force.value, superseded_by=None, superseded_on=None)
            clauses = self._apply(writes, moves={path: target}, rebuild=rebuild)
            change = self.audit.record(ChangeRecord(actor=actor, action="retire", doc_id=doc_id, title=meta.title,
                                                    version=meta.effective, file_name=path.name))
        return ChangeResult(change=change, clauses_in_index=clauses)

    # --- pieces --------------------------------------------------------------------------------

    def _apply(self, writes: dict[Path, str], moves: dict[Path, Path], rebuild: Rebuild) -> int:
        """Write and move corpus files, rebuild; on any failure put every file back as it was."""
        before = {path: path.read_bytes() if path.exists() else None for path in [*writes, *moves, *moves.values()]}
        try:
            for path, text in writes.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(path)
            for source, target in moves.items():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(source, target)
            return rebuild()
        except BaseException:
            for path, content in before.items():
                if content is None:
                    path.unlink(missing_ok=True)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
            raise

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the knowledge base's change lock (e.g. while recalibrating after a change)."""
        with self._locked():
            yield

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.corpus_dir.mkdir(parents=True, exist_ok=True)
        with (self.corpus_dir / LOCK_FILE).open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _paths(self, include_retired: bool) -> list[Path]:
        paths = corpus_files(self.corpus_dir)
        retired_dir = self.corpus_dir / RETIRED_DIR
        if include_retired and retired_dir.is_dir():
            paths += sorted(p for p in retired_dir.glob("*.md") if not p.name.startswith("."))
        return paths

    def _metas(self) -> list[DocumentMeta]:
        return [read_source(path).meta for path in corpus_files(self.corpus_dir)]

    def _path_of(self, doc_id: str) -> Path:
        for path in corpus_files(self.corpus_dir):
            if path.stem == doc_id:
                return path
        raise NotFoundError(f"知识库中没有编号为 {doc_id} 的现行文件（`policy-qa documents` 列出全部文件）")

    def _same_text(self, doc_id: str, document: IngestedDocument) -> bool:
        try:
            clauses = parse_document(read_source(self._path_of(doc_id))).clauses
        except (CorpusError, NotFoundError):
            return False
        return [c.text for c in clauses] == [c.text for c in document.clauses]

    def _earlier_version(self, meta: DocumentMeta, existing: dict[str, DocumentMeta], body: str) -> DocumentMeta | None:
        """The current document this upload revises: one with the same title once edition marks are
        dropped, or one whose 文号 the new text declares repealed ("厦府〔2019〕5号同时废止")."""
        title = base_title(meta.title)
        current = [m for m in existing.values() if m.status is not DocStatus.superseded]
        for other in current:
            if base_title(other.title) == title or title in other.short_names:
                return other
        for sentence in re.split(r"[。；]", body):
            if REPEAL.search(sentence):
                for other in current:
                    if other.doc_number and other.doc_number in sentence:
                        return other
        return None


def _with_fields(path: Path, **fields: object) -> str:
    """The corpus file at `path` with front-matter fields changed (None removes one), body untouched."""
    raw = path.read_text(encoding="utf-8")
    _, head, body = raw.split("---\n", 2)
    values = yaml.safe_load(head)
    for key, value in fields.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return "---\n" + yaml.safe_dump(values, allow_unicode=True, sort_keys=False, width=1000) + "---\n" + body


def _older(meta: DocumentMeta, other: DocumentMeta) -> bool:
    """Whether `meta` took effect before `other` (both dates known)."""
    mine, theirs = meta.effective_date(), other.effective_date()
    return bool(mine and theirs and mine < theirs)


def _suggest_doc_id(meta: DocumentMeta, taken: set[str]) -> str:
    """A readable id in the corpus's style: the title's pinyin (the first syllables), plus the year."""
    try:
        from pypinyin import lazy_pinyin
    except ImportError:
        syllables = [hashlib.sha1(meta.title.encode()).hexdigest()[:8]]
    else:
        syllables = [s for s in lazy_pinyin(base_title(meta.title)) if s.isascii() and s.isalnum()][:MAX_ID_SYLLABLES]
    stem = "-".join(syllables).lower() or "doc"
    year = (meta.effective_date() or meta.promulgated or "")[:4]
    candidate = f"{stem}-{year}" if year else stem
    n = 2
    unique = candidate
    while unique in taken:
        unique, n = f"{candidate}-{n}", n + 1
    return unique


MAX_ID_SYLLABLES = 12  # long titles make long file names; twelve syllables keep an id readable
