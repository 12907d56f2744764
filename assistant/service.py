"""The Assistant facade: the one entry point the CLI, API, UI and eval all call.

    a = Assistant.load(settings)          # loads index/ once; IndexError_ / IndexStaleError
    a.manifest                            # IndexManifest
    a.ask(question, history=None, top_k=None) -> Answer
    a.stream(question, history=None, top_k=None) -> Iterator[StreamEvent]
    a.search(query, doc_id=None, k=10) -> list[SearchHit]
    a.clause(clause_id) -> Citation       # NotFoundError
    a.documents() -> list[DocumentInfo]
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from .answering.compose import (
    ABSTAIN_REPLY,
    INSTRUCTION_REPLY,
    compose,
    make_citation,
    missing_article_reply,
    reference_answer,
    select_spans,
    unknown_document_reply,
    unnumbered_document_reply,
    version_notices,
)
from .answering.generative import (
    ask_generative,
    replay,
    resolve_mode,
    stream_generative,
)
from .answering.retrieval import ClauseSearcher, Hit, Method, Retrieval
from .answering.scope import Calibration, Signals, WordStats, rule_out_of_scope
from .config import Settings, get_settings
from .errors import NotFoundError
from .knowledge.embeddings import ArrayEmbeddings, load_embeddings
from .knowledge.store import ClauseIndex, IndexManifest, load_index
from .question import validate_question
from .schema import (
    Answer,
    Citation,
    DocumentInfo,
    SearchHit,
    StreamEvent,
    Timings,
    Turn,
)
from .text import content_words

if TYPE_CHECKING:
    from .answering.generate import Generator

RELATED_ON_ABSTAIN = 3
ANSWER_CLAUSES = 3          # clauses whose sentences compete for the answer
_FOLLOW_UP = re.compile(r"^(那|那么|那如果|如果是|要是|还有|另外|这个|那个)|[呢吗]？?$|^(那|那么)?(.{1,8})呢[？?]?$")


class Assistant:
    """Loads the index and models once; answers, searches and looks up clauses."""

    def __init__(self, settings: Settings, index: ClauseIndex, embeddings: ArrayEmbeddings,
                 calibration: Calibration | None = None) -> None:
        self.settings = settings
        self.index = index
        self.embeddings = embeddings
        self._calibration = calibration
        self.searcher = ClauseSearcher(
            index, embeddings, settings.candidate_k, settings.rrf_c, settings.dense_weight, settings.query_cache_size
        )
        self.word_stats = WordStats([c.text for c in index.clauses], index.vocabulary)
        # The generative mode's model client and prompts (checked here, at start); None without an LLM,
        # in which case langchain's chain machinery is never imported (it costs a third of a second).
        self.generator: Generator | None = None
        if settings.llm_base_url:
            from .answering.generate import Generator

            self.generator = Generator.from_settings(settings)

    @classmethod
    def load(cls, settings: Settings | None = None) -> Assistant:
        settings = settings or get_settings()
        index = load_index(settings)
        assistant = cls(settings, index, load_embeddings(settings.embedding_model, settings.embedding_batch_size))
        assistant.searcher.retrieve("预热", k=1)  # load the model and jieba now, not on the first question
        return assistant

    @property
    def calibration(self) -> Calibration:
        """The abstention model, read on first use so that `eval --calibrate` can replace it."""
        if self._calibration is None:
            self._calibration = Calibration.load()
        return self._calibration

    @calibration.setter
    def calibration(self, model: Calibration) -> None:
        self._calibration = model

    @property
    def manifest(self) -> IndexManifest:
        return self.index.manifest

    # --- questions ---------------------------------------------------------------------------

    def validate_question(self, question: str) -> str:
        """The question cleaned and stripped, or a QuestionError that tells the user what to change."""
        return validate_question(question, self.settings.max_question_chars)

    def retrieval_query(self, question: str, history: Sequence[Turn] | None) -> str:
        """A follow-up ("那个体户呢？") borrows the previous question's topic for retrieval."""
        previous = next((t.content for t in reversed(history or []) if t.role == "user"), None)
        if not previous:
            return question
        is_follow_up = _FOLLOW_UP.search(question) or len(content_words(question)) <= 1
        named_now = self.searcher.names.find(question)
        if re.search(r"第.{1,6}条", question) and not named_now:
            names = self.searcher.names.find(previous)
            if names:
                return f"{self.index.documents[names[0]].short_names[0]}{question}"
        if not is_follow_up:
            return question
        topic = " ".join(w for w in content_words(previous) if w not in question)
        return f"{question} {topic}".strip()

    def ask(self, question: str, history: Sequence[Turn] | None = None, top_k: int | None = None,
            method: Method = "hybrid", mode: str | None = None) -> Answer:
        """Answer in Chinese with [n] citations, or abstain with a referral.

        `mode`: 'extractive' or 'generative'; None means generative when an LLM is configured.
        """
        started = time.perf_counter()
        question = self.validate_question(question)
        if resolve_mode(mode, self.generator is not None) == "generative":
            return ask_generative(self, question, history, top_k, method)
        query = self.retrieval_query(question, history)
        k = top_k or self.settings.top_k

        rule = rule_out_of_scope(query)
        if rule in ("instruction", "small_talk", "no_content"):
            reply = INSTRUCTION_REPLY if rule == "instruction" else ABSTAIN_REPLY
            return self._finish(Answer(question=question, answer=reply, abstained=True), started, started)

        retrieval = self.searcher.retrieve(query, k=k, method=method)
        retrieved_at = time.perf_counter()
        answer = self._answer_from(question, query, retrieval, out_of_scope=rule is not None)
        return self._finish(answer, started, retrieved_at)

    def _answer_from(self, question: str, query: str, retrieval: Retrieval, out_of_scope: bool) -> Answer:
        index = self.index
        reference = retrieval.reference
        if out_of_scope:
            return self.abstain(question, [])
        if reference is not None and reference.doc_id is None:
            return Answer(question=question, answer=unknown_document_reply(reference.name or ""), abstained=True)
        if reference is not None and reference.article is not None:
            exact = next((h for h in retrieval.hits if h.exact), None)
            meta = index.documents[reference.doc_id]
            if exact is not None:
                clause = index.clauses[exact.clause_index]
                text = reference_answer(clause, meta, self.settings.max_answer_sentences)
                return Answer(question=question, answer=text, abstained=False,
                              citations=[make_citation(1, clause, meta)],
                              notices=version_notices([meta], []))
            last = max((c.number or 0) for c in index.clauses if c.doc_id == meta.doc_id)
            if last == 0:  # a plan: parts and measures, no 第X条
                return Answer(question=question, answer=unnumbered_document_reply(meta), abstained=True,
                              related=[self._citation(i + 1, h) for i, h in enumerate(retrieval.hits[:RELATED_ON_ABSTAIN])])
            if not 1 <= reference.article <= last:
                return Answer(question=question, answer=missing_article_reply(meta, reference.article, last),
                              abstained=True)

        hits, dropped = self._prefer_in_force(retrieval.hits)
        if out_of_scope or not hits or not self.in_scope(query, retrieval, hits):
            return self.abstain(question, hits)

        ranked = [index.clauses[h.clause_index] for h in hits[:ANSWER_CLAUSES]]
        spans = select_spans(query, ranked, self.settings.max_answer_sentences)
        marker_for_rank: dict[int, int] = {}
        citations: list[Citation] = []
        for span in spans:
            if span.rank not in marker_for_rank:
                marker_for_rank[span.rank] = len(citations) + 1
                hit = hits[span.rank]
                clause = ranked[span.rank]
                citations.append(make_citation(len(citations) + 1, clause, index.documents[clause.doc_id], hit.score))
        cited_docs = list(dict.fromkeys(c.doc_id for c in citations))
        notices = version_notices([index.documents[d] for d in cited_docs], dropped)
        return Answer(question=question, answer=compose(spans, marker_for_rank), abstained=False,
                      citations=citations, notices=notices)

    def in_scope(self, query: str, retrieval: Retrieval, hits: list[Hit]) -> bool:
        if self.word_stats.names_policy_term(query):
            return True
        return self.calibration.probability_in_scope(self.signals(query, retrieval, hits)) >= 0.5

    def signals(self, query: str, retrieval: Retrieval, hits: list[Hit]) -> Signals:
        top_text = "".join(self.index.clauses[h.clause_index].text for h in hits[:ANSWER_CLAUSES])
        return Signals(
            coverage=self.word_stats.coverage(query, top_text),
            unknown=self.word_stats.unknown(query),
            bm25_log=math.log1p(retrieval.bm25_top),
            dense_top=retrieval.dense_top,
            dense_margin=retrieval.dense_margin,
        )

    def abstain(self, question: str, hits: list[Hit]) -> Answer:
        related = [self._citation(i + 1, h) for i, h in enumerate(hits[:RELATED_ON_ABSTAIN])]
        return Answer(question=question, answer=ABSTAIN_REPLY, abstained=True, related=related)

    def _prefer_in_force(self, hits: list[Hit]) -> tuple[list[Hit], list]:
        """Drop hits from a superseded version when its replacement was retrieved too."""
        docs = {self.index.clauses[h.clause_index].doc_id for h in hits}
        dropped_ids = {
            d for d in docs if (self.index.documents[d].superseded_by or "") in docs
        }
        kept = [h for h in hits if self.index.clauses[h.clause_index].doc_id not in dropped_ids]
        return kept, [self.index.documents[d] for d in sorted(dropped_ids)]

    def _finish(self, answer: Answer, started: float, retrieved_at: float) -> Answer:
        done = time.perf_counter()
        answer.timings_ms = Timings(
            retrieve_ms=round((retrieved_at - started) * 1000, 2),
            answer_ms=round((done - retrieved_at) * 1000, 2),
            total_ms=round((done - started) * 1000, 2),
        )
        return answer

    def stream(self, question: str, history: Sequence[Turn] | None = None,
               top_k: int | None = None, mode: str | None = None) -> Iterator[StreamEvent]:
        """Events in a fixed order: 'sources', then 'token'…, then 'done' with the whole answer."""
        if resolve_mode(mode, self.generator is not None) == "generative":
            yield from stream_generative(self, self.validate_question(question), history, top_k, "hybrid")
            return
        yield from replay(self.ask(question, history=history, top_k=top_k, mode="extractive"))

    # --- lookups ------------------------------------------------------------------------------

    def search(self, query: str, doc_id: str | None = None, k: int = 10) -> list[SearchHit]:
        """Clauses only, for operators: an exact reference first, then hybrid matches."""
        query = self.validate_question(query)
        if doc_id is not None and doc_id not in self.index.documents:
            raise NotFoundError(f"未找到文件“{doc_id}”：请从文件列表中选择。")
        retrieval = self.searcher.retrieve(query, k=k, doc_id=doc_id)
        return [
            SearchHit(rank=i + 1, score=h.score if h.score != float("inf") else 1.0, citation=self._citation(i + 1, h))
            for i, h in enumerate(retrieval.hits)
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

    def _citation(self, n: int, hit: Hit) -> Citation:
        clause = self.index.clauses[hit.clause_index]
        score = None if hit.exact else hit.score
        return make_citation(n, clause, self.index.documents[clause.doc_id], score)
