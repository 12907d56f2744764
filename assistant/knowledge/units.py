"""Retrieval units: the pieces that are embedded and BM25-indexed, each pointing back to its clause.

A whole plan measure covers many topics, so one vector per measure loses most dense recall; each
sentence of a measure (and each 款 of a long article) becomes its own unit, prefixed with the clause's
context, and unit scores are aggregated back to the clause. Short articles stay one unit.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..schema import Clause, DocumentMeta

SHORT_ARTICLE_CHARS = 160   # articles up to this length are embedded whole
MAX_UNIT_CHARS = 240        # the embedding cost grows with length; topics sit at the start
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_QUOTED = re.compile(r"[“「]([^”」]{2,24})[”」]")


@dataclass(frozen=True)
class Unit:
    clause_index: int
    text: str

    @property
    def key(self) -> str:
        """Content hash: the embedding cache key (with the model id)."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:24]


def clause_context(clause: Clause, meta: DocumentMeta) -> str:
    """What a unit needs to be understood alone: the document's short name and the clause label.

    Kept short on purpose: every character of context is embedded once per unit.
    """
    name = meta.short_names[0] if meta.short_names else meta.title
    return f"{name} {clause.label}："


def units_for(clause_index: int, clause: Clause, meta: DocumentMeta) -> list[Unit]:
    """Split one clause into retrieval units as the module docstring describes."""
    context = clause_context(clause, meta)
    if meta.kind == "plan":
        pieces = list(clause.sentences) or [clause.text]
    elif len(clause.text) <= SHORT_ARTICLE_CHARS:
        pieces = [clause.text]
    else:
        pieces = list(clause.paragraphs)
    return [Unit(clause_index, (context + piece)[:MAX_UNIT_CHARS]) for piece in pieces if piece.strip()]


def policy_vocabulary(metas: list[DocumentMeta], clauses: list[Clause]) -> list[str]:
    """Terms people search with: quoted plan terms (“一件事”, “带押过户”) and document short names."""
    words: set[str] = set()
    for meta in metas:
        for name in (*meta.short_names, meta.title.removeprefix("中华人民共和国")):
            words.update(_HAN_RUN.findall(name))
    for clause in clauses:
        for quoted in _QUOTED.findall(clause.text):
            words.update(_HAN_RUN.findall(quoted))
    return sorted(words)
