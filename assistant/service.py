"""The Assistant facade: the one entry point the CLI, API, UI and eval all call.

    a = Assistant.load(settings)          # loads index/ once; IndexError_ / IndexStaleError
    a.manifest                            # IndexManifest
    a.ask(Ask(question=..., history=..., as_of=..., mode=...)) -> Answer   (or a.ask("问题", as_of=...))
    a.stream(Ask(...)) -> Iterator[StreamEvent]
    a.search(query, doc_id=None, k=10) -> list[SearchHit]
    a.clause(clause_id) -> Citation       # NotFoundError
    a.documents() -> list[DocumentInfo]

Answering itself lives in answering/: `AnswerPipeline` (retrieval once → ScopeDecision → extractive
answer) and `GenerativeComposer` (the LLM over the same `Prepared`); this class only wires them up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

from .answering.compose import make_citation
from .answering.fitted import Tuning
from .answering.generative import (
    NOTICE_NO_LLM,
    GenerativeComposer,
    replay,
    resolve_mode,
)
from .answering.pipeline import AnswerPipeline
from .answering.reranker import load_reranker
from .answering.retrieval import ClauseSearcher
from .config import Settings, get_settings
from .errors import NotFoundError
from .knowledge.embeddings import ArrayEmbeddings, load_embeddings
from .knowledge.query_tower import QueryTower, load_query_tower
from .knowledge.store import ClauseIndex, IndexManifest, load_index
from .question import validate_question
from .schema import (
    Answer,
    Ask,
    Citation,
    DocumentInfo,
    Mode,
    SearchHit,
    StreamEvent,
    Timings,
)

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .answering.llm import Generator


class Assistant:
    """Loads the index and models once; answers, searches and looks up clauses."""

    def __init__(self, settings: Settings, index: ClauseIndex, embeddings: ArrayEmbeddings,
                 tuning: Tuning | None = None) -> None:
        self.settings = settings
        self.index = index
        self.embeddings = embeddings
        self.tuning = tuning or Tuning.load(settings.index_dir)
        # A relevance model is loaded when the fitted second stage reads it, or before any tuning (which weighs it).
        untuned = "ranker" not in self.tuning.report
        reranker = load_reranker(settings.reranker) if untuned or self.tuning.reranking is not None else None
        reranking = self.tuning.reranking_for(reranker.name if reranker else None)
        self.searcher = ClauseSearcher(index, embeddings, settings.candidate_k, self.tuning.fusion,
                                       settings.query_cache_size, self.tuning.ranker, reranker, reranking,
                                       self._query_tower(settings))
        self.pipeline = AnswerPipeline(settings, index, self.searcher, self.tuning)
        # The generative mode's model client and prompts (checked here, at start); None without an LLM,
        # in which case langchain's chain machinery is never imported (it costs a third of a second).
        self.generator: Generator | None = None
        if settings.llm_base_url:
            from .answering.llm import Generator

            self.generator = Generator.from_settings(settings)

    def _query_tower(self, settings: Settings) -> QueryTower | None:
        """The question encoder the tuning chose, if it is the one configured (else the index's model)."""
        if self.tuning.query_tower is None:
            return None
        tower = load_query_tower(settings.query_encoder)
        if tower is None or tower.name != self.tuning.query_tower:
            logger.warning("tuning.json chose the question encoder %s, which is not configured: questions are "
                           "embedded by the index's model until `policy-qa build` refits", self.tuning.query_tower)
            return None
        return tower

    @classmethod
    def load(cls, settings: Settings | None = None) -> Assistant:
        settings = settings or get_settings()
        index = load_index(settings)
        assistant = cls(settings, index, load_embeddings(settings.embedding_model, settings.embedding_batch_size))
        assistant.searcher.retrieve("预热", k=1)  # load the model and jieba now, not on the first question
        return assistant

    @property
    def manifest(self) -> IndexManifest:
        return self.index.manifest

    # --- questions ---------------------------------------------------------------------------

    def validate_question(self, question: str) -> str:
        """The question cleaned and stripped, or a QuestionError that tells the user what to change."""
        return validate_question(question, self.settings.max_question_chars)

    def ask(self, ask: Ask | str, **fields: object) -> Answer:
        """Answer in Chinese with [n] citations: high or low confidence, or declined with a referral.

        `ask` is the request (see schema.Ask); a plain question with `fields` builds one, for callers in
        Python: `assistant.ask("简易注销怎么办理？", as_of=date(2024, 6, 1))`.
        """
        started = time.perf_counter()
        request = self._request(ask, fields)
        if resolve_mode(request.mode, self.generator is not None) is Mode.generative:
            if self.generator is None:
                answer = self._extractive(request, started)
                answer.notices.insert(0, NOTICE_NO_LLM)
                return answer
            return GenerativeComposer(self.pipeline, self.generator, request).ask()
        return self._extractive(request, started)

    def _request(self, ask: Ask | str, fields: dict[str, object]) -> Ask:
        """The request with its question cleaned and checked (a QuestionError says what to change)."""
        if not isinstance(ask, Ask):
            if fields.get("mode"):
                resolve_mode(fields["mode"], True)  # an unknown mode: the QuestionError that names the two
            ask = Ask(question=ask, **fields)  # type: ignore[arg-type]
        return ask.model_copy(update={"question": self.validate_question(ask.question)})

    def _extractive(self, ask: Ask, started: float) -> Answer:
        prepared = self.pipeline.prepare(ask)
        answer = prepared.answer
        total_ms = (time.perf_counter() - started) * 1000
        answer.timings_ms = Timings(retrieve_ms=round(prepared.retrieve_ms, 2),
                                    answer_ms=round(total_ms - prepared.retrieve_ms, 2), total_ms=round(total_ms, 2))
        return answer

    def stream(self, ask: Ask | str, **fields: object) -> Iterator[StreamEvent]:
        """Events in a fixed order: 'sources', then 'token'…, then 'done' with the whole answer."""
        request = self._request(ask, fields)
        if resolve_mode(request.mode, self.generator is not None) is Mode.generative and self.generator is not None:
            yield from GenerativeComposer(self.pipeline, self.generator, request).stream()
            return
        yield from replay(self.ask(request))

    # --- lookups ------------------------------------------------------------------------------

    def search(self, query: str, doc_id: str | None = None, k: int = 10, as_of: date | None = None) -> list[SearchHit]:
        """Clauses only, for operators: an exact reference first, then hybrid matches; with `as_of`,
        only the document versions in force on that day (filtered inside retrieval)."""
        query = self.validate_question(query)
        if doc_id is not None and doc_id not in self.index.documents:
            raise NotFoundError(f"未找到文件“{doc_id}”：请从文件列表中选择。")
        hits = self.searcher.retrieve(query, k=k, doc_id=doc_id, as_of=as_of).hits
        if as_of is not None:  # an exact reference names the current version: the one of that day instead
            hits = [self.pipeline.version_on(h, as_of) or h if h.exact else h for h in hits]
        return [
            SearchHit(rank=i + 1, score=h.score if h.score != float("inf") else 1.0, citation=self.pipeline.citation(i + 1, h))
            for i, h in enumerate(hits)
        ]

    def clause(self, clause_id: str) -> Citation:
        position = self.index.by_id.get(clause_id)
        if position is None:
            raise NotFoundError(f"未找到条文“{clause_id}”：编号形如 shichang-zhuti-dengji-guanli-tiaoli#33。")
        clause = self.index.clauses[position]
        return make_citation(1, clause, self.index.documents[clause.doc_id])

    def documents(self) -> list[DocumentInfo]:
        counts: dict[str, int] = {}
        for clause in self.index.clauses:
            counts[clause.doc_id] = counts.get(clause.doc_id, 0) + 1
        return [
            DocumentInfo(doc_id=m.doc_id, title=m.title, kind=m.kind, doc_number=m.doc_number, issuer=m.issuer,
                         effective=m.effective, status=m.status, status_zh=m.status_zh,
                         clause_count=counts.get(m.doc_id, 0))
            for m in self.index.documents.values()
        ]
