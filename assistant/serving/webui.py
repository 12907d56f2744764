"""The Gradio 6 web UI (chat for enterprises, clause search for 12345 operators) and the one-port server.

`build_server()` returns the FastAPI app with the API (/api, /v1, /healthz, /docs) and the UI mounted
at `/`, sharing one `AssistantHolder` so the index is loaded once, in the app's lifespan.
The top-level `ui.py` exposes `demo` and `app` from here; `policy-qa serve` calls `serve()`.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing phones home
os.environ.setdefault("GRADIO_RUN_HISTORY", "False")
# The embedding engine uses OpenMP. Its default busy-waiting threads starve each other when several
# requests embed at once (or another process is busy) on a 2-core machine; passive waiting roughly
# doubled /api/ask throughput at 8 concurrent clients in bench/bench_api.py. Must precede loading it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import html  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402
from collections import OrderedDict  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from ..answering.generate import llm_configured  # noqa: E402
from ..answering.references import parse_reference  # noqa: E402
from ..config import Settings, get_settings  # noqa: E402
from ..errors import IndexError_, PolicyQAError, QuestionError  # noqa: E402
from ..numerals import int_to_cn  # noqa: E402
from ..schema import Answer, Citation, Confidence, DocStatus, DocumentInfo, SearchHit, Turn  # noqa: E402
from .api import create_app  # noqa: E402
from .deps import AssistantHolder  # noqa: E402
from .feedback import FeedbackStorageError, FeedbackStore, FeedbackTooLargeError  # noqa: E402

logger = logging.getLogger(__name__)

TITLE = "厦门营商环境政策问答"
EXAMPLES = [
    "简易注销怎么办理？",
    "市场主体登记管理条例第三十三条是什么？",
    "大型企业拖欠中小企业货款，最迟多久要付款？",
    "厦门的“一件事”集成服务有哪些？",
    "外商投资企业的准入有什么规定？",
]
HISTORY_TURNS = 6
THEME = gr.themes.Soft(
    primary_hue="red",
    font=["PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", "system-ui", "sans-serif"],
    font_mono=["Noto Sans Mono CJK SC", "ui-monospace", "monospace"],
)
ASSETS = Path(__file__).parent / "ui_assets"
CSS_PATH = ASSETS / "webui.css"
JS_PATH = ASSETS / "webui.js"
ADMIN_HTML_PATH = ASSETS / "admin.html"
ADMIN_JS_PATH = ASSETS / "admin.js"


@dataclass(frozen=True)
class AnsweredTurn:
    question: str
    answer: str
    clause_ids: list[str]


class RecentAnswers:
    """The last answers shown in the UI, by id, so a like/dislike can record what was rated."""

    def __init__(self, size: int = 2000) -> None:
        self._items: OrderedDict[str, AnsweredTurn] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def put(self, turn: AnsweredTurn) -> str:
        key = uuid.uuid4().hex[:12]
        with self._lock:
            self._items[key] = turn
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return key

    def get(self, key: str | None) -> AnsweredTurn | None:
        with self._lock:
            return self._items.get(key) if key else None


# ---- rendering -------------------------------------------------------------------------------
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
        lines.append("依据：" if answer.confidence is not Confidence.low else "参考条文（非直接规定，仅供参考）：")
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
                     '<span>以下条文并非直接规定，请核对原文或咨询主管部门</span></p>')
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


def answer_messages(answer: Answer, answer_id: str, short_names: dict[str, str] | None = None) -> list[gr.ChatMessage]:
    """The answer as one chat message (HTML, see answer_html); its id lets a rating find what was rated."""
    return [gr.ChatMessage(role="assistant", content=answer_html(answer, answer_id, short_names),
                           metadata={"id": answer_id})]


def plain_text(content: str) -> str:
    """The readable text of a rendered answer, without its sources (for follow-up context)."""
    head = content.split(SOURCES_PREFIX, 1)[0]
    if "<" not in head:
        return head
    head = re.sub(r"</(p|li|div)>", "\n", head)
    return html.unescape(_TAG.sub("", head)).replace("复制答复", "").strip()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return "".join(_text_of(part) for part in content)
    return ""


def message_text(message: dict, recent: RecentAnswers | None = None) -> str:
    """What a chat message said, as plain text: the stored answer when the id is known, else the
    rendered HTML stripped of its tags and sources."""
    meta = message.get("metadata") or {}
    known = recent.get(meta.get("id")) if recent is not None else None
    if known is not None and message.get("role") == "assistant":
        return known.answer
    text = _text_of(message.get("content"))
    return plain_text(text) if message.get("role") == "assistant" else text


def history_turns(history: list[dict], recent: RecentAnswers | None = None) -> list[Turn]:
    """Earlier user questions and answers (not source accordions or clause texts), newest last."""
    turns = []
    for message in history:
        meta = message.get("metadata") or {}
        if message.get("role") not in ("user", "assistant") or meta.get("title"):
            continue
        text = message_text(message, recent).strip()
        if text:
            turns.append(Turn(role=message["role"], content=text[:4000]))
    return turns[-2 * HISTORY_TURNS:]


def hit_header(hit: SearchHit) -> str:
    """An operator card's header (Markdown; Gradio sanitises it): title, 文号/施行日期/status, place, id."""
    c = hit.citation
    path = " › ".join(c.heading_path)
    lines = [f"**{hit.rank}.《{c.doc_title}》{c.label}**", citation_meta_line(c)]
    if path:
        lines.append(f"位置：{path}")
    lines.append(f"编号：`{c.clause_id}`")
    return "  \n".join(lines)


