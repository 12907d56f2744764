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
from ..text import split_sentences

SHORT_ARTICLE_CHARS = 160   # articles up to this length are embedded whole
MAX_LIST_CHARS = 320        # a 款 with many 项 is quoted up to the items that fit, and says so
MORE_ITEMS_NOTE = "（其余各项见条文全文）"
_ITEM_LINE = re.compile(r"\n(?=[（(][一二三四五六七八九十]+[）)])")
MAX_UNIT_CHARS = 240        # the embedding cost grows with length; topics sit at the start
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_QUOTED = re.compile(r"[“「]([^”」]{2,24})[”」]")


@dataclass(frozen=True)
class Unit:
    clause_index: int
    text: str

    @property
    def key(self) -> str:
        return text_key(self.text)


def clause_context(clause: Clause, meta: DocumentMeta) -> str:
    """What a unit needs to be understood alone: the document's short name and the clause label.

    Kept short on purpose: every character of context is embedded once per unit.
    """
    name = meta.short_names[0] if meta.short_names else meta.title
    return f"{name} {clause.label}："


def unit_pieces(clause: Clause, meta: DocumentMeta) -> list[str]:
    """The parts of a clause that become units, without their context prefix (the composer matches
    quoted sentences to them to reuse the units' retrieval scores)."""
    if meta.kind == "plan":
        pieces = list(clause.sentences) or [clause.text]
    elif len(clause.text) <= SHORT_ARTICLE_CHARS:
        pieces = [clause.text]
    else:
        pieces = list(clause.paragraphs)
    return [piece for piece in pieces if piece.strip()]


def units_for(clause_index: int, clause: Clause, meta: DocumentMeta) -> list[Unit]:
    """Split one clause into retrieval units as the module docstring describes."""
    context = clause_context(clause, meta)
    pieces = unit_pieces(clause, meta)
    return [Unit(clause_index, (context + piece)[:MAX_UNIT_CHARS]) for piece in pieces if piece.strip()]


def quotable_spans(clause: Clause) -> list[str]:
    """What an answer may quote of a clause, in order: its sentences, but a 款 that introduces 项
    stays one span with its items on their lines (cut after the items that fit, saying so).

    Each span is embedded at build time (spans.faiss), so the composer can tell which sentence of a
    clause answers a question, not only which clause does.
    """
    pieces: list[str] = []
    for paragraph in clause.paragraphs:
        if holds_items(paragraph):
            pieces.append(_shorten_list(paragraph))
        else:
            pieces.extend(split_sentences(paragraph))
    return pieces


def holds_items(text: str) -> bool:
    """Whether `text` holds a list of 项, one per line ("…下列材料：\n（一）申请书；\n（二）…")."""
    return bool(_ITEM_LINE.search(text))


def _shorten_list(paragraph: str) -> str:
    """The items that fit; a cut list says so, lest a caller take the quoted items for all of them."""
    lines = paragraph.split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if sum(map(len, kept)) + len(line) > MAX_LIST_CHARS:
            kept.append(MORE_ITEMS_NOTE)
            break
        kept.append(line)
    return "\n".join(kept)


def text_key(text: str) -> str:
    """Content hash of an embedded text: the embedding cache key (with the model id)."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]


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
