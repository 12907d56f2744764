"""Bytes of an uploaded file → its text, one paragraph (or PDF line) per line.

Each format uses a maintained library (the `ingest` extra): python-docx for Word, pypdf for a PDF's
text layer (pure Python, so no system library to install), trafilatura for the main content of a saved
web page. Plain text is UTF-8 or, as Chinese offices often save it, GB18030.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePath

from ...errors import ExtraMissingError, IngestError

SUFFIX_FORMATS = {".docx": "docx", ".pdf": "pdf", ".html": "html", ".htm": "html", ".txt": "text", ".md": "text"}
MIN_TEXT_CHARS_PER_PAGE = 20  # below this a PDF page is an image: a page number alone is ~5 characters


@dataclass(frozen=True)
class ExtractedText:
    """A file's text and what the format knew about it (a web page's <title>)."""

    format: str
    lines: list[str]
    title_hint: str | None = None
    pages: list[list[str]] | None = None  # PDF: lines per page, for running headers and page numbers


def file_format(name: str) -> str:
    suffix = PurePath(name).suffix.lower()
    if suffix == ".doc":
        raise IngestError("不支持旧版 Word（.doc）文件：请在 Word 中另存为 .docx 后再上传")
    if suffix not in SUFFIX_FORMATS:
        raise IngestError(f"不支持的文件类型“{suffix or '无扩展名'}”：请上传 .docx、.pdf、.html 或 .txt 文件")
    return SUFFIX_FORMATS[suffix]


def extract_text(name: str, data: bytes) -> ExtractedText:
    """The file's text by its format; every failure is an IngestError saying what to do."""
    fmt = file_format(name)
    if not data.strip():
        raise IngestError("文件为空：请检查是否上传了正确的文件")
    reader = {"docx": _read_docx, "pdf": _read_pdf, "html": _read_html, "text": _read_plain}[fmt]
    return reader(data)


def _read_docx(data: bytes) -> ExtractedText:
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
    except ImportError:
        raise ExtraMissingError("python-docx", "ingest", "reading .docx files") from None
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError):
        raise IngestError("不是有效的 Word（.docx）文件：文件可能已损坏，或只是改了扩展名") from None
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:  # attachments' tables: one line per row
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return ExtractedText("docx", lines)


def _read_pdf(data: bytes) -> ExtractedText:
    try:
        import pypdf
        from pypdf.errors import PdfReadError
    except ImportError:
        raise ExtraMissingError("pypdf", "ingest", "reading .pdf files") from None
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("PDF 已加密：请提供未加密的文字版 PDF")
        pages = [(page.extract_text() or "").splitlines() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError):
        raise IngestError("无法读取的 PDF 文件：文件可能已损坏") from None
    if not pages:
        raise IngestError("PDF 没有页面")
    text_chars = sum(len("".join("".join(lines).split())) for lines in pages)
    if text_chars < MIN_TEXT_CHARS_PER_PAGE * len(pages):
        raise IngestError("扫描件无文字层，请提供文字版（可从 Word 另存为 PDF，或直接上传 .docx）")
    return ExtractedText("pdf", [line for lines in pages for line in lines], pages=pages)


def _read_html(data: bytes) -> ExtractedText:
    try:
        import trafilatura
    except ImportError:
        raise ExtraMissingError("trafilatura", "ingest", "reading saved web pages") from None
    html = _decode(data)
    text = trafilatura.extract(html, include_tables=True, include_comments=False, favor_recall=True)
    if not text or not text.strip():
        raise IngestError("网页中没有找到正文：请保存政策全文所在的页面，或上传 .docx/.pdf 原件")
    meta = trafilatura.extract_metadata(html)
    return ExtractedText("html", text.splitlines(), title_hint=meta.title if meta else None)


def _read_plain(data: bytes) -> ExtractedText:
    return ExtractedText("text", _decode(data).splitlines())


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030, the superset of GBK/GB2312 that Chinese Windows saves."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise IngestError("文件编码无法识别：请另存为 UTF-8 或 GB18030 编码的文本")
