"""Answers, sources and operator cards as escaped HTML or text for the web UI: pure functions of the
answer schema, no Gradio. All corpus and user text goes through `html.escape`; the styles are in
ui_assets/webui.css and the behaviour (citation jumps, copy buttons) in ui_assets/webui.js.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from ..numerals import int_to_cn
from ..schema import Answer, Citation, Confidence, DocStatus, DocumentInfo, SearchHit

# Answers and sources are rendered as escaped HTML inside the chat message: Gradio's Markdown cannot
# express clickable [n], highlighted sentences or copy buttons. ui_assets/webui.js gives them behaviour
# (event delegation, so no inline handlers survive or are needed) and ui_assets/webui.css their look.

_MARKER = re.compile(r"\[(\d+)\]")
# Generated answers may run several cited sentences together; a line is split after its markers (or
# the sentence end right after them) when more text follows.
_AFTER_MARKERS = re.compile(r"(?<=\])(?=[^\s\[。，；：、！？）)（(”])|(?<=\][。；！？])(?=[^\s\[）)”])")
_ITEM_LINE = re.compile(r"^[（(][一二三四五六七八九十]+[）)]")
_ARTICLE_LABEL = re.compile(r"^第[一二三四五六七八九十百千零〇\d]+条")
# Notes the composer appends to a quote; they are not clause text, so they are left out when matching.
_QUOTE_NOTES = re.compile(r"（条文全文见引用\[\d+\]）|（其余各项见条文全文）")
_SENTENCE_END = re.compile(r"(?<=[。；！？])")
_TAG = re.compile(r"<[^>]+>")
SOURCES_PREFIX = '<details class="pq-sources"'


def _esc(text: str) -> str:
    """Corpus and user text as HTML text or attribute value: nothing in it is markup."""
    return html.escape(text, quote=True)


def _attr(text: str) -> str:
    """A multi-line attribute value, kept on one line so Markdown leaves the HTML block whole.

    Gradio's sanitiser drops data-* and aria-* attributes from messages; a button's `value` survives,
    so buttons carry what they act on there (webui.js reads it)."""
    return _esc(text).replace("\r", "").replace("\n", "&#10;")


@dataclass(frozen=True)
class AnswerBlock:
    """One quoted span of an answer (its lines, [n] markers in place), or a plain line when it has none.

    A 款 quoted with its 项 is several lines and one marker: it is shown as one list.
    """

    lines: tuple[str, ...]

    @property
    def markers(self) -> list[int]:
        return list(dict.fromkeys(int(n) for line in self.lines for n in _MARKER.findall(line)))

    @property
    def quoted(self) -> str:
        """The clause text this block quotes: markers and the composer's notes removed."""
        return "\n".join(_MARKER.sub("", _QUOTE_NOTES.sub("", line)) for line in self.lines).strip()


def answer_blocks(text: str) -> list[AnswerBlock]:
    """Group an answer's lines into quoted spans: a span ends at a line with a marker; the unmarked
    项 lines before it (and the 款 lead that introduces them) belong to it. Other unmarked lines
    (the low-confidence intro, the referral) stay plain blocks."""
    lines = [part.strip() for line in text.splitlines() for part in _AFTER_MARKERS.split(line) if part.strip()]
    blocks: list[AnswerBlock] = []
    pending: list[str] = []
    for line in lines:
        if not _MARKER.search(line):
            pending.append(line)
            continue
        group = [line]
        while pending and _ITEM_LINE.match(group[0]):
            group.insert(0, pending.pop())
        blocks.extend(AnswerBlock((plain,)) for plain in pending)
        blocks.append(AnswerBlock(tuple(group)))
        pending = []
    blocks.extend(AnswerBlock((plain,)) for plain in pending)
    return blocks


def _with_markers(line: str, known: set[int]) -> str:
    """A line as HTML: text escaped, each [n] that resolves to a source a button that jumps to it."""
    out, last = [], 0
    for match in _MARKER.finditer(line):
        out.append(_esc(line[last:match.start()]))
        n = int(match.group(1))
        if n in known:
            out.append(f'<button type="button" class="pq-cite" value="{n}" title="查看来源 {n}">[{n}]</button>')
        else:
            out.append(_esc(match.group(0)))
        last = match.end()
    out.append(_esc(line[last:]))
    return "".join(out)


