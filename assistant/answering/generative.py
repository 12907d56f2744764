"""The generative mode behind `Assistant.ask/stream`: retrieval and abstention as in the extractive mode,
then the LLM chain, the grounding check, and the extractive answer whenever the model cannot be trusted.

Why the extractive answer is computed first, for every generative question: it carries the abstention
verdict (so the model is never asked about what the corpus does not cover, and both modes abstain on
exactly the same questions) and it is the ready-made fallback when the model is unreachable, slow,
erroring, or says too little that its clauses support.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..errors import QuestionError
from ..schema import Answer, Grounding, StreamEvent, Timings, Turn
from .compose import version_notices

if TYPE_CHECKING:
    from ..service import Assistant
    from .generate import Generation, Retrieved

MODES = ("extractive", "generative")
NOTICE_NO_LLM = "未配置大模型服务（POLICY_QA_LLM_BASE_URL），已按条款摘录方式回答。"


def resolve_mode(mode: str | None, llm_available: bool) -> str:
    """The mode to use: generative by default when an LLM is configured, extractive otherwise."""
    if mode is None or mode == "":
        return "generative" if llm_available else "extractive"
    if mode not in MODES:
        raise QuestionError(f"不支持的回答模式“{mode}”：请选择 extractive（条款摘录）或 generative（大模型生成）。")
    return mode


class _Run:
    """One generative question: the closure handed to the chain as its retrieval step."""

    def __init__(self, assistant: Assistant, question: str, history: Sequence[Turn] | None,
                 top_k: int | None, method: str) -> None:
        self.assistant = assistant
        self.question = question
        self.history = list(history or [])
        self.top_k = top_k
        self.method = method
        self.started = time.perf_counter()
        self.retrieved_at: float | None = None
        self.dropped: list = []

    def extractive(self) -> Answer:
        """The plain extractive answer (used when nothing was retrieved because condensing failed)."""
        return self.assistant.ask(self.question, history=self.history or None, top_k=self.top_k,
                                  method=self.method, mode="extractive")

    def retrieve(self, standalone: str) -> Retrieved:
        """Extractive answer (abstention verdict + fallback), then the top-k clauses numbered 1..k."""
        from .generate import Retrieved

        a = self.assistant
        k = self.top_k or a.settings.top_k
        if self.history and standalone != self.question:  # the model condensed a follow-up
            fallback = a.ask(standalone, top_k=self.top_k, method=self.method, mode="extractive")
            query = standalone
        else:
            fallback = self.extractive()
            query = a.retrieval_query(self.question, self.history or None)
        fallback = fallback.model_copy(update={"question": self.question})
        if fallback.abstained:
            self.retrieved_at = time.perf_counter()
            return Retrieved(query, [], True, fallback)
        hits, self.dropped = a._prefer_in_force(a.searcher.retrieve(query, k=k, method=self.method).hits)  # noqa: SLF001
        citations = [a._citation(i + 1, h) for i, h in enumerate(hits[:k])]  # noqa: SLF001
        self.retrieved_at = time.perf_counter()
        return Retrieved(query, citations, False, fallback)

    def answer(self, generation: Generation) -> Answer:
        """The Answer users get from a finished generation, whichever way it went."""
        from .generate import NOTICE_FAILED

        if generation.retrieved is None:  # condensation failed before retrieval
            answer = self.extractive()
            answer.notices.insert(0, generation.error or NOTICE_FAILED)
            return answer
        fallback: Answer = generation.retrieved.payload
        if generation.retrieved.abstained:
            return self._timed(fallback)
        grounding = Grounding.model_validate(generation.grounding.report())
        notice = generation.notice()
        if generation.usable:
            cited = generation.cited
            index = self.assistant.index
            metas = [index.documents[d] for d in dict.fromkeys(c.doc_id for c in cited)]
            answer = Answer(
                question=self.question, answer=generation.text, abstained=False, citations=cited,
                notices=version_notices(metas, self.dropped) + ([notice] if notice else []),
                mode="generative", grounding=grounding,
            )
            return self._timed(answer)
        return self._timed(fallback.model_copy(update={
            "notices": [notice or NOTICE_FAILED, *fallback.notices],
            "grounding": None if generation.error else grounding,
            "mode": "extractive",
        }))

    def _timed(self, answer: Answer) -> Answer:
        done = time.perf_counter()
        retrieved_at = self.retrieved_at or self.started
        answer.timings_ms = Timings(
            retrieve_ms=round((retrieved_at - self.started) * 1000, 2),
            answer_ms=round((done - retrieved_at) * 1000, 2),
            total_ms=round((done - self.started) * 1000, 2),
        )
        return answer


def ask_generative(assistant: Assistant, question: str, history: Sequence[Turn] | None,
                   top_k: int | None, method: str) -> Answer:
    """`Assistant.ask` in generative mode; `question` is already validated."""
    run = _Run(assistant, question, history, top_k, method)
    if assistant.generator is None:
        answer = run.extractive()
        answer.notices.insert(0, NOTICE_NO_LLM)
        return answer
    return run.answer(assistant.generator.generate(question, run.retrieve, history))


def stream_generative(assistant: Assistant, question: str, history: Sequence[Turn] | None,
                      top_k: int | None, method: str) -> Iterator[StreamEvent]:
    """`Assistant.stream` in generative mode: sources, then each grounded sentence, then done.

    The `done` event carries the whole final Answer and is authoritative: when the extractive answer
    replaces a generation that failed midway, its text and citations supersede what was streamed.
    """
    run = _Run(assistant, question, history, top_k, method)
    if assistant.generator is None:
        answer = run.extractive()
        answer.notices.insert(0, NOTICE_NO_LLM)
        yield from replay(answer)
        return
    sources_sent = tokens_sent = False
    answer: Answer | None = None
    for event in assistant.generator.run(question, run.retrieve, history):
        if event.kind == "sources" and not event.data.abstained:
            yield _sources(event.data.citations)
            sources_sent = True
        elif event.kind == "token":
            yield StreamEvent(event="token", data={"text": event.data})
            tokens_sent = True
        elif event.kind == "done":
            answer = run.answer(event.data)
    if answer is None:  # Generator.run always ends with done; this only guards a broken contract
        raise RuntimeError("the generator stream ended without a done event")
    if not sources_sent:  # abstained, or condensing failed: the extractive answer, streamed as usual
        yield from replay(answer)
        return
    if answer.mode != "generative" and not tokens_sent:  # fallback before any generated sentence
        for piece in _pieces(answer.answer):
            yield StreamEvent(event="token", data={"text": piece})
    yield StreamEvent(event="done", data=answer.model_dump(mode="json"))


def _sources(citations: list) -> StreamEvent:
    return StreamEvent(event="sources", data={"citations": [c.model_dump(mode="json") for c in citations]})


def _pieces(text: str) -> list[str]:
    return [p for p in re.findall(r"[^。；！？\]]*(?:[。；！？]|\])|.+$", text) if p]


def replay(answer: Answer) -> Iterator[StreamEvent]:
    """A finished Answer as a stream: its sources (or related clauses), its sentences, done."""
    yield _sources(answer.related if answer.abstained else answer.citations)
    for piece in _pieces(answer.answer):
        yield StreamEvent(event="token", data={"text": piece})
    yield StreamEvent(event="done", data=answer.model_dump(mode="json"))
