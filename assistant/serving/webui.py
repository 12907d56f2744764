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

import logging  # noqa: E402
import sqlite3  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402
from collections import OrderedDict  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from ..answering.llm import llm_configured  # noqa: E402
from ..answering.references import parse_reference  # noqa: E402
from ..config import Settings, get_settings  # noqa: E402
from ..errors import IndexError_, PolicyQAError, QuestionError  # noqa: E402
from ..knowledge.labels import LabelStore, RelevanceLabel  # noqa: E402
from ..schema import Answer, Ask, SearchHit, Turn  # noqa: E402
from .api import create_app  # noqa: E402
from .deps import AssistantHolder  # noqa: E402
from .feedback import FeedbackStorageError, FeedbackStore, FeedbackTooLargeError  # noqa: E402
from .ui_render import answer_html, documents_html, hit_header, plain_text, short_title  # noqa: E402

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


def answer_messages(answer: Answer, answer_id: str, short_names: dict[str, str] | None = None) -> list[gr.ChatMessage]:
    """The answer as one chat message (HTML, see answer_html); its id lets a rating find what was rated."""
    return [gr.ChatMessage(role="assistant", content=answer_html(answer, answer_id, short_names),
                           metadata={"id": answer_id})]


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
            request = Ask(question=question, history=tuple(history_turns(history, recent)), mode=mode or None)
            for event in assistant.stream(request):
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

    labels = LabelStore(holder.settings.db_path)

    def add_label(question: str, clause_id: str | None) -> str:
        """Store an operator's judgement on the searched question (training data for the next build)."""
        question = (question or "").strip()[:max_chars]
        if not question:
            return "请先检索一个问题，再标注。"
        try:
            labels.add(RelevanceLabel(operator="ui", question=question, verdict="answers" if clause_id else "none",
                                      clause_id=clause_id))
        except (OSError, sqlite3.Error):
            logger.exception("a relevance label could not be stored")
            return "标注暂时无法保存，请联系管理员检查 POLICY_QA_DB_PATH。"
        return (f"已记录：{clause_id} 答复了“{question}”。" if clause_id
                else f"已记录：检索结果都不能答复“{question}”。") + "下次训练和构建索引时会用到。"

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
                    show_label=False,  # no fixed height: the page scrolls as one (webui.css)
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
                searched = gr.State("")  # the question the shown hits answer: what a label is about
                label_status = gr.Markdown(elem_id="label-status")

                @gr.render(inputs=hits_state)
                def render_hits(hits: list[dict]) -> None:
                    exact = [h for h in hits if h.get("exact")]
                    rest = [h for h in hits if not h.get("exact")]
                    if exact:
                        gr.Markdown("#### 精确匹配", elem_id="exact-heading", elem_classes=["hits-heading"])
                        _hit_cards(exact, "exact-match")  # a lookup by article number teaches nothing
                    if exact and rest:
                        gr.Markdown("#### 相关条文", elem_id="related-heading", elem_classes=["hits-heading"])
                    _hit_cards(rest, "related-match", searched, label_status, add_label)
                    if hits and not exact:
                        none_btn = gr.Button("以上条文都不能答复这个问题", size="sm", elem_id="label-none")
                        none_btn.click(lambda q: add_label(q, None), [searched], [label_status], api_name=False)

                for trigger in (search_btn.click, query.submit):
                    trigger(run_search, [query, doc, k], [hits_state, status], api_name=False).then(
                        lambda q: ((q or "").strip(), ""), [query], [searched, label_status], api_name=False)

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


def _hit_cards(hits: list[dict], kind: str, searched: gr.State | None = None, label_status: gr.Markdown | None = None,
               add_label: Callable[[str, str | None], str] | None = None) -> None:
    """Operator cards (inside gr.render): header, the clause in a read-only box with a copy button, and
    (with `add_label`) a button that records this clause as the one answering the searched question."""
    for raw in hits:
        hit = SearchHit.model_validate(raw)
        with gr.Group(elem_classes=["clause-card", kind]):
            gr.Markdown(hit_header(hit), padding=True)
            gr.Textbox(value=hit.citation.text, label="条文原文", interactive=False,
                       lines=min(12, max(2, len(hit.citation.text) // 60 + 1)),
                       max_lines=20, buttons=["copy"])
            if add_label is None:
                continue
            mark = gr.Button("此条答复了这个问题", size="sm", elem_classes=["label-answers"])
            mark.click(partial(lambda clause_id, q: add_label(q, clause_id), hit.citation.clause_id), [searched],
                       [label_status], api_name=False)


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
