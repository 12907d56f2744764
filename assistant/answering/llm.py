"""Generative answers: an LCEL chain over any OpenAI-compatible chat model, checked sentence by sentence.

The chain is what `create_retrieval_chain` builds, written with langchain-core alone:

    {question, history}
      | assign(standalone=condense)      follow-ups become standalone questions (LLM, only with history)
      | assign(retrieved=retrieve)       the caller's retrieval: numbered clauses + abstention verdict
      | assign(answer=route)             "" when retrieval abstained (the LLM is never called), else
                                         prompt | chat model | str

so the retrieved clauses travel with the answer and stream before its first token. `Generator.run`
consumes that stream and turns it into events: `sources`, then one `token` per sentence that passes
the grounding check (unsupported text is never shown, not even for a moment), then `done` with the
whole verdict. Deciding what to do when the model fails or too little survives (fall back to the
extractive answer) is the service's job; this module only reports it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from ..config import Settings, data_dir
from ..errors import ExtraMissingError, PromptError
from ..schema import Citation, Turn
from .grounding import (
    DEFAULT_MIN_SUPPORT,
    GroundingResult,
    SentenceCheck,
    check_sentence,
    citation_texts,
    has_content,
    split_sentences,
    strip_markers,
    support,
)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

PROMPTS_DIR = data_dir("prompts")
PROMPT_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "system": frozenset(),
    "answer": frozenset({"context", "question"}),
    "condense": frozenset({"history", "question"}),
}
MIN_KEPT_SHARE = 0.5
"""Below this share of surviving sentences the generated answer is too thin to show."""
HISTORY_TURNS = 6
"""Earlier turns given to the condensation prompt: enough for a follow-up, short enough to stay cheap."""
HISTORY_TURN_CHARS = 300

NOTICE_TIMEOUT = "大模型服务响应超时，以下为直接摘录的条款原文答案。"
NOTICE_UNREACHABLE = "暂时无法连接大模型服务，以下为直接摘录的条款原文答案。"
NOTICE_HTTP = "大模型服务返回错误（HTTP {status}），以下为直接摘录的条款原文答案。"
NOTICE_FAILED = "大模型服务出错，以下为直接摘录的条款原文答案。"
NOTICE_UNGROUNDED = "生成的回答未能通过条款核对，以下为直接摘录的条款原文答案。"
NOTICE_REMOVED = "已删除 {count} 句无法在所引条款中核实的内容。"
REDACTED_PROMPT_ECHO = "（该句复述了系统指令，已隐去）"
PROMPT_ECHO_SUPPORT = 0.5
"""A removed sentence this close to our own prompts is an instruction leak: its text is not reported."""


# ---------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompts:
    """The three prompt files, checked at load so a typo fails at start rather than mid-request."""

    system: str
    answer: str
    condense: str

    @classmethod
    def load(cls, directory: Path | None = None) -> Prompts:
        """Read `system.txt`, `answer.txt`, `condense.txt` and check each one's placeholders.

        Raises PromptError naming the file and the placeholders missing or unknown; literal braces
        must be doubled ({{ }}) as in any Python format string.
        """
        directory = Path(directory or PROMPTS_DIR)
        texts: dict[str, str] = {}
        for name, expected in PROMPT_PLACEHOLDERS.items():
            path = directory / f"{name}.txt"
            try:
                text = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise PromptError(f"prompt file {path} cannot be read: {exc}") from exc
            try:
                found = frozenset(PromptTemplate.from_template(text).input_variables)
            except ValueError as exc:
                raise PromptError(f"prompt file {path} is not a valid template: {exc}") from exc
            if found != expected:
                raise PromptError(
                    f"prompt file {path} must use exactly the placeholders "
                    f"{sorted(expected) or 'none'}; missing {sorted(expected - found)}, "
                    f"unknown {sorted(found - expected)}"
                )
            texts[name] = text
        return cls(**texts)

    def answer_prompt(self) -> ChatPromptTemplate:
        return ChatPromptTemplate.from_messages([("system", self.system), ("human", self.answer)])

    def condense_prompt(self) -> ChatPromptTemplate:
        return ChatPromptTemplate.from_messages([("human", self.condense)])


def format_context(citations: Sequence[Citation]) -> str:
    """The numbered clauses as the model sees them: [n] 《title》label (文号, status), then the text."""
    blocks = []
    for c in citations:
        facts = "，".join(x for x in (c.doc_number, f"{c.effective}起施行" if c.effective else None, c.status_zh) if x)
        blocks.append(f"[{c.n}] 《{c.doc_title}》{c.label}（{facts}）\n{c.text.strip()}")
    return "\n\n".join(blocks)


def format_history(history: Sequence[Turn]) -> str:
    """The last few turns as plain lines; citation markers are dropped (they mean nothing here)."""
    lines = []
    for turn in list(history)[-HISTORY_TURNS:]:
        who = "用户" if turn.role == "user" else "助手"
        lines.append(f"{who}：{strip_markers(turn.content).strip()[:HISTORY_TURN_CHARS]}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The chat model
# ---------------------------------------------------------------------------------------------


def llm_configured(settings: Settings) -> bool:
    """Whether an OpenAI-compatible endpoint is set; the generative mode is the default only then."""
    return bool(settings.llm_base_url)


def make_chat_model(settings: Settings) -> BaseChatModel:
    """A ChatOpenAI client for the configured endpoint (vLLM, Ollama, llama.cpp, DeepSeek, Qwen…).

    Imported lazily: langchain-openai is the optional extra `llm`. No retries, because a retry
    doubles the wait before the extractive fallback; the timeout bounds every request.
    """
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise ExtraMissingError("langchain-openai", "llm", "The generative answer mode") from exc
    if not settings.llm_base_url:
        raise PromptError("POLICY_QA_LLM_BASE_URL is not set: the generative mode needs an endpoint")
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model or "default",
        api_key=settings.llm_api_key or "not-needed",  # local servers ignore it; the client needs one
        temperature=settings.llm_temperature,
        timeout=settings.llm_timeout_s,
        max_retries=0,
        stream_usage=False,
    )


def failure_notice(exc: BaseException) -> str:
    """A Chinese notice for a failed model call, by kind: timeout, unreachable, HTTP status, other."""
    if isinstance(exc, _Deadline):
        return NOTICE_TIMEOUT
    try:
        import httpx
        import openai
    except ImportError:  # the extra is missing; any failure is a plain failure then
        return NOTICE_FAILED
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)):
        return NOTICE_TIMEOUT
    if isinstance(exc, openai.APIStatusError):
        return NOTICE_HTTP.format(status=exc.status_code)
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError, ConnectionError)):
        return NOTICE_UNREACHABLE
    return NOTICE_FAILED


class _Deadline(Exception):
    """The model kept streaming past the overall time budget."""


class _ModelFailure(Exception):
    """Raised from the condensation step with the model's exception as its cause."""


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass
class Retrieved:
    """What the caller's retrieval returns: clauses numbered 1..k as the prompt shows them.

    `payload` carries anything the caller wants back with the result (e.g. its extractive answer,
    ready as the fallback) without this module knowing its type.
    """

    question: str
    citations: list[Citation]
    abstained: bool
    payload: Any = None