def exact_clause_id(assistant: Any, query: str) -> str | None:
    """The clause an exact reference in the query names ("登记条例第三十三条"), the way retrieval
    routes it; None when the query is not one. Lets the operator tab set it apart from mere matches."""
    names = getattr(getattr(assistant, "searcher", None), "names", None)
    if names is None:
        return None
    ref = parse_reference(query, names)
    if ref is None or ref.doc_id is None or ref.article is None:
        return None
    return f"{ref.doc_id}#{ref.article}"


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


def short_names_of(assistant: Any) -> dict[str, str]:
    """doc_id → the short name used in an answer's 依据 line (empty when the index does not say)."""
    documents = getattr(getattr(assistant, "index", None), "documents", None) or {}
    return {doc_id: short_title(meta.title, tuple(meta.short_names)) for doc_id, meta in documents.items()}


# ---- the Blocks ------------------------------------------------------------------------------


def _unavailable(exc: Exception) -> str:
    return f"⚠️ 索引尚未就绪：{exc}。请先运行 `policy-qa build` 构建索引，然后刷新页面。"


def build_demo(holder: AssistantHolder, store: FeedbackStore) -> gr.Blocks:
    """The UI: a chat tab and an operator tab; every call goes through `holder.get()`."""
    recent = RecentAnswers()
    max_chars = holder.settings.max_question_chars

    def respond(message: str, history: list[dict], mode: str | None = None) -> Iterator[list[gr.ChatMessage] | str]:
        question = (message or "").strip()
        if not question:
            yield "请输入您的问题。"
            return
        if len(question) > max_chars:
            yield f"问题过长（{len(question)} 字），请控制在 {max_chars} 字以内。"
            return
        try:
            assistant = holder.get()
        except IndexError_ as exc:
            yield _unavailable(exc)
            return
        text, answer = "", None
        try:
            turns = history_turns(history, recent) or None
            for event in assistant.stream(question, history=turns, mode=mode or None):
                if event.event == "token":
                    text += str(event.data.get("text", ""))
                    yield [gr.ChatMessage(role="assistant", content=text)]
                elif event.event == "done":
                    answer = Answer.model_validate(event.data)
                elif event.event == "error":
                    yield f"抱歉，处理失败：{event.data.get('message', '未知错误')}"
                    return
        except QuestionError as exc:
            yield f"这个问题无法处理：{exc}"
            return
        except PolicyQAError as exc:
            yield f"抱歉，处理失败：{exc}"
            return
        if answer is None:
            yield "抱歉，没有得到答案，请稍后重试。"
            return
        answer_id = recent.put(AnsweredTurn(question, answer.answer, [c.clause_id for c in answer.citations]))
        yield answer_messages(answer, answer_id, short_names_of(assistant))

    def on_like(messages: list[dict], data: gr.LikeData):
        if not isinstance(data.liked, bool):  # a rating withdrawn
            return None, gr.update(visible=False), ""
        turn = _rated_turn(messages, data.index, recent)
        if turn is None:
            return None, gr.update(visible=False), ""
        try:
            entry = store.add("like" if data.liked else "dislike", turn.question, turn.answer, turn.clause_ids)
        except (FeedbackStorageError, FeedbackTooLargeError) as exc:
            logger.warning("feedback not stored: %s", exc)
            gr.Warning("反馈暂时无法保存，请稍后再试。")
            return None, gr.update(visible=False), ""
        gr.Info("感谢反馈！可在下方补充原因（可选）。")
        return entry.id, gr.update(visible=True), ""

    def on_reason(feedback_id: str | None, reason: str):
        if feedback_id and reason.strip():
            try:
                store.add_reason(feedback_id, reason)
            except (FeedbackStorageError, FeedbackTooLargeError) as exc:
                logger.warning("feedback reason not stored: %s", exc)
                gr.Warning("原因暂时无法保存（过长或存储不可写），请精简后再试。")
                return feedback_id, gr.update(visible=True), reason
            gr.Info("原因已记录，谢谢！")
        return None, gr.update(visible=False), ""

    def load_page():
        try:
            docs = holder.get().documents()
        except IndexError_ as exc:
            return gr.update(value=_unavailable(exc), visible=True), gr.update(), gr.update()
        choices = [("全部文件", "")] + [(d.title, d.doc_id) for d in docs]
        return gr.update(visible=False), gr.update(choices=choices, value=""), documents_html(docs)

    def run_search(query: str, doc_id: str, k: float):
        query = (query or "").strip()
        if not query:
            return [], "请输入检索词，例如“简易注销”或“登记条例第三十三条”。"
        try:
            assistant = holder.get()
            hits = assistant.search(query[:max_chars], doc_id=doc_id or None, k=int(k))
        except IndexError_ as exc:
            return [], _unavailable(exc)
        except PolicyQAError as exc:
            return [], f"检索失败：{exc}"
        if not hits:
            return [], "没有找到相关条文，请换个说法或取消文件限定。"
        exact = exact_clause_id(assistant, query[:max_chars])
        found = [dict(h.model_dump(mode="json"), exact=h.citation.clause_id == exact) for h in hits]
        if any(h["exact"] for h in found):
            return found, f"找到引用的条文，另有 {len(found) - 1} 条相关条文："
        return found, f"找到 {len(found)} 条相关条文："

    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_height=True) as demo:
        gr.Markdown(
            f"## {TITLE}\n依据厦门营商环境行动方案及相关国家法律法规作答：点击答案中的 [n] 可查看条文原文，"
            "引用的句子已高亮。仅供参考，以官方发布的文件为准。Enter 发送，Shift+Enter 换行，Ctrl+K 检索条文。",
            elem_id="page-header",
        )
        banner = gr.Markdown(visible=False, elem_id="index-banner")
        with gr.Tabs():
            with gr.Tab("政策咨询", id="chat"):
                chatbot = gr.Chatbot(
                    label="政策问答",
                    show_label=False,
                    height="62vh",
                    placeholder="**您好！** 我可以解答厦门营商环境政策和相关法规问题，答案会标注出处 [n]。",
                    feedback_options=("Like", "Dislike"),
                    latex_delimiters=[],
                    # webui.js scrolls a new answer's start into view; Gradio's autoscroll would jump
                    # to the end of its (open) sources.
                    autoscroll=False,
                    # Per-message copy only (webui.js makes it copy an answer as text, not its HTML).
                    buttons=["copy"],
                    elem_id="chatbot",
                )
                with_llm = llm_configured(holder.settings)
                mode = gr.Radio(
                    [("大模型生成（逐句核对出处）", "generative"), ("条文原句摘录", "extractive")],
                    value="generative" if with_llm else "extractive",
                    label="回答方式", visible=with_llm, elem_id="answer-mode",
                )
                gr.ChatInterface(
                    respond,
                    chatbot=chatbot,
                    additional_inputs=[mode],
                    textbox=gr.Textbox(placeholder="请输入问题，例如：简易注销怎么办理？", submit_btn="发送",
                                       stop_btn="停止", elem_id="question"),
                    # None for the mode keeps the examples inside the chat and running on click,
                    # with whatever answer mode is selected at the time.
                    examples=[[example, None] for example in EXAMPLES],
                    run_examples_on_click=True,
                    cache_examples=False,
                    fill_height=True,
                    api_name="ask",
                    show_progress="minimal",
                )
                with gr.Row(visible=False, elem_id="reason-row") as reason_row:
                    reason = gr.Textbox(label="补充原因（可选）", placeholder="例如：答非所问、引用条文不对、信息已过时",
                                        scale=4, elem_id="feedback-reason")
                    reason_btn = gr.Button("提交原因", scale=1, elem_id="feedback-submit")
                feedback_id = gr.State(None)
                chatbot.like(on_like, [chatbot], [feedback_id, reason_row, reason])
                reason_btn.click(on_reason, [feedback_id, reason], [feedback_id, reason_row, reason])
                reason.submit(on_reason, [feedback_id, reason], [feedback_id, reason_row, reason])

            with gr.Tab("条文检索（坐席）", id="operator"):
                gr.Markdown("输入关键词检索条文，或直接输入条文引用，例如“登记条例第三十三条”。点击卡片右上角的复制按钮即可复制条文原文。")
                with gr.Row():
                    query = gr.Textbox(label="检索词或条文", placeholder="如：简易注销、带押过户、登记条例第三十三条",
                                       scale=4, elem_id="search-query")
                    doc = gr.Dropdown(label="限定文件", choices=[("全部文件", "")], value="", scale=2,
                                      elem_id="search-doc")
                    k = gr.Slider(1, 20, value=8, step=1, label="返回条数", scale=1)
                search_btn = gr.Button("检索", variant="primary", elem_id="search-button")
                status = gr.Markdown(elem_id="search-status")
                hits_state = gr.State([])

                @gr.render(inputs=hits_state)
                def render_hits(hits: list[dict]) -> None:
                    exact = [h for h in hits if h.get("exact")]
                    rest = [h for h in hits if not h.get("exact")]
                    if exact:
                        gr.Markdown("#### 精确匹配", elem_id="exact-heading", elem_classes=["hits-heading"])
                        _hit_cards(exact, "exact-match")
                    if exact and rest:
                        gr.Markdown("#### 相关条文", elem_id="related-heading", elem_classes=["hits-heading"])
                    _hit_cards(rest, "related-match")

                for trigger in (search_btn.click, query.submit):
                    trigger(run_search, [query, doc, k], [hits_state, status], api_name=False)

                with gr.Accordion("收录文件", open=False, elem_id="documents"):
                    docs_table = gr.HTML(js_on_load=None, elem_id="documents-table")

            with gr.Tab("知识库管理", id="admin"):
                if holder.settings.admin_token:
                    gr.HTML(ADMIN_HTML_PATH.read_text(encoding="utf-8"), elem_id="kb-admin-panel")
                else:
                    gr.Markdown("**知识库管理未开启。** 需要在服务器上设置运维令牌 `POLICY_QA_ADMIN_TOKEN` 并重启服务；"
                                "未设置时上传、下架等变更一律关闭，问答与检索不受影响。", elem_id="kb-admin-off")
        demo.load(load_page, None, [banner, doc, docs_table], api_name=False)
    return demo