def _block_html(block: AnswerBlock, known: set[int]) -> str:
    """A quoted span on its own line; a 款 with its 项 as a list, its one marker after the last item."""
    if not block.markers:
        return f'<p class="pq-plain">{_esc(block.lines[0])}</p>'
    if len(block.lines) == 1:
        return f'<p class="pq-line">{_with_markers(block.lines[0], known)}</p>'
    head, *items = block.lines
    lis = "".join(f"<li>{_with_markers(item, known)}</li>" for item in items)
    return f'<div class="pq-line pq-list"><p>{_with_markers(head, known)}</p><ul>{lis}</ul></div>'


def short_title(title: str, short_names: tuple[str, ...] = ()) -> str:
    """A document name short enough for the one-line summary: 《公司法》, 《登记条例实施细则》.

    The shortest front-matter short name of at least six characters (shorter ones such as 实施细则
    are ambiguous) when the title is long; the title without 中华人民共和国 otherwise.
    """
    plain = title.removeprefix("中华人民共和国")
    if len(plain) <= 12:
        return plain
    candidates = [name for name in short_names if 6 <= len(name) < len(plain)]
    return min(candidates, key=len) if candidates else plain


def basis_line(citations: list[Citation], short_names: dict[str, str]) -> str:
    """What an answer cites, per document: 《公司法》第二百四十条、第二百四十一条；《行动方案》“优化市场准入退出”"""
    by_doc: dict[str, list[str]] = {}
    for c in citations:
        labels = by_doc.setdefault(c.doc_id, [])
        label = c.label if _ARTICLE_LABEL.match(c.label) else f"“{c.label}”"  # a plan measure's heading
        if label not in labels:
            labels.append(label)
    titles = {c.doc_id: c.doc_title for c in citations}
    return "；".join(f"《{short_names.get(d) or short_title(titles[d])}》{'、'.join(labels)}"
                    for d, labels in by_doc.items())


def _notice_text(notice: str) -> str:
    """A notice with one '注：' in front (the draft-plan notice already starts with 注意：)."""
    return notice if notice.startswith(("注：", "注意：")) else f"注：{notice}"


def reply_text(answer: Answer) -> str:
    """The answer as a 12345 工单 reply: the answer with its [n], notices, then one 依据 line per
    citation with document, article and 文号 (what 复制答复 copies)."""
    lines = [line.strip() for line in answer.answer.splitlines() if line.strip()]
    lines += [_notice_text(n) for n in answer.notices]
    if answer.citations:
        lines.append("")
        lines.append("依据：" if answer.confidence is not Confidence.low else "参考条文（匹配不确定，请核对后再答复）：")
        for c in answer.citations:
            extra = [f"文号：{c.doc_number}"] if c.doc_number else []
            if c.status is not DocStatus.in_force:
                extra.append(c.status_zh)
            lines.append(f"[{c.n}]《{c.doc_title}》{c.label}" + (f"（{'，'.join(extra)}）" if extra else ""))
    return "\n".join(lines)


def _find(text: str, quote: str) -> tuple[int, int] | None:
    """Where `quote` occurs in `text`, ignoring whitespace (a 项 list is quoted with its line breaks)."""
    positions = [i for i, ch in enumerate(text) if not ch.isspace()]
    compact = "".join(text[i] for i in positions)
    needle = "".join(ch for ch in quote if not ch.isspace())
    start = compact.find(needle) if needle else -1
    if start < 0:
        return None
    return positions[start], positions[start + len(needle) - 1] + 1


def quoted_ranges(text: str, quotes: list[str]) -> list[tuple[int, int]]:
    """Character ranges of the clause that the answer quotes. A quote not found whole (a generated
    sentence) is tried sentence by sentence; what is not verbatim stays unmarked."""
    ranges = []
    for quote in quotes:
        found = _find(text, quote)
        if found:
            ranges.append(found)
            continue
        ranges.extend(r for part in _SENTENCE_END.split(quote) if len(part) >= 6 and (r := _find(text, part)))
    return sorted(ranges)


