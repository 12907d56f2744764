"""The LangChain face of hybrid retrieval: clauses as `Document`s, for LCEL chains and other callers."""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from .retrieval import ClauseSearcher, Method


class ClauseRetriever(BaseRetriever):
    """The LangChain face of `ClauseSearcher`: clauses as `Document`s with their metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: ClauseSearcher
    k: int = 5
    method: Method = "hybrid"

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        retrieval = self.searcher.retrieve(query, k=self.k, method=self.method)
        documents = []
        for hit in retrieval.hits:
            clause = self.searcher.index.clauses[hit.clause_index]
            meta = self.searcher.index.documents[clause.doc_id]
            documents.append(LCDocument(
                page_content=clause.text,
                id=clause.clause_id,
                metadata={
                    "clause_id": clause.clause_id, "doc_title": meta.title, "label": clause.label,
                    "doc_number": meta.doc_number, "effective": meta.effective, "score": hit.score,
                },
            ))
        return documents