@dataclass
class Generation:
    """The outcome of one generative run, whatever happened."""

    question: str
    standalone: str | None = None
    retrieved: Retrieved | None = None
    raw: str = ""
    kept: list[SentenceCheck] = field(default_factory=list)
    removed: list[SentenceCheck] = field(default_factory=list)
    error: str | None = None
    """A Chinese notice when the model failed (timeout, unreachable, HTTP error)."""
    llm_called: bool = False

    @property
    def grounding(self) -> GroundingResult:
        return GroundingResult(list(self.kept), list(self.removed))

    @property
    def text(self) -> str:
        """The answer made of the kept sentences."""
        return self.grounding.text

    @property
    def usable(self) -> bool:
        """Whether to show this answer rather than the extractive one."""
        g = self.grounding
        return self.error is None and bool(g.kept) and g.kept_share >= MIN_KEPT_SHARE

    @property
    def cited(self) -> list[Citation]:
        """The retrieved clauses the kept sentences cite, with their prompt numbers."""
        numbers = set(self.grounding.cited)
        return [c for c in (self.retrieved.citations if self.retrieved else []) if c.n in numbers]

    def notice(self) -> str | None:
        """Why the extractive answer replaces this one, or what was removed; None when all is well."""
        if self.error:
            return self.error
        if self.retrieved is None or self.retrieved.abstained:
            return None
        if not self.usable:
            return NOTICE_UNGROUNDED
        if self.removed:
            return NOTICE_REMOVED.format(count=len(self.removed))
        return None


