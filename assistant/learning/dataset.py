"""Everything a training run reads, gathered once: mined pairs, ICT groups, operator labels, negatives.

Kept apart from evaluation: mined pairs and off-domain questions are read without any page or question
an eval file holds (evaluation/training_sets.py), and dev and test questions are never training data, so
the build's cross-validation on dev stays honest.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from ..evaluation.training_sets import MinedPair, load_off_domain, normalise
from ..knowledge.relevance import relevance_text
from .groups import Group, add_pool_negatives, ict_groups, labelled_groups

POOL_NEGATIVES = 7


def training_groups(assistant, mined: Iterable[MinedPair], operator: Iterable[tuple[str, list[str]]] = (),  # noqa: ANN001
                    seed: int = 13, ict_per_clause: int = 2) -> tuple[list[Group], list[str]]:
    """The groups of one run and the model input text of every clause (negatives index into it).

    Near-domain questions (tax, social insurance: real questions the corpus does not answer) become groups
    with no positive: every candidate is a negative, which teaches the model's scores an absolute level.
    """
    index = assistant.index
    by_id = {c.clause_id: i for i, c in enumerate(index.clauses)}
    groups = labelled_groups([(p.question, [p.clause_id], "mined", f"site:{p.site}") for p in mined]
                             + [(q, ids, "operator", "operator") for q, ids in operator], by_id)
    groups += [Group(r.question, [], [], "unanswerable", f"site:{r.site}") for r in load_off_domain()]
    keys = [normalise(c.text) for c in index.clauses]
    searcher = assistant.searcher

    def pool(query: str) -> list[int]:
        raw = searcher.raw_scores(query)
        return [int(i) for i in searcher.order(query, raw, searcher.fuse(raw, "hybrid"))[: searcher.candidate_k]]

    add_pool_negatives(groups, pool, POOL_NEGATIVES, lambda i, j: keys[i] == keys[j])
    ict = ict_groups(index.clauses, index.documents, random.Random(seed), ict_per_clause)
    add_pool_negatives(ict, pool, POOL_NEGATIVES - 3, lambda i, j: keys[i] == keys[j])
    texts = [relevance_text(c, index.documents[c.doc_id]) for c in index.clauses]
    return groups + ict, texts