def _line_places(text: str) -> list[tuple[int, int | None]]:
    """For each line of an article: (款 number, 项 number or None); 项 lines belong to the 款 before."""
    places: list[tuple[int, int | None]] = []
    kuan, xiang = 0, 0
    for line in text.split("\n"):
        if _ITEM_LINE.match(line.strip()) and kuan:
            xiang += 1
            places.append((kuan, xiang))
        else:
            kuan, xiang = kuan + 1, 0
            places.append((kuan, None))
    return places


def quoted_places(c: Citation, ranges: list[tuple[int, int]]) -> str:
    """The 款/项 an article's quoted sentences sit in ('第二款', '第一款第三项'); empty for plan measures
    and for one-款 articles without 项, where the article alone says where."""
    if not ranges or not _ARTICLE_LABEL.match(c.label):
        return ""
    places = _line_places(c.text)
    if len({k for k, _ in places}) < 2 and all(x is None for _, x in places):
        return ""
    starts = [0]
    for line in c.text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    found: list[str] = []
    for begin, end in ranges:
        touched = [i for i in range(len(places)) if starts[i] < end and begin < starts[i + 1] - 1]
        kuans = list(dict.fromkeys(places[i][0] for i in touched))
        if len(touched) == 1 and places[touched[0]][1] is not None:
            k, x = places[touched[0]]
            label = f"第{int_to_cn(k)}款第{int_to_cn(x)}项"
        else:
            label = "、".join(f"第{int_to_cn(k)}款" for k in kuans)
        if label and label not in found:
            found.append(label)
    return "、".join(found)


def clause_html(text: str, ranges: list[tuple[int, int]]) -> str:
    """The clause, one paragraph per line (项 indented), quoted characters inside <mark>."""
    marked = [False] * len(text)
    for begin, end in ranges:
        for i in range(begin, end):
            marked[i] = True
    out, offset = [], 0
    for line in text.split("\n"):
        runs, i = [], 0
        while i < len(line):
            j = i
            while j < len(line) and marked[offset + j] == marked[offset + i]:
                j += 1
            piece = _esc(line[i:j])
            runs.append(f"<mark>{piece}</mark>" if marked[offset + i] else piece)
            i = j
        cls = "pq-item" if _ITEM_LINE.match(line.strip()) else "pq-para"
        out.append(f'<p class="{cls}">{"".join(runs)}</p>')
        offset += len(line) + 1
    return f'<div class="pq-clause">{"".join(out)}</div>'


def citation_meta_line(c: Citation) -> str:
    """文号 ｜ 施行日期 ｜ status, as plain text (operator cards, which are Markdown)."""
    parts = []
    if c.doc_number:
        parts.append(f"文号：{c.doc_number}")
    if c.effective:
        parts.append(f"施行日期：{c.effective}")
    parts.append(c.status_zh)
    return " ｜ ".join(parts)


def source_html(c: Citation, quotes: list[str], numbered: bool = True) -> str:
    """One source card: title, 文号/施行日期/status, where the quote sits, the clause with the quoted
    sentences marked, and the clause id with a copy button."""
    ranges = quoted_ranges(c.text, quotes)
    number = f'<span class="pq-n">[{c.n}]</span>' if numbered else ""
    meta = []
    if c.doc_number:
        meta.append(f'<span class="pq-docno">文号：{_esc(c.doc_number)}</span>')
    if c.effective:
        meta.append(f'<span class="pq-effective">施行日期：{_esc(c.effective)}</span>')
    meta.append(f'<span class="pq-status pq-status-{_esc(c.status.value)}">{_esc(c.status_zh)}</span>')
    where = quoted_places(c, ranges)
    where_html = f'<p class="pq-where">引用位置：{_esc(where)}</p>' if where else ""
    return (
        f'<section class="pq-source pq-src-{c.n}" tabindex="-1">'
        f'<h4 class="pq-source-title">{number}《{_esc(c.doc_title)}》{_esc(c.label)}</h4>'
        f'<p class="pq-meta">{"".join(meta)}</p>{where_html}{clause_html(c.text, ranges)}'
        f'<p class="pq-id">条文编号：<code>{_esc(c.clause_id)}</code>'
        f'<button type="button" class="pq-copy" value="{_attr(c.clause_id)}" title="复制条文编号">复制编号</button></p>'
        "</section>"
    )