@dataclass(frozen=True)
class Event:
    """One step of `Generator.run`: kind 'sources' (Retrieved), 'token' (str) or 'done' (Generation)."""

    kind: str
    data: Any


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------

_MARKER_CHARS_RE = re.compile(r"[\s\[\]【】［］\d,，、\-–~～]")


def _started(piece: str) -> bool:
    """Whether a sentence fragment holds content, not just (the start of) citation markers."""
    return bool(_MARKER_CHARS_RE.sub("", strip_markers(piece)))


class Generator:
    """Answers from retrieved clauses with a chat model and keeps only what the clauses support."""

    def __init__(
        self,
        llm: BaseChatModel,
        prompts: Prompts | None = None,
        *,
        min_support: float = DEFAULT_MIN_SUPPORT,
        budget_s: float = 60.0,
        max_question_chars: int = 500,
    ) -> None:
        self.llm = llm
        self.prompts = prompts or Prompts.load()
        self.min_support = min_support
        self.budget_s = budget_s
        self.max_question_chars = max_question_chars
        self._answer = (
            RunnableLambda(self._answer_inputs) | self.prompts.answer_prompt() | llm | StrOutputParser()
        )
        self._condense = self.prompts.condense_prompt() | llm | StrOutputParser()
        self._prompt_texts = (self.prompts.system, self.prompts.answer, self.prompts.condense)

    @classmethod
    def from_settings(cls, settings: Settings, prompts_dir: Path | None = None) -> Generator:
        """The generator for the configured endpoint; prompts are loaded and checked here, at start.

        The overall budget for one streamed answer is twice the request timeout: the timeout bounds
        each wait for a byte, the budget bounds a model that trickles tokens forever.
        """
        return cls(
            make_chat_model(settings),
            Prompts.load(prompts_dir),
            budget_s=2 * settings.llm_timeout_s,
            max_question_chars=settings.max_question_chars,
        )

    # -- pieces of the chain ------------------------------------------------------------------

    def condense(self, question: str, history: Sequence[Turn] | None) -> str:
        """A standalone question from a follow-up and its history; the question itself without history.

        Model failures propagate (the caller falls back). A reply that is empty or longer than a
        question may be is ignored in favour of the original question.
        """
        if not history or not any(t.role == "user" for t in history):
            return question
        reply = self._condense.invoke({"history": format_history(history), "question": question})
        reply = strip_markers(reply).strip().splitlines()[0].strip() if reply.strip() else ""
        return reply if 0 < len(reply) <= self.max_question_chars else question

    def _condense_step(self, inputs: dict[str, Any]) -> str:
        """`condense` inside the chain; a model failure here is marked so `run` can tell it from ours."""
        try:
            return self.condense(inputs["question"], inputs.get("history"))
        except Exception as exc:
            raise _ModelFailure() from exc

    def _answer_inputs(self, inputs: dict[str, Any]) -> dict[str, str]:
        return {"context": format_context(inputs["retrieved"].citations), "question": inputs["standalone"]}

    def _route(self, inputs: dict[str, Any]) -> Runnable | str:
        """Never call the model when retrieval abstained or found nothing to cite."""
        retrieved: Retrieved = inputs["retrieved"]
        if retrieved.abstained or not retrieved.citations:
            return ""
        return self._answer

    def chain(self, retrieve: Callable[[str], Retrieved]) -> Runnable[dict[str, Any], dict[str, Any]]:
        """{question, history} → {question, history, standalone, retrieved, answer}; see module doc."""
        return (
            RunnablePassthrough.assign(standalone=RunnableLambda(self._condense_step))
            | RunnablePassthrough.assign(retrieved=RunnableLambda(lambda x: retrieve(x["standalone"])))
            | RunnablePassthrough.assign(answer=RunnableLambda(self._route))
        )

    # -- running it ---------------------------------------------------------------------------

    def run(
        self,
        question: str,
        retrieve: Callable[[str], Retrieved],
        history: Sequence[Turn] | None = None,
    ) -> Iterator[Event]:
        """Stream `sources`, then each grounded sentence as a `token`, then `done` with the Generation.

        Model failures (before or after retrieval) end the stream early with `Generation.error` set;
        errors from `retrieve` itself are ours, not the model's, and propagate.
        """
        result = Generation(question=question)
        texts: dict[int, str] = {}
        buffer = ""
        start = time.monotonic()
        stream = self.chain(retrieve).stream({"question": question, "history": list(history or [])})
        try:
            for chunk in stream:
                if "standalone" in chunk:
                    result.standalone = chunk["standalone"]
                if "retrieved" in chunk:
                    result.retrieved = chunk["retrieved"]
                    texts = citation_texts(result.retrieved.citations)
                    result.llm_called = not (result.retrieved.abstained or not result.retrieved.citations)
                    start = time.monotonic()  # the budget is the model's: retrieval time does not count
                    yield Event("sources", result.retrieved)
                if chunk.get("answer"):
                    result.raw += chunk["answer"]
                    buffer += chunk["answer"]
                    sentences = split_sentences(buffer)
                    if len(sentences) > 1 and _started(sentences[-1]):
                        for sentence in sentences[:-1]:
                            yield from self._judge(sentence, texts, result)
                        buffer = buffer[buffer.rfind(sentences[-1]):]
                    if time.monotonic() - start > self.budget_s:
                        raise _Deadline()
        except _ModelFailure as exc:  # condensation failed: nothing retrieved yet
            result.error = failure_notice(exc.__cause__ or exc)
        except Exception as exc:
            if result.retrieved is None:  # retrieval is ours: its errors are bugs or bad input
                raise
            result.error = failure_notice(exc)  # after retrieval only the model stage can fail
        finally:
            stream.close()
        if result.error is None:
            for sentence in split_sentences(buffer):
                yield from self._judge(sentence, texts, result)
        yield Event("done", result)

    def _judge(self, sentence: str, texts: dict[int, str], result: Generation) -> Iterator[Event]:
        """Check one finished sentence; yield it as a token only when its cited clauses support it."""
        if not has_content(sentence):
            return
        check = check_sentence(sentence, texts, self.min_support)
        if check.reason:
            if support(check.text, self._prompt_texts) >= PROMPT_ECHO_SUPPORT:
                check = replace(check, text=REDACTED_PROMPT_ECHO)  # never hand out our instructions
            result.removed.append(check)
        else:
            result.kept.append(check)
            yield Event("token", check.rendered)

    def generate(
        self,
        question: str,
        retrieve: Callable[[str], Retrieved],
        history: Sequence[Turn] | None = None,
    ) -> Generation:
        """Run to the end and return the Generation (what `ask` needs; `run` is for streaming)."""
        result = Generation(question=question)
        for event in self.run(question, retrieve, history):
            if event.kind == "done":
                result = event.data
        return result