def _hit_cards(hits: list[dict], kind: str) -> None:
    """Operator cards (inside gr.render): header, then the clause in a read-only box with a copy button."""
    for raw in hits:
        hit = SearchHit.model_validate(raw)
        with gr.Group(elem_classes=["clause-card", kind]):
            gr.Markdown(hit_header(hit), padding=True)
            gr.Textbox(value=hit.citation.text, label="条文原文", interactive=False,
                       lines=min(12, max(2, len(hit.citation.text) // 60 + 1)),
                       max_lines=20, buttons=["copy"])


def _rated_turn(messages: list[dict], index: Any, recent: RecentAnswers) -> AnsweredTurn | None:
    """The question and answer behind a rated chat message (the answer or its sources accordion)."""
    i = index[0] if isinstance(index, (list, tuple)) else index
    if not isinstance(i, int) or not 0 <= i < len(messages):
        return None
    while i >= 0 and messages[i].get("role") == "assistant" and (messages[i].get("metadata") or {}).get("title"):
        i -= 1  # from the sources accordion back to the answer itself
    if i < 0 or messages[i].get("role") != "assistant":
        return None
    known = recent.get((messages[i].get("metadata") or {}).get("id"))
    if known is not None:
        return known
    question = next((_text_of(m.get("content")) for m in reversed(messages[:i]) if m.get("role") == "user"), "")
    return AnsweredTurn(question, message_text(messages[i]), []) if question else None


# ---- the one-port server ---------------------------------------------------------------------


UI_CONCURRENCY = 8      # events answered at once (the API benchmark's 8 clients; embeddings share 2 cores)
UI_QUEUE_SIZE = 256     # events waiting beyond that; more are refused with "queue full" rather than piling up
# The page has no upload control, so Gradio's upload route has nothing to receive: anything larger than
# a tiny form part is refused (it once accepted 10 MB from anyone and kept it).
UI_MAX_UPLOAD = "1kb"


def page_head() -> str:
    """webui.js for the page <head>: citations that jump to their source, copy buttons, Ctrl+K, and
    the phone layout's sources closed by default. Read from a file, not kept in a Python string."""
    scripts = (JS_PATH, ADMIN_JS_PATH)
    return "".join(f"<script>\n{path.read_text(encoding='utf-8')}\n</script>" for path in scripts)


@dataclass
class Server:
    app: FastAPI
    demo: gr.Blocks
    holder: AssistantHolder


def build_server(settings: Settings | None = None) -> Server:
    """API + UI on one FastAPI app: UI at /, API under /api, OpenAI-compatible under /v1."""
    settings = settings or get_settings()
    holder = AssistantHolder(settings)
    app = create_app(settings, holder=holder)
    demo = build_demo(holder, app.state.feedback)
    # Gradio answers one event at a time by default: one slow generative answer would hold up every
    # user. The API serves requests in parallel; the page does the same, up to UI_CONCURRENCY at once.
    demo.queue(default_concurrency_limit=UI_CONCURRENCY, max_size=UI_QUEUE_SIZE)
    app = gr.mount_gradio_app(app, demo, path="/", theme=THEME, css_paths=[CSS_PATH], head=page_head(),
                              footer_links=[], show_error=True, ssr_mode=False, max_file_size=UI_MAX_UPLOAD)
    return Server(app=app, demo=demo, holder=holder)


def urls(host: str, port: int) -> dict[str, str]:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}"
    return {"聊天页面": f"{base}/", "API 文档": f"{base}/docs", "OpenAI 兼容接口": f"{base}/v1",
            "健康检查": f"{base}/healthz"}


def run_server(server: Server, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve an already built UI + API app with uvicorn, printing the URLs (blocks until stopped)."""
    import uvicorn  # noqa: PLC0415

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logging.getLogger("assistant").addHandler(handler)
    logging.getLogger("assistant").setLevel(logging.INFO)
    access = logging.getLogger("assistant.access")  # one JSON object per line, nothing around it
    access.propagate = False
    plain = logging.StreamHandler()
    plain.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(plain)
    print(f"{TITLE} 正在启动（首次加载索引需几秒钟）：", flush=True)
    for name, url in urls(host, port).items():
        print(f"  {name}：{url}", flush=True)
    uvicorn.run(server.app, host=host, port=port, log_level="info", access_log=False)


def serve(host: str = "127.0.0.1", port: int = 7860, settings: Settings | None = None) -> None:
    """Build and run UI and API in this process on one port (what `policy-qa serve` does)."""
    run_server(build_server(settings), host, port)
