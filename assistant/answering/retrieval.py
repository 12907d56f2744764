"""Hybrid retrieval: jieba-BM25 and dense unit scores, aggregated to clauses and fused by RRF.

(`retriever.ClauseRetriever` is its LangChain face; the answer path calls `ClauseSearcher` directly and
so never imports langchain's retriever and tracing machinery, which would cost cold start ~0.4 s.)

An exact reference ("登记条例第33条") bypasses scoring and returns that clause first; a document named
in the question ("破产法里管理人…") gives that document's clauses a fusion bonus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np

from ..knowledge.embeddings import ArrayEmbeddings
from ..knowledge.store import ClauseIndex
from ..text import expand_colloquial, tokenize
from .references import DocumentNames, Reference, parse_reference

Method = Literal["hybrid", "bm25", "dense"]
NAMED_DOC_BONUS = 0.5  # in units of a first rank: a document named in the question is favoured


@dataclass
class Hit:
    clause_index: int
    score: float
    bm25: float = 0.0
    dense: float = 0.0
    exact: bool = False


@dataclass
class Retrieval:
    """Ranked clause hits plus the signals abstention is decided on."""

    hits: list[Hit]
    reference: Reference | None = None
    named_docs: list[str] = field(default_factory=list)
    bm25_top: float = 0.0
    dense_top: float = 0.0
    dense_margin: float = 0.0


class ClauseSearcher:
    """Scores clauses for a query; shared by the LangChain retriever, the service and the eval."""

    def __init__(self, index: ClauseIndex, embeddings: ArrayEmbeddings, candidate_k: int = 30, rrf_c: int = 5,
                 dense_weight: float = 1.5, query_cache_size: int = 4096):
        self.index = index
        self.embeddings = embeddings
        self.candidate_k = candidate_k
        self.rrf_c = rrf_c
        self.dense_weight = dense_weight
        self.names = DocumentNames(index.documents)
        self._n_clauses = len(index.clauses)
        self._clause_doc = np.array([c.doc_id for c in index.clauses])
        # Embedding the query is most of a question's cost, and hotline questions repeat.
        self._query_vector = lru_cache(maxsize=query_cache_size)(self._embed_query)

    def retrieve(self, query: str, k: int = 5, method: Method = "hybrid", doc_id: str | None = None) -> Retrieval:
        reference = parse_reference(query, self.names)
        named = self.names.find(query)
        result = Retrieval(hits=[], reference=reference, named_docs=named)
        exact = self._exact_hit(reference)
        if exact is not None and (doc_id is None or self.index.clauses[exact].doc_id == doc_id):
            result.hits.append(Hit(exact, score=float("inf"), exact=True))

        # Both are scored whatever the method: abstention reads signals from each.
        bm25 = self._bm25_clause_scores(query)
        dense = self._dense_clause_scores(query, exhaustive=doc_id is not None)
        allowed = self._clause_doc == doc_id if doc_id else np.ones(self._n_clauses, dtype=bool)
        fused = np.zeros(self._n_clauses)
        rankings = {"hybrid": ((bm25, 1.0), (dense, self.dense_weight)), "bm25": ((bm25, 1.0),),
                    "dense": ((dense, 1.0),)}[method]
        for scores, weight in rankings:
            masked = np.where(allowed, scores, -np.inf)
            order = np.argsort(-masked)[: self.candidate_k]
            order = order[np.isfinite(masked[order]) & (masked[order] > 0)]
            fused[order] += weight / (self.rrf_c + 1 + np.arange(len(order)))
        if named and method == "hybrid":
            fused[np.isin(self._clause_doc, named) & (fused > 0)] += NAMED_DOC_BONUS / (self.rrf_c + 1)

        result.bm25_top = float(bm25[allowed].max(initial=0.0))
        top = np.sort(dense[allowed])[::-1]
        result.dense_top = float(top[0]) if len(top) else 0.0
        background = top[10:30]
        result.dense_margin = float(top[0] - background.mean()) if len(background) else 0.0

        taken = {h.clause_index for h in result.hits}
        for i in np.argsort(-fused):
            if len(result.hits) >= k or fused[i] <= 0:
                break
            if int(i) not in taken:
                result.hits.append(Hit(
                    int(i), float(fused[i]),
                    bm25=float(bm25[i]), dense=float(dense[i]),
                ))
        return result

    def _exact_hit(self, reference: Reference | None) -> int | None:
        if reference is None or reference.doc_id is None or reference.article is None:
            return None
        return self.index.by_id.get(f"{reference.doc_id}#{reference.article}")

    def _bm25_clause_scores(self, query: str) -> np.ndarray:
        tokens = list(tokenize(expand_colloquial(query)))
        clause_scores = np.zeros(self._n_clauses)
        if tokens:
            unit_scores = self.index.bm25.get_scores(tokens)
            np.maximum.at(clause_scores, self.index.unit_clause, unit_scores)
        return clause_scores

    def clear_query_cache(self) -> None:
        """Forget cached query vectors (the eval does, so that its latencies are first-time ones)."""
        self._query_vector.cache_clear()

    def _embed_query(self, query: str) -> np.ndarray:
        vector = self.embeddings.embed_query_array(query).reshape(1, -1)
        vector.setflags(write=False)  # shared by every caller of the cache
        return vector

    def _dense_clause_scores(self, query: str, exhaustive: bool = False) -> np.ndarray:
        """Best unit score per clause; `exhaustive` scores every unit (a document filter needs them all)."""
        n = self.index.dense.ntotal if exhaustive else min(self.index.dense.ntotal, self.candidate_k * 8)
        scores, rows = self.index.dense.search(self._query_vector(query), n)
        clause_scores = np.zeros(self._n_clauses)
        valid = rows[0] >= 0
        np.maximum.at(clause_scores, self.index.unit_clause[rows[0][valid]], scores[0][valid])
        return clause_scores
