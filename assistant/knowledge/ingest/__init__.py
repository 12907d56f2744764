"""An uploaded policy file → a corpus document (front matter + body) and a preview of what it holds.

    extract_text (readers)  →  clean lines (cleanup)  →  metadata  →  IngestedDocument
                                                                       ├── meta, clauses (parsed as build will)
                                                                       ├── warnings for the maintainer
                                                                       └── corpus_text(): the file to write
Nothing here writes: `knowledge.library` decides and commits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePath

import yaml

from ...errors import CorpusError, IngestError
from ...schema import Clause, DocStatus, DocumentMeta
from ..corpus import SourceFile
from ..parsing import INFO_END, STRUCTURE_HEADING, parse_document
from .cleanup import STRUCTURE_START, join_wrapped_lines, normalise_lines, strip_page_furniture
from .metadata import (
    DRAFT_MARK,
    base_title,
    find_category,
    find_doc_number,
    find_effective,
    find_signature,
    find_valid_until,
    structure_kind,
)
from .readers import extract_text

ATTACHMENT = re.compile(r"^附件\s*[\d一二三四五六七八九十]*\s*[:：]?\s*$|^附件\s*[\d一二三四五六七八九十]*[:：]")
HEAD_LINES = 8  # the title block (title, 文号, issuer, dates) sits within the first lines
PROMULGATION_NOTICE = re.compile(r"关于印发(.+?)的通知$")
UNPARSED_MIN_CHARS = 10  # shorter lines are headings (第一章 总则), which no clause quotes
DOC_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,80}$")


@dataclass
class IngestedDocument:
    """One parsed upload: what would be written and what the maintainer should check first."""

    file_name: str
    sha256: str
    meta: DocumentMeta
    head: list[str]
    body: list[str]
    clauses: list[Clause]
    warnings: list[str] = field(default_factory=list)

    def body_text(self) -> str:
        """The title block, the INFO END marker (the parser starts after it), then the body."""
        return "\n".join([*self.head, INFO_END, *self.body]) + "\n"

    def corpus_text(self, meta: DocumentMeta | None = None) -> str:
        """The corpus file to write: front matter, then the body text."""
        return front_matter(meta or self.meta) + self.body_text()


def front_matter(meta: DocumentMeta) -> str:
    """The YAML block a corpus file starts with (the doc id is the file name, so it is left out)."""
    fields = meta.model_dump(mode="json", exclude={"doc_id"}, exclude_none=True)
    fields = {k: v for k, v in fields.items() if v != []}
    body = yaml.safe_dump(fields, allow_unicode=True, sort_keys=False, width=1000)
    return f"---\n{body}---\n"


def ingest(file_name: str, data: bytes, doc_id: str, today: date | None = None) -> IngestedDocument:
    """Read, clean and parse an uploaded file as `doc_id`; IngestError says why it cannot be a document."""
    today = today or date.today()
    extracted = extract_text(file_name, data)
    lines = strip_page_furniture(extracted.pages) if extracted.pages else extracted.lines
    lines = normalise_lines(lines)
    if extracted.format == "pdf":
        lines = join_wrapped_lines(lines)
    lines = [line for line in lines if line and not is_menu_line(line)]
    if not lines:
        raise IngestError("文件中没有可读的文字")
    warnings: list[str] = []
    lines, attachments = _split_attachments(lines)
    if attachments:
        warnings.append(f"附件（{attachments} 段）未收入条文，如需检索请单独添加")
    issuer, signed, signature_lines = find_signature(lines)
    if signature_lines:
        lines = lines[: len(lines) - signature_lines]
    head, body = _split_head(lines)
    full = "\n".join(lines)
    title = _title(head, extracted.title_hint)
    doc_number = find_doc_number("\n".join(head)) or find_doc_number(full[:2000])
    effective = find_effective(full, signed)
    valid_until = find_valid_until(full, effective)
    kind = structure_kind(body)
    meta = DocumentMeta(
        doc_id=doc_id, kind=kind, title=title, issuer=issuer or _issuer_from_number(doc_number),
        doc_number=doc_number, promulgated=signed.isoformat() if signed else None,
        effective=effective.isoformat() if effective else None,
        valid_until=valid_until.isoformat() if valid_until else None,
        category=find_category(title, doc_number),
        status=DocStatus.draft if DRAFT_MARK in title else DocStatus.in_force,
        short_names=_short_names(title), source=f"upload:{file_name}",
    )
    document = IngestedDocument(file_name, hashlib.sha256(data).hexdigest(), meta, head, body, [], warnings)
    try:
        parsed = parse_document(SourceFile(path=Path(PurePath(file_name).name), meta=meta, body=document.body_text()))
    except CorpusError:
        parsed = None
    # Preamble paragraphs alone are not a policy: a cover notice or a letter has no numbered provisions.
    if parsed is None or all("#preamble." in c.clause_id for c in parsed.clauses):
        raise IngestError("没有识别出任何条文或措施（既无“第X条”，也无“一、（一）1.”结构）："
                          "请确认上传的是政策正文，而不是通知封面或附件")
    document.clauses = parsed.clauses
    warnings.extend(_warnings(meta, body, parsed.clauses, today))
    return document


def _split_attachments(lines: list[str]) -> tuple[list[str], int]:
    """The text before the first attachment heading, and how many lines the attachments had."""
    for i, line in enumerate(lines):
        if i > HEAD_LINES and ATTACHMENT.match(line):
            return lines[:i], len(lines) - i
    return lines, 0


def _split_head(lines: list[str]) -> tuple[list[str], list[str]]:
    """The title block (title, 文号, issuer, date lines) and the body after it."""
    for i, line in enumerate(lines[:HEAD_LINES]):
        if STRUCTURE_START.match(line) or STRUCTURE_HEADING.match(line) or len(line) > 60:
            return lines[:i], lines[i:]
    return lines[:1], lines[1:]


_MENU_SEPARATORS = re.compile(r"\s*[|｜>›»/]\s*")


def is_menu_line(line: str) -> bool:
    """A site's navigation bar or breadcrumb that came through the extractor: three or more short items
    between separators (首页 | 政务公开 | 政策文件, 首页 > 政务公开 > 政策文件). A title has none."""
    items = [item for item in _MENU_SEPARATORS.split(line.strip()) if item]
    return len(items) >= 3 and all(len(item) <= 8 for item in items)


def _page_title(hint: str | None, head: list[str]) -> str | None:
    """The part of a web page's <title> that the page's own head repeats: sites append their section and
    name (厦门市…实施细则_政策文件_厦门市人民政府), the heading carries the title alone."""
    if not hint:
        return None
    parts = sorted((p.strip() for p in re.split(r"[_|｜\-–—]+", hint) if len(p.strip()) >= 4), key=len, reverse=True)
    text = "".join(head)
    return next((p for p in parts if p in text), None)


def _title(head: list[str], hint: str | None) -> str:
    """The first head lines that are not 文号, dates, addressees or menus, joined (long titles wrap);
    for a web page, its <title> when the head repeats it."""
    if (from_page := _page_title(hint, head)) is not None:
        return from_page
    parts = []
    for line in head:
        plain = line.strip("# ")
        is_number_line = find_doc_number(plain) is not None and plain.endswith("号")
        if is_number_line or re.search(r"\d{4}\s*年.*日", plain) or plain.endswith("：") or plain.startswith(("（", "(")):
            if parts:
                break
            continue
        parts.append(plain)
    title = "".join(parts).strip()
    # A 印发 notice wraps the policy itself: 关于印发《厦门市…办法》的通知 → 厦门市…办法.
    if match := PROMULGATION_NOTICE.search(title):
        title = match.group(1).strip("《》")
    if not title or len(title) > 80:
        title = (hint or "").strip()
    if not title:
        raise IngestError("无法识别文件标题：请确认文件第一行是政策标题")
    return title


def _short_names(title: str) -> list[str]:
    """The title without 中华人民共和国/city prefixes: how people name it (查询“营商环境条例”)."""
    short = re.sub(r"^(?:中华人民共和国|[\u4e00-\u9fa5]{2,4}[省市](?:人民政府)?(?:办公厅)?关于印发|关于印发)", "",
                   base_title(title))
    short = re.sub(r"的通知$", "", short).strip("《》")
    return [short] if short and short != title else []


def _issuer_from_number(doc_number: str | None) -> str | None:
    if doc_number and "国务院令" in doc_number:
        return "国务院"
    if doc_number and "主席令" in doc_number:
        return "全国人民代表大会常务委员会"
    return None


def _warnings(meta: DocumentMeta, body: list[str], clauses: list[Clause], today: date) -> list[str]:
    warnings = []
    if not meta.doc_number:
        warnings.append("未识别出文号（如“厦府〔2023〕12号”“国务院令第746号”），请核对")
    if not meta.effective:
        warnings.append("未识别出施行日期（如“自2024年1月1日起施行”），按“版本”无法区分新旧，请核对")
    if meta.status_on(today) is DocStatus.expired:
        warnings.append(f"有效期已于{meta.valid_until}届满，添加后将标为“已过有效期”")
    quoted = "".join(c.text for c in clauses)
    # A line's last characters are in some clause unless the parser skipped it (an article's label,
    # which the clause text omits, sits at the line's start, so the tail is the test).
    unparsed = [line for line in body if len(line) > UNPARSED_MIN_CHARS and line[-UNPARSED_MIN_CHARS:] not in quoted]
    if unparsed:
        warnings.append(f"{len(unparsed)} 段文字未归入任何条文，例如：{unparsed[0][:30]}…")
    return warnings


def valid_doc_id(doc_id: str) -> str:
    if not DOC_ID.match(doc_id):
        raise IngestError(f"文件编号“{doc_id}”不可用：只能包含小写字母、数字和连字符（如 xiamen-youhua-tiaoli）")
    return doc_id