def sources_html(citations: list[Citation], blocks: list[AnswerBlock], title: str, numbered: bool = True) -> str:
    """The sources under an answer, in a <details> that is open on desktop (webui.js closes it on a
    phone, where it stays one tap away)."""
    quotes: dict[int, list[str]] = {}
    for block in blocks:
        for n in block.markers:
            quotes.setdefault(n, []).append(block.quoted)
    cards = "".join(source_html(c, quotes.get(c.n, []) if numbered else [], numbered) for c in citations)
    return (f'{SOURCES_PREFIX} open><summary class="pq-sources-title">{_esc(title)}'
            f'<span class="pq-hint">点击答案中的 [n] 可跳到对应条文</span></summary>{cards}</details>')


def answer_html(answer: Answer, answer_id: str, short_names: dict[str, str] | None = None) -> str:
    """The whole answer message: 依据 summary, one line per quoted span, notices, 复制答复, sources."""
    blocks = answer_blocks(answer.answer)
    known = {c.n for c in answer.citations}
    low = answer.confidence is Confidence.low
    parts = []
    if low:
        parts.append('<p class="pq-badge-line"><span class="pq-badge">低置信度</span>'
                     '<span>匹配不确定：所引条文可能就是答案，也可能不是，请核对原文后再答复</span></p>')
    elif answer.confidence is Confidence.declined:
        parts.append('<p class="pq-badge-line"><span class="pq-badge pq-badge-info">未作答</span></p>')
    if answer.citations:
        label = "可能相关：" if low else "依据："
        parts.append(f'<p class="pq-basis"><span class="pq-basis-label">{label}</span>'
                     f'{_esc(basis_line(answer.citations, short_names or {}))}</p>')
    parts.append('<div class="pq-lines">' + "".join(_block_html(b, known) for b in blocks) + "</div>")
    parts.extend(f'<p class="pq-notice">{_esc(_notice_text(n))}</p>' for n in answer.notices)
    if answer.citations:
        parts.append('<p class="pq-actions"><button type="button" class="pq-copy pq-copy-reply" '
                     f'value="{_attr(reply_text(answer))}" title="复制答复及依据（工单格式）">复制答复</button></p>')
        title = f"可能相关的条文（{len(answer.citations)}）" if low else f"来源（{len(answer.citations)}）"
        parts.append(sources_html(answer.citations, blocks, title))
    elif answer.related:
        parts.append(sources_html(answer.related, [], f"可能相关的条文（{len(answer.related)}）", numbered=False))
    body = "".join(parts).replace("\n", "")  # one line: a blank line would end Markdown's HTML block
    return f'<div class="pq-answer pq-{_esc(answer.confidence.value)} pq-aid-{_esc(answer_id)}">{body}</div>'


def plain_text(content: str) -> str:
    """The readable text of a rendered answer, without its sources (for follow-up context)."""
    head = content.split(SOURCES_PREFIX, 1)[0]
    if "<" not in head:
        return head
    head = re.sub(r"</(p|li|div)>", "\n", head)
    return html.unescape(_TAG.sub("", head)).replace("复制答复", "").strip()


def hit_header(hit: SearchHit) -> str:
    """An operator card's header (Markdown; Gradio sanitises it): title, 文号/施行日期/status, place, id."""
    c = hit.citation
    path = " › ".join(c.heading_path)
    lines = [f"**{hit.rank}.《{c.doc_title}》{c.label}**", citation_meta_line(c)]
    if path:
        lines.append(f"位置：{path}")
    lines.append(f"编号：`{c.clause_id}`")
    return "  \n".join(lines)


DOC_COLUMNS = ("文件", "文号", "发布机关", "施行日期", "状态", "条文数")


def documents_html(docs: list[DocumentInfo]) -> str:
    """The 收录文件 table as escaped HTML: it wraps to fit 1366 px and becomes one card per document
    on a phone (each cell labelled by data-label), where a 6-column table cannot fit."""
    head = "".join(f"<th>{c}</th>" for c in DOC_COLUMNS)
    rows = []
    for d in docs:
        cells = (d.title, d.doc_number or "—", d.issuer or "—", d.effective or "—", d.status_zh, str(d.clause_count))
        tds = "".join(f'<td data-label="{c}">{_esc(v)}</td>' for c, v in zip(DOC_COLUMNS, cells))
        rows.append(f'<tr class="pq-doc-{_esc(d.status.value)}">{tds}</tr>')
    return f'<table class="pq-docs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
