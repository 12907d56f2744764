"""The generative composer: the LLM chain over the clauses the pipeline retrieved, the grounding check,
and the pipeline's extractive answer whenever the model cannot be trusted.

It receives the pipeline, not the Assistant: the chain's retrieval step is `AnswerPipeline.prepare`,
run once on the (condensed) question, and the `Prepared` it returns carries both the scope decision (a
declined question never reaches the model, so both modes decline exactly the same questions) and the
ready extractive answer (the fallback when the model is unreachable, slow, erroring, or says too little
that its clauses support).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import QuestionError
from ..schema import (
    Answer,
    Ask,
    Citation,
    Confidence,
    Grounding,
    Mode,
    StreamEvent,
    Timings,
)
from .compose import AS_OF_NOTICE, LOW_CONFIDENCE_INTRO, LOW_CONFIDENCE_REFERRAL, version_notices

if TYPE_CHECKING:
    from .llm import Generation, Generator, Retrieved
    from .pipeline import AnswerPipeline, Prepared

NOTICE_NO_LLM = "未配置大模型服务（POLICY_QA_LLM_BASE_URL），已按条款摘录方式回答。"


def resolve_mode(mode: Mode | str | None, llm_available: bool) -> Mode:
    """The mode to use: generative by default when an LLM is configured, extractive otherwise."""
    if mode is None or mode == "":
        return Mode.generative if llm_available else Mode.extractive
    try:
        return Mode(mode)
    except ValueError:
        raise QuestionError(f"不支持的回答模式“{mode}”：请选择 extractive（条款摘录）或 generative（大模型生成）。") from None


class GenerativeComposer:
    """One generative question: condense → `pipeline.prepare` (once) → model → grounded answer."""

    def __init__(self, pipeline: AnswerPipeline, generator: Generator, ask: Ask) -> None:
        self.pipeline = pipeline
        self.generator = generator
        self.ask_request = ask
        self.question = ask.question
        self.history = list(ask.history)
        self.as_of = ask.as_of
        self.started = time.perf_counter()
        self.retrieved_at: float | None = None
        self.prepared: Prepared | None = None

    def retrieve(self, standalone: str) -> Retrieved:
        """The chain's retrieval step: the pipeline once, then its hits numbered 1..k for the prompt."""
        from .llm import Retrieved

        condensed = bool(self.history) and standalone != self.question
        ask = self.ask_request.model_copy(update={"history": ()}) if condensed else self.ask_request
        self.prepared = self.pipeline.prepare(ask, query=standalone if condensed else None)
        self.retrieved_at = time.perf_counter()
        declined = self.prepared.decision.confidence is Confidence.declined
        k = self.ask_request.top_k or self.pipeline.settings.top_k
        citations = [] if declined else [self.pipeline.citation(i + 1, h) for i, h in enumerate(self.prepared.hits[:k])]
        return Retrieved(self.prepared.query, citations, declined, self.prepared.answer)

    def answer(self, generation: Generation) -> Answer:
        """The Answer users get from a finished generation, whichever way it went."""
        from .llm import NOTICE_FAILED

        if generation.retrieved is None:  # condensation failed before retrieval: the extractive answer
            fallback = self.pipeline.prepare(self.ask_request).answer
            fallback.notices.insert(0, generation.error or NOTICE_FAILED)
            return self._timed(fallback)
        fallback: Answer = generation.retrieved.payload
        if generation.retrieved.abstained:
            return self._timed(fallback)
        grounding = Grounding.model_validate(generation.grounding.report())
        notice = generation.notice()
        if generation.usable:
            cited = generation.cited
            metas = [self.pipeline.index.documents[d] for d in dict.fromkeys(c.doc_id for c in cited)]
            dropped = self.prepared.dropped if self.prepared else []
            text = generation.text
            if fallback.confidence is Confidence.low:
                text = f"{LOW_CONFIDENCE_INTRO}\n{text}\n{LOW_CONFIDENCE_REFERRAL}"
            notices = version_notices(metas, dropped, self.as_of) + ([notice] if notice else [])
            if self.as_of is not None:
                notices.insert(0, AS_OF_NOTICE.format(day=self.as_of.isoformat()))
            return self._timed(Answer(
                question=self.question, answer=text, abstained=False, confidence=fallback.confidence,
                citations=cited, notices=notices,
                mode=Mode.generative, grounding=grounding,
            ))
        return self._timed(fallback.model_copy(update={
            "notices": [notice or NOTICE_FAILED, *fallback.notices],
            "grounding": None if generation.error else grounding,
            "mode": Mode.extractive,
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

    # --- the two ways to run it -------------------------------------------------------------------

    def ask(self) -> Answer:
        return self.answer(self.generator.generate(self.question, self.retrieve, self.history))

    def stream(self) -> Iterator[StreamEvent]:
        """Sources, then each grounded sentence, then done.

        The `done` event carries the whole final Answer and is authoritative: when the extractive answer
        replaces a generation that failed midway, its text and citations supersede what was streamed.
        """
        sources_sent = tokens_sent = False
        answer: Answer | None = None
        for event in self.generator.run(self.question, self.retrieve, self.history):
            if event.kind == "sources" and not event.data.abstained:
                yield sources_event(event.data.citations)
                sources_sent = True
            elif event.kind == "token":
                yield StreamEvent(event="token", data={"text": event.data})
                tokens_sent = True
            elif event.kind == "done":
                answer = self.answer(event.data)
        if answer is None:  # Generator.run always ends with done; this only guards a broken contract
            raise RuntimeError("the generator stream ended without a done event")
        if not sources_sent:  # declined, or condensing failed: the extractive answer, streamed as usual
            yield from replay(answer)
            return
        if answer.mode is not Mode.generative and not tokens_sent:  # fallback before any generated sentence
            for piece in _pieces(answer.answer):
                yield StreamEvent(event="token", data={"text": piece})
        yield StreamEvent(event="done", data=answer.model_dump(mode="json"))


def sources_event(citations: list[Citation]) -> StreamEvent:
    return StreamEvent(event="sources", data={"citations": [c.model_dump(mode="json") for c in citations]})


def _pieces(text: str) -> list[str]:
    return [p for p in re.findall(r"[^。；！？\]]*(?:[。；！？]|\])|.+$", text, flags=re.DOTALL) if p]


def replay(answer: Answer) -> Iterator[StreamEvent]:
    """A finished Answer as a stream: its sources (or related clauses), its sentences, done."""
    yield sources_event(answer.related if answer.abstained else answer.citations)
    for piece in _pieces(answer.answer):
        yield StreamEvent(event="token", data={"text": piece})
    yield StreamEvent(event="done", data=answer.model_dump(mode="json"))
