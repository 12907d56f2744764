"""Hybrid retrieval: BM25 over units, dense over units and BM25 over headings, aggregated to clauses and
fused by reciprocal rank.

(`retriever.ClauseRetriever` is its LangChain face; the answer path calls `ClauseSearcher` directly and
so never imports langchain's retriever and tracing machinery, which would cost cold start ~0.4 s.)

Three rankings of clauses, each a field of its own:
- BM25 over retrieval units (sentences of plan measures, 款 of long articles, short articles whole);
- dense (e5) over the same units, a clause scoring as its best unit;
- BM25 over each clause's headings: document title, 章/节 and the plan's part and section titles. A
  chapter called 注销登记 says what all its articles are about, in words the articles rarely repeat.
Their weights in the fusion are chosen by cross-validation (answering/fitted.py). An exact reference
("登记条例第33条") bypasses scoring and returns that clause first; a document named in the question
("破产法里管理人…") gives that document's clauses a bonus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Literal

import numpy as np

from ..knowledge.embeddings import ArrayEmbeddings
from ..knowledge.query_tower import QueryTower
from ..knowledge.relevance import relevance_text
from ..knowledge.store import ClauseIndex
from ..knowledge.units import quotable_spans, text_key, unit_pieces
from ..schema import DocStatus
from ..text import content_words, expand_colloquial, tokenize
from .fitted import FusionParams
from .kinds import CONSEQUENCE, DEFINITION, is_defining, is_liability
from .ranking import FEATURES, LinearRanker, Reranking, candidate_features
from .references import DocumentNames, Reference, parse_reference
from .reranker import Reranker
from .terms import WordStats

Method = Literal["hybrid", "bm25", "dense"]
NAMED_DOC_BONUS = 0.5  # in units of a first rank: a document named in the question is favoured
DENSE_SEARCH_FACTOR = 8  # units searched per candidate clause: several units share a clause


@dataclass
class Hit:
    clause_index: int
    score: float
    bm25: float = 0.0
    dense: float = 0.0
    exact: bool = False


@dataclass
class RawScores:
    """Per-clause scores of each field for one query, before fusion (the tuning re-fuses these)."""

    bm25: np.ndarray
    dense: np.ndarray
    heading: np.ndarray
    named: list[str]
    query_vector: np.ndarray


@dataclass
class Ranking:
    """The candidates in their final order, with what each stage said about them."""

    order: np.ndarray
    scores: dict[int, float] = field(default_factory=dict)  # the learned ranker's score per pool clause
    relevance: dict[int, float] = field(default_factory=dict)  # the relevance model's logit, where read


@dataclass
class Retrieval:
    """Ranked clause hits plus the signals the scope decision reads."""

    hits: list[Hit]
    reference: Reference | None = None
    bm25_top: float = 0.0
    dense_top: float = 0.0
    dense_margin: float = 0.0
    dense_first: int | None = None  # dense retrieval's own first clause
    query_vector: np.ndarray | None = None
    ranking: Ranking | None = None


class ClauseSearcher:
    """Scores clauses for a query; shared by the LangChain retriever, the answer pipeline and the eval."""

    def __init__(self, index: ClauseIndex, embeddings: ArrayEmbeddings, candidate_k: int = 30,
                 fusion: FusionParams = FusionParams(), query_cache_size: int = 4096,
                 ranker: LinearRanker | None = None, reranker: Reranker | None = None,
                 reranking: Reranking | None = None, query_tower: QueryTower | None = None):
        import bm25s

        self.index = index
        self.embeddings = embeddings
        self.candidate_k = candidate_k
        self.fusion = fusion
        self.ranker = ranker
        self.reranker = reranker
        self.reranking = reranking
        self.query_tower = query_tower
        # What the relevance model reads of a clause: its document and headings say what a bare article is about.
        self._rerank_texts = [relevance_text(c, index.documents[c.doc_id]) for c in index.clauses] if reranker else []
        self.word_stats = WordStats([c.text for c in index.clauses], index.vocabulary)
        self._in_force = np.array([index.documents[c.doc_id].status is DocStatus.in_force for c in index.clauses])
        self._lengths = np.array([len(c.text) for c in index.clauses], dtype=float)
        self._liability = np.array([is_liability(c) for c in index.clauses], dtype=float)
        self._defining = np.array([is_defining(c) for c in index.clauses], dtype=float)
        self._heading_texts = [" ".join(c.heading_path) for c in index.clauses]
        self.names = DocumentNames(index.documents)
        self._n_clauses = len(index.clauses)
        self._clause_doc = np.array([c.doc_id for c in index.clauses])
        self._headings = bm25s.BM25()
        self._headings.index([list(tokenize(heading_text(index, c))) or ["_"] for c in index.clauses],
                             show_progress=False)
        # Unit vectors and texts per clause, for the composer's span scores (3 MB for 2k units).
        self._unit_vectors = index.dense.reconstruct_n(0, index.dense.ntotal)
        # Rows of each clause's quotable spans in the span vectors (the ranker reads their best cosine).
        self._span_texts = [quotable_spans(c) for c in index.clauses]
        self._span_rows = [np.array([index.span_row[k] for k in map(text_key, spans) if k in index.span_row],
                                    dtype=np.int64) for spans in self._span_texts]
        self._unit_rows: list[list[int]] = [[] for _ in index.clauses]
        for row, clause_index in enumerate(index.unit_clause):
            self._unit_rows[int(clause_index)].append(row)
        # Embedding the query is most of a question's cost, and hotline questions repeat.
        self._query_vector = lru_cache(maxsize=query_cache_size)(self._embed_query)

    # --- scoring ---------------------------------------------------------------------------------

    def raw_scores(self, query: str, exhaustive: bool = False) -> RawScores:
        """Every field's clause scores; `exhaustive` scores every dense unit (a document filter needs them)."""
        vector = self._query_vector(query)
        return RawScores(
            bm25=self._bm25_clause_scores(query),
            dense=self._dense_clause_scores(vector, exhaustive),
            heading=self._heading_scores(query),
            named=self.names.find(query),
            query_vector=vector,
        )

    def fuse(self, raw: RawScores, method: Method = "hybrid", fusion: FusionParams | None = None,
             allowed: np.ndarray | None = None) -> np.ndarray:
        """Reciprocal-rank fusion of the fields `method` uses over the `allowed` clauses (all by default);
        0 for clauses no field ranked."""
        fusion = fusion or self.fusion
        allowed = np.ones(self._n_clauses, dtype=bool) if allowed is None else allowed
        rankings = {
            "hybrid": ((raw.bm25, 1.0), (raw.dense, fusion.dense_weight), (raw.heading, fusion.heading_weight)),
            "bm25": ((raw.bm25, 1.0),),
            "dense": ((raw.dense, 1.0),),
        }[method]
        fused = np.zeros(self._n_clauses)
        for scores, weight in rankings:
            if weight > 0:
                fused += weight * self._reciprocal_ranks(np.where(allowed, scores, 0.0), fusion.rrf_c)
        if raw.named and method == "hybrid":
            fused[np.isin(self._clause_doc, raw.named) & (fused > 0)] += NAMED_DOC_BONUS / (fusion.rrf_c + 1)
        return fused

    def allowed(self, doc_id: str | None = None, as_of: date | None = None) -> np.ndarray | None:
        """The clauses a question may be answered from: one document's, and those of the document versions
        in force on `as_of`; None when every clause may."""
        if doc_id is None and as_of is None:
            return None
        mask = np.ones(self._n_clauses, dtype=bool)
        if doc_id is not None:
            mask &= self._clause_doc == doc_id
        if as_of is not None:
            gone = [d for d, meta in self.index.documents.items() if not meta.in_force_on(as_of)]
            mask &= ~np.isin(self._clause_doc, gone)
        return mask

    def _reciprocal_ranks(self, scores: np.ndarray, rrf_c: int) -> np.ndarray:
        """1/(c + rank) for the top `candidate_k` clauses with a positive score, 0 elsewhere.

        Tied scores share a rank: every article of a chapter whose heading matches scores the same in
        the heading field, and none of them should win by its position in the file.
        """
        out = np.zeros(self._n_clauses)
        order = np.argsort(-scores, kind="stable")[: self.candidate_k]
        order = order[scores[order] > 0]
        if len(order):
            top = scores[order]
            ranks = _dense_ranks(top)
            out[order] = 1.0 / (rrf_c + 1 + ranks)
            ties = scores == top[-1]  # a tie at the cut-off: its other members rank the same
            out[ties & (out == 0)] = 1.0 / (rrf_c + 1 + ranks[-1])
        return out

    def retrieve(self, query: str, k: int = 5, method: Method = "hybrid", doc_id: str | None = None,
                 as_of: date | None = None) -> Retrieval:
        """The top `k` clauses for `query` (an exact reference first), from one document when `doc_id` is
        given and from the versions in force on `as_of` when that is (filters act inside retrieval, so
        `k` hits come back however many clauses they exclude)."""
        reference = parse_reference(query, self.names)
        result = Retrieval(hits=[], reference=reference)
        allowed = self.allowed(doc_id, as_of)
        exact = self._exact_hit(reference)
        if exact is not None and (doc_id is None or self.index.clauses[exact].doc_id == doc_id):
            result.hits.append(Hit(exact, score=float("inf"), exact=True))

        raw = self.raw_scores(query, exhaustive=doc_id is not None)
        fused = self.fuse(raw, method, allowed=allowed)
        allowed = np.ones(self._n_clauses, dtype=bool) if allowed is None else allowed
        result.query_vector = raw.query_vector
        result.bm25_top = float(raw.bm25[allowed].max(initial=0.0))
        top = np.sort(raw.dense[allowed])[::-1]
        result.dense_top = float(top[0]) if len(top) else 0.0
        background = top[10:30]
        result.dense_margin = float(top[0] - background.mean()) if len(background) else 0.0
        result.dense_first = int(np.argmax(np.where(allowed, raw.dense, -1.0))) if raw.dense.any() else None

        taken = {h.clause_index for h in result.hits}
        result.ranking = self.rank(query, raw, fused, method)
        for i in result.ranking.order:
            if len(result.hits) >= k:
                break
            if int(i) not in taken:
                result.hits.append(Hit(int(i), float(fused[i]), bm25=float(raw.bm25[i]), dense=float(raw.dense[i])))
        return result

    def order(self, query: str, raw: RawScores, fused: np.ndarray, method: Method = "hybrid",
              ranker: LinearRanker | None = None, reranking: Reranking | None = None) -> np.ndarray:
        """Clause indices with a positive fused score, best first (see `rank`)."""
        return self.rank(query, raw, fused, method, ranker, reranking).order

    def rank(self, query: str, raw: RawScores, fused: np.ndarray, method: Method = "hybrid",
             ranker: LinearRanker | None = None, reranking: Reranking | None = None) -> Ranking:
        """The candidates best first: by the learned ranker when there is one (hybrid only), else by the
        fused score; then, with a relevance model and its fitted `Reranking`, the ranker's top `depth`
        re-ordered by the ranker's score and the model's logit together."""
        ranker = ranker or self.ranker
        reranking = reranking or self.reranking
        candidates = np.argsort(-fused, kind="stable")
        candidates = candidates[fused[candidates] > 0]
        if ranker is None or method != "hybrid" or not len(candidates):
            return Ranking(candidates)
        pool = candidates[: self.candidate_k]
        scores = ranker.scores(self.features(query, raw, fused, pool))
        by_score = np.argsort(-scores, kind="stable")
        pool, scores = pool[by_score], scores[by_score]
        ranking = Ranking(np.concatenate([pool, candidates[self.candidate_k:]]),
                          {int(i): float(v) for i, v in zip(pool, scores)})
        if reranking is None or self.reranker is None:
            return ranking
        top = pool[: reranking.depth]
        relevance = self.relevance(query, top)
        final = reranking.scores(scores[: len(top)], relevance)
        ranking.order[: len(top)] = top[np.argsort(-final, kind="stable")]
        ranking.relevance = {int(i): float(v) for i, v in zip(top, relevance)}
        return ranking

    def relevance(self, query: str, clause_indices: np.ndarray) -> np.ndarray:
        """The relevance model's logit for each clause (it reads the question and the clause together)."""
        if self.reranker is None:
            return np.zeros(len(clause_indices))
        return self.reranker.scores(query, [self._rerank_texts[int(i)] for i in clause_indices])

    def feature_names(self) -> tuple[str, ...]:
        return FEATURES

    def features(self, query: str, raw: RawScores, fused: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """The first-stage ranker's features (FEATURES) for the clauses in `pool`."""
        words = self.query_terms(query)
        total = sum(words.values()) or 1.0
        texts = [self.index.clauses[int(i)].text for i in pool]
        headings = [self._heading_texts[int(i)] for i in pool]
        coverage = [sum(w for word, w in words.items() if word in text) / total for text in texts]
        heading_coverage = [sum(w for word, w in words.items() if word in text) / total for text in headings]
        named = np.isin(self._clause_doc, raw.named) if raw.named else np.zeros(self._n_clauses, dtype=bool)
        span_best = self._best_span_similarity(pool, raw.query_vector.reshape(-1))
        span_coverage = [max((sum(w for word, w in words.items() if word in span) / total
                              for span in self._span_texts[int(i)]), default=0.0) for i in pool]
        return candidate_features(pool, fused, raw.bm25, raw.dense, raw.heading, coverage, heading_coverage,
                                  named, self._in_force, self._lengths, span_best, span_coverage,
                                  self._liability, self._defining, CONSEQUENCE.fires(query),
                                  DEFINITION.fires(query))

    def unit_similarities(self, clause_index: int, query_vector: np.ndarray) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """A clause's unit texts (without context) and each unit's cosine to the query."""
        clause = self.index.clauses[clause_index]
        pieces = tuple(unit_pieces(clause, self.index.documents[clause.doc_id]))
        rows = self._unit_rows[clause_index]
        scores = self._unit_vectors[rows] @ query_vector.reshape(-1)
        return pieces, tuple(float(s) for s in scores[: len(pieces)])

    def _best_span_similarity(self, pool: np.ndarray, query: np.ndarray) -> list[float]:
        """Per pool clause, the best cosine of one of its sentences: one small gathered product (a
        product over all spans would wake BLAS threads that then contend with the query encoder)."""
        rows = [self._span_rows[int(i)] for i in pool]
        sizes = np.array([len(r) for r in rows])
        if not sizes.sum():
            return [0.0] * len(pool)
        sims = self.index.span_vectors[np.concatenate(rows)] @ query
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        best = np.maximum.reduceat(sims, np.minimum(starts, len(sims) - 1))
        return np.where(sizes > 0, best, 0.0).tolist()

    def span_similarities(self, clause_index: int, query_vector: np.ndarray) -> tuple[float, ...]:
        """Each quotable span's cosine to the query, in order; () when the index lacks a vector for one."""
        rows = self._span_rows[clause_index]
        if not len(rows) or len(rows) < len(self._span_texts[clause_index]):
            return ()
        return tuple(float(v) for v in self.index.span_vectors[rows] @ query_vector.reshape(-1))

    def query_vector(self, query: str) -> np.ndarray:
        """The query's e5 vector (cached), flat."""
        return self._query_vector(query).reshape(-1)

    def query_terms(self, query: str) -> dict[str, float]:
        """The query's content words (colloquial words with their formal terms) and their idf weights."""
        return {w: self.word_stats.idf(w) for w in content_words(expand_colloquial(query))}

    def use_query_tower(self, tower: QueryTower | None) -> None:
        """Embed questions with `tower` from now on (None: with the index's own embedding model)."""
        self.query_tower = tower
        self._query_vector.cache_clear()

    def clear_query_cache(self) -> None:
        """Forget cached query vectors (the eval does, so that its latencies are first-time ones)."""
        self._query_vector.cache_clear()

    # --- fields ----------------------------------------------------------------------------------

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

    def _heading_scores(self, query: str) -> np.ndarray:
        tokens = list(tokenize(expand_colloquial(query)))
        return np.asarray(self._headings.get_scores(tokens), dtype=float) if tokens else np.zeros(self._n_clauses)

    def _embed_query(self, query: str) -> np.ndarray:
        if self.query_tower is not None:
            vector = self.query_tower.embed(query).reshape(1, -1)
        else:
            vector = self.embeddings.embed_query_array(query).reshape(1, -1)
        vector.setflags(write=False)  # shared by every caller of the cache
        return vector

    def _dense_clause_scores(self, vector: np.ndarray, exhaustive: bool = False) -> np.ndarray:
        """Best unit score per clause; `exhaustive` scores every unit (a document filter needs them all)."""
        ntotal = self.index.dense.ntotal
        n = ntotal if exhaustive else min(ntotal, self.candidate_k * DENSE_SEARCH_FACTOR)
        scores, rows = self.index.dense.search(vector, n)
        clause_scores = np.zeros(self._n_clauses)
        valid = rows[0] >= 0
        np.maximum.at(clause_scores, self.index.unit_clause[rows[0][valid]], scores[0][valid])
        return clause_scores


def _dense_ranks(descending: np.ndarray) -> np.ndarray:
    """0-based ranks of already sorted scores where equal scores share a rank: [9, 7, 7, 5] → [0, 1, 1, 3]."""
    ranks = np.arange(len(descending))
    for i in range(1, len(descending)):
        if descending[i] == descending[i - 1]:
            ranks[i] = ranks[i - 1]
    return ranks


def heading_text(index: ClauseIndex, clause) -> str:  # noqa: ANN001 - a Clause
    """What the heading field holds for a clause: its 编/章/节 path, or the plan's part and section titles
    (document names are matched separately, as the named-document bonus)."""
    return " ".join(clause.heading_path)
