"""One question, one way through: query → retrieval (once) → ScopeDecision → extractive composition.

`AnswerPipeline.prepare` returns everything a composer needs: the decision, the ranked hits and the
ready extractive answer. The extractive mode returns that answer; the generative composer
(generative.py) gets the same `Prepared` and uses the answer as its fallback, so retrieval never runs
twice and nothing here calls back into the Assistant facade.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from ..config import Settings
from ..knowledge.store import ClauseIndex
from ..schema import Answer, Ask, Citation, Clause, Confidence, DocumentMeta, Turn
from ..text import content_words
from .compose import (
    ABSTAIN_REPLY,
    AS_OF_NOTICE,
    ASKS_FOR_NUMBER,
    HAS_NUMBER,
    INSTRUCTION_REPLY,
    LOW_CONFIDENCE_INTRO,
    LOW_CONFIDENCE_REFERRAL,
    NO_NUMBER_NOTICE,
    OTHER_PLACE_REPLY,
    RankedClause,
    compose,
    make_citation,
    missing_article_reply,
    reference_answer,
    select_spans,
    states_a_number,
    unknown_document_reply,
    unnumbered_document_reply,
    version_notices,
)
from .fitted import Tuning
from .kinds import CONSEQUENCE, DEFINITION, is_defining, is_liability
from .retrieval import ClauseSearcher, Hit, Retrieval
from .scope import ScopeDecision
from .scope_rules import FOLLOW_UP, declining_rule

RELATED_ON_DECLINE = 3
ANSWER_CLAUSES = 3  # clauses whose sentences compete for the answer
_RULE_REPLIES = {"instruction": INSTRUCTION_REPLY, "small_talk": ABSTAIN_REPLY, "other_jurisdiction": OTHER_PLACE_REPLY}


@dataclass
class Prepared:
    """A question after retrieval and the scope decision, with its extractive answer ready."""

    question: str
    query: str
    decision: ScopeDecision
    answer: Answer
    hits: list[Hit] = field(default_factory=list)
    dropped: list[DocumentMeta] = field(default_factory=list)
    retrieval: Retrieval | None = None
    retrieve_ms: float = 0.0


class AnswerPipeline:
    """Turns a validated question into a `Prepared`; holds no state between questions."""

    def __init__(self, settings: Settings, index: ClauseIndex, searcher: ClauseSearcher, tuning: Tuning) -> None:
        self.settings = settings
        self.index = index
        self.searcher = searcher
        self.tuning = tuning
        self.word_stats = searcher.word_stats

    # --- the query ---------------------------------------------------------------------------

    def retrieval_query(self, question: str, history: Sequence[Turn] | None) -> str:
        """A follow-up ("那个体户呢？") borrows the previous question's topic for retrieval."""
        previous = next((t.content for t in reversed(history or []) if t.role == "user"), None)
        if not previous:
            return question
        if re.search(r"第.{1,6}条", question) and not self.searcher.names.find(question):
            names = self.searcher.names.find(previous)
            if names:
                meta = self.index.documents[names[0]]
                return f"{(meta.short_names or (meta.title,))[0]}{question}"
        if not (FOLLOW_UP.fires(question) or len(content_words(question)) <= 1):
            return question
        topic = " ".join(w for w in content_words(previous) if w not in question)
        return f"{question} {topic}".strip()

    # --- one question ------------------------------------------------------------------------

    def prepare(self, ask: Ask, query: str | None = None) -> Prepared:
        """Retrieve once, decide, compose the extractive answer to `ask`. `query` overrides the follow-up
        rule (the generative mode passes the model's condensed question); `ask.as_of` answers from the
        document versions in force on that day, filtered inside retrieval."""
        question, as_of = ask.question, ask.as_of
        query = query or self.retrieval_query(question, ask.history)
        rule = declining_rule(query)
        if rule is not None:
            return self._declined(question, query, rule.name, _RULE_REPLIES[rule.name])
        if not content_words(query):
            return self._declined(question, query, "no_content", ABSTAIN_REPLY)

        started = time.perf_counter()
        k = ask.top_k or self.settings.top_k
        retrieval = self.searcher.retrieve(query, k=k, method=ask.method, doc_id=ask.doc_id, as_of=as_of)
        retrieve_ms = (time.perf_counter() - started) * 1000
        by_reference = self._reference(question, query, retrieval, as_of)
        if by_reference is not None:
            if as_of is not None and not by_reference.answer.abstained:
                by_reference.answer.notices.insert(0, AS_OF_NOTICE.format(day=as_of.isoformat()))
            return by_reference
        hits, dropped = self.prefer_in_force(retrieval.hits, as_of)
        hits = hits[:k]
        if not hits:
            return self._declined(question, query, "nothing_retrieved", ABSTAIN_REPLY, retrieval=retrieval)
        decision = self.decide(query, retrieval, hits)
        if decision.confidence is Confidence.declined:
            return self._declined(question, query, decision.reason, ABSTAIN_REPLY, retrieval=retrieval,
                                  probability=decision.probability)
        answer = self._compose(question, query, retrieval, hits, dropped, decision.confidence, as_of)
        if as_of is not None:
            answer.notices.insert(0, AS_OF_NOTICE.format(day=as_of.isoformat()))
        return Prepared(question, query, decision, answer, hits, dropped, retrieval, retrieve_ms)

    def decide(self, query: str, retrieval: Retrieval, hits: list[Hit]) -> ScopeDecision:
        """Declined when the question is not a policy question at all; otherwise the calibration decides
        between high, low and declined (scope.py). Without a fitted calibration everything is high."""
        domain = self.tuning.domain
        if domain is not None and retrieval.query_vector is not None:
            p_off = domain.off_domain(retrieval.query_vector)
            if p_off >= domain.threshold:
                return ScopeDecision(Confidence.declined, "off_domain", round(p_off, 4))
        if self.tuning.scope is None:
            return ScopeDecision(Confidence.high, "no_scope_model")
        return self.tuning.scope.decide(self.signals(query, retrieval, hits))

    def signals(self, query: str, retrieval: Retrieval, hits: list[Hit]) -> dict[str, float]:
        """What the calibration reads about one question and its retrieval (scope.SIGNALS)."""
        top_text = "".join(self.index.clauses[h.clause_index].text for h in hits[:ANSWER_CLAUSES])
        ranking = retrieval.ranking
        first = hits[0].clause_index
        rank_top, rank_next = _first_and_next(ranking.scores if ranking else {}, first)
        relevance_top, relevance_next = _first_and_next(ranking.relevance if ranking else {}, first)
        return {
            "coverage": self.word_stats.coverage(query, top_text),
            "unknown": self.word_stats.unknown(query),
            "bm25_log": math.log1p(retrieval.bm25_top),
            "dense_top": retrieval.dense_top,
            "dense_margin": retrieval.dense_margin,
            "rank_top": rank_top,
            "rank_margin": rank_top - rank_next,
            "agree_dense": float(retrieval.dense_first == first),
            "relevance_top": relevance_top,
            "relevance_margin": relevance_top - relevance_next,
            "policy_term": float(self.word_stats.names_policy_term(query)),
            **self._asked(query, self.index.clauses[first]),
        }

    @staticmethod
    def _asked(query: str, clause: Clause) -> dict[str, float]:
        """Whether the first clause states what the question asks for: a number (a deadline, an amount),
        a consequence (the 法律责任 chapter) or a definition."""
        asks = [(bool(ASKS_FOR_NUMBER.search(query)), bool(HAS_NUMBER.search(clause.text))),
                (CONSEQUENCE.fires(query), is_liability(clause)),
                (DEFINITION.fires(query), is_defining(clause))]
        return {"asked_stated": float(any(a and s for a, s in asks)),
                "asked_missing": float(any(a and not s for a, s in asks))}

    def prefer_in_force(self, hits: list[Hit], as_of: date | None = None) -> tuple[list[Hit], list[DocumentMeta]]:
        """Drop hits from a superseded version when its replacement was retrieved too; on a given day,
        drop every version that did not apply that day."""
        docs = {self.index.clauses[h.clause_index].doc_id for h in hits}
        if as_of is not None:
            gone = {d for d in docs if not self.index.documents[d].in_force_on(as_of)}
            kept = [h for h in hits if self.index.clauses[h.clause_index].doc_id not in gone]
            return kept, [self.index.documents[d] for d in sorted(gone)]
        dropped_ids = {d for d in docs if (self.index.documents[d].superseded_by or "") in docs}
        kept = [h for h in hits if self.index.clauses[h.clause_index].doc_id not in dropped_ids]
        return kept, [self.index.documents[d] for d in sorted(dropped_ids)]

    def citation(self, n: int, hit: Hit) -> Citation:
        clause = self.index.clauses[hit.clause_index]
        return make_citation(n, clause, self.index.documents[clause.doc_id], None if hit.exact else hit.score)

    def ranked_clauses(self, retrieval: Retrieval, hits: list[Hit]) -> list[RankedClause]:
        """The top clauses with their units' similarity to the query: what spans are chosen from.

        A clause's prior is its reciprocal rank in the final order, not its fused score: the ranker may
        put first a clause that fusion placed lower, and the composer should not overrule it (CV on dev:
        cites a right clause 0.831 → 0.841, real questions 0.740 → 0.771; key-fact recall 0.695 → 0.690).
        """
        ranked = []
        for rank, hit in enumerate(hits[:ANSWER_CLAUSES]):
            pieces, dense = self.searcher.unit_similarities(hit.clause_index, retrieval.query_vector)
            spans = self.searcher.span_similarities(hit.clause_index, retrieval.query_vector)
            ranked.append(RankedClause(self.index.clauses[hit.clause_index], 1.0 / (1 + rank), pieces, dense, spans))
        return ranked

    def question_terms(self, query: str) -> dict[str, float]:
        """The query's content words (colloquial words with their formal terms) and their idf weights."""
        return self.searcher.query_terms(query)

    # --- pieces ------------------------------------------------------------------------------

    def _reference(self, question: str, query: str, retrieval: Retrieval, as_of: date | None = None) -> Prepared | None:
        """Answer or decline a direct reference ("登记条例第三十三条"); None when there is none."""
        reference = retrieval.reference
        if reference is None:
            return None
        if reference.doc_id is None:
            return self._declined(question, query, "unknown_document", unknown_document_reply(reference.name or ""))
        if reference.article is None:
            return None
        meta = self.index.documents[reference.doc_id]
        exact = next((h for h in retrieval.hits if h.exact), None)
        if exact is not None and as_of is not None:
            exact = self.version_on(exact, as_of)
            if exact is None:
                return None  # no version of that document applied that day: answer as a normal question
            meta = self.index.documents[self.index.clauses[exact.clause_index].doc_id]
        if exact is not None:
            clause = self.index.clauses[exact.clause_index]
            answer = Answer(question=question, answer=reference_answer(clause, meta, self.settings.max_answer_sentences),
                            abstained=False, confidence=Confidence.high, citations=[make_citation(1, clause, meta)],
                            notices=version_notices([meta], [], as_of))
            return Prepared(question, query, ScopeDecision(Confidence.high, "reference"), answer, [exact], [], retrieval)
        last = max((c.number or 0) for c in self.index.clauses if c.doc_id == meta.doc_id)
        if last == 0:  # a plan: parts and measures, no 第X条
            return self._declined(question, query, "unnumbered_document", unnumbered_document_reply(meta),
                                  retrieval=retrieval)
        if not 1 <= reference.article <= last:
            return self._declined(question, query, "no_such_article",
                                  missing_article_reply(meta, reference.article, last))
        return None  # a gap in the numbering (e.g. a repealed article): answer as a normal question

    def version_on(self, hit: Hit, day: date) -> Hit | None:
        """The same article in the version of its document that applied on `day`, if any."""
        clause = self.index.clauses[hit.clause_index]
        for doc_id in self.index.lineage(clause.doc_id):
            if self.index.documents[doc_id].in_force_on(day):
                position = self.index.by_id.get(f"{doc_id}#{clause.clause_id.split('#', 1)[1]}")
                return None if position is None else Hit(position, hit.score, exact=True)
        return None

    def _declined(self, question: str, query: str, reason: str, reply: str,
                  retrieval: Retrieval | None = None, probability: float | None = None) -> Prepared:
        hits = self.prefer_in_force(retrieval.hits)[0] if retrieval else []
        related = [self.citation(i + 1, h) for i, h in enumerate(hits[:RELATED_ON_DECLINE])]
        answer = Answer(question=question, answer=reply, abstained=True, confidence=Confidence.declined,
                        related=related)
        decision = ScopeDecision(Confidence.declined, reason, probability)
        return Prepared(question, query, decision, answer, hits, [], retrieval)

    def _compose(self, question: str, query: str, retrieval: Retrieval, hits: list[Hit],
                 dropped: list[DocumentMeta], confidence: Confidence, as_of: date | None = None) -> Answer:
        """The extractive answer: quoted spans with [n]; the low-confidence form frames them as 可能相关."""
        ranked = self.ranked_clauses(retrieval, hits)
        words = self.question_terms(query)
        wants_number = bool(ASKS_FOR_NUMBER.search(question))
        spans = select_spans(words, wants_number, ranked, self.settings.max_answer_sentences, self.tuning.spans)
        marker_for_rank: dict[int, int] = {}
        citations: list[Citation] = []
        for span in spans:
            if span.rank not in marker_for_rank:
                marker_for_rank[span.rank] = len(citations) + 1
                citations.append(self.citation(len(citations) + 1, hits[span.rank]))
        metas = [self.index.documents[d] for d in dict.fromkeys(c.doc_id for c in citations)]
        notices = version_notices(metas, dropped, as_of)
        if wants_number and spans and not states_a_number(spans):
            notices.insert(0, NO_NUMBER_NOTICE)
        text = compose(spans, marker_for_rank)
        if confidence is Confidence.low:
            text = f"{LOW_CONFIDENCE_INTRO}\n{text}\n{LOW_CONFIDENCE_REFERRAL}"
        return Answer(question=question, answer=text, abstained=False, confidence=confidence,
                      citations=citations, notices=notices)


def _first_and_next(scores: dict[int, float], first: int) -> tuple[float, float]:
    """The score of the first clause and the best score of any other (0, 0 when nothing was scored)."""
    if not scores:
        return 0.0, 0.0
    top = scores.get(first, max(scores.values()))
    others = [v for i, v in scores.items() if i != first]
    return top, max(others) if others else top
