"""How specific each word is to the corpus (idf over clauses): shared by ranking, scope and composing."""

from __future__ import annotations

import math
from functools import lru_cache

from ..text import content_words


class WordStats:
    """How specific each question word is to the corpus: words that occur in few clauses weigh more.

    A question about 厦门人才公寓 shares 厦门 and 申请 with hundreds of clauses; weighting coverage by
    inverse clause frequency lets the one word the corpus lacks (公寓) count for what it is.
    """

    def __init__(self, clause_texts: list[str], policy_terms: list[str]) -> None:
        self._texts = clause_texts
        self._max_idf = math.log(len(clause_texts) + 1)
        # Long quoted plan terms (“同线同标同质”) are unambiguous: a question naming one is in scope.
        self.policy_terms = [t for t in policy_terms if len(t) >= 4]

    @lru_cache(maxsize=8192)
    def idf(self, word: str) -> float:
        frequency = sum(1 for text in self._texts if word in text)
        return math.log((len(self._texts) + 1) / (frequency + 1)) if frequency else self._max_idf

    def coverage(self, question: str, text: str) -> float:
        """Share of the question's word weight (idf) that occurs in `text`."""
        words = content_words(question)
        total = sum(self.idf(w) for w in words)
        return sum(self.idf(w) for w in words if w in text) / total if total else 0.0

    def unknown(self, question: str) -> float:
        """Share of the question's word weight that occurs nowhere in the corpus."""
        words = content_words(question)
        total = sum(self.idf(w) for w in words)
        return sum(self.idf(w) for w in words if self.idf(w) == self._max_idf) / total if total else 1.0

    def names_policy_term(self, question: str) -> bool:
        return any(term in question for term in self.policy_terms)
