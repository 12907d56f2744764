"""Training groups for the relevance model: a query, the clauses that answer it, and hard negatives.

Three sources, kept apart from every eval question:
- mined: real questions from public pages, labelled by the statute text they quote (mining.py);
- inverse cloze (ICT): one sentence of an article as the query, the rest of the article as its positive,
  costing nothing and covering every article, including those no page asks about;
- operator: labels an operator gave in the 条文检索（坐席） tab or the feedback API (a clause answers the
  question), stored in the database.

Negatives are what the model must learn to push down: the first-stage ranker's own top candidates that
are not gold (neighbouring articles of the right law, mostly) and, for ICT, the article's neighbours.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..knowledge.relevance import relevance_text as clause_input
from ..schema import Clause, DocumentMeta
from ..text import split_sentences

MIN_ICT_CHARS = 12
"""An ICT query shorter than this ("依法处理。") says nothing about its article."""
ICT_KEEP_SENTENCE = 0.1
"""Share of ICT positives that keep the query sentence: mostly removed, so the model learns what an
article is about rather than string copying; sometimes kept, since real answers do quote the question's
words (the rate the ICT paper found best)."""
NEIGHBOURS = 3  # same-law articles on each side offered as ICT negatives


@dataclass
class Group:
    """One query with its positives and negatives (indices into the index's clauses)."""

    query: str
    positives: list[int]
    negatives: list[int]
    kind: str  # "mined" | "ict" | "operator"
    fold_key: str  # what must stay in one fold: the source site, or the document for ICT
    positive_text: str | None = None  # ICT: the article without its query sentence
    extra: dict = field(default_factory=dict)


def ict_groups(clauses: Sequence[Clause], documents: dict[str, DocumentMeta], rng: random.Random,
               per_clause: int = 2) -> list[Group]:
    """Up to `per_clause` ICT queries per regulation article of two or more sentences."""
    by_doc: dict[str, list[int]] = {}
    for i, clause in enumerate(clauses):
        by_doc.setdefault(clause.doc_id, []).append(i)
    groups = []
    for i, clause in enumerate(clauses):
        meta = documents[clause.doc_id]
        sentences = [s for s in (clause.sentences or split_sentences(clause.text)) if len(s) >= MIN_ICT_CHARS]
        if len(sentences) < 2:
            continue
        siblings = by_doc[clause.doc_id]
        at = siblings.index(i)
        neighbours = [siblings[j] for j in range(max(0, at - NEIGHBOURS), min(len(siblings), at + NEIGHBOURS + 1))
                      if j != at]
        for sentence in rng.sample(sentences, min(per_clause, len(sentences))):
            keep = rng.random() < ICT_KEEP_SENTENCE
            text = clause.text if keep else clause.text.replace(sentence, "", 1)
            positive = clause_input(clause.model_copy(update={"text": text}), meta)
            groups.append(Group(sentence, [i], neighbours, "ict", f"doc:{clause.doc_id}", positive_text=positive))
    return groups


def labelled_groups(items: Iterable[tuple[str, list[str], str, str]], by_id: dict[str, int]) -> list[Group]:
    """Groups from (question, gold clause ids, kind, fold key); unknown ids (a retired document) dropped."""
    merged: dict[tuple[str, str], Group] = {}
    for question, clause_ids, kind, fold_key in items:
        positives = [by_id[c] for c in clause_ids if c in by_id]
        if not positives:
            continue
        group = merged.setdefault((question, kind), Group(question, [], [], kind, fold_key))
        group.positives.extend(p for p in positives if p not in group.positives)
    return list(merged.values())


def add_pool_negatives(groups: list[Group], pool: Callable[[str], Sequence[int]], per_group: int,
                       same_text: Callable[[int, int], bool]) -> None:
    """Add the first-stage ranker's top non-gold candidates as negatives (what the model must fix).

    `same_text` says two clauses are one article in two versions (支付条例 2020/2025): never a negative.
    """
    for group in groups:
        taken = set(group.negatives)
        hard = [i for i in pool(group.query)
                if i not in group.positives and i not in taken
                and not any(same_text(i, p) for p in group.positives)]
        group.negatives = list(dict.fromkeys([*hard[:per_group], *group.negatives]))
