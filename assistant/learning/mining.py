"""Label mined (question, quoted statute) records by the TEXT they quote, never by article number.

Public pages cite old numbering (公司法 2018 第七十一条 is 2023 第八十四条) and sometimes the wrong law,
so a record's quotes are split into sentences and each sentence is matched to the corpus clauses by
character-trigram containment. A sentence labels a clause only with a clear margin over the best clause
of any other article; a record becomes training pairs only when its matched sentences agree on at most
MAX_CLAUSES clauses and no named law contradicts them. The page's own answer text is never kept: a pair
stores the question as written, the page address, the clause id and the clause span that matched.

Pages or questions that an eval file holds are dropped (eval questions come from the same kind of page).
Pages in traditional characters are read through OpenCC's t2s conversion (the `train` extra), question
and quotes alike: users here write simplified Chinese, and the corpus is in it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import BaseModel

from ..answering.references import DocumentNames
from ..evaluation.training_sets import DomainQuestion, MinedPair, normalise
from ..numerals import with_arabic_numbers
from ..schema import Clause, DocumentMeta

MIN_SENTENCE_NGRAMS = 12
"""Shorter quote sentences ("依法处理。", "本法自公布之日起施行。") are boilerplate many clauses share."""
MIN_CONTAINMENT = 0.6
"""Share of a quote sentence's trigrams found in the clause: pages re-punctuate, use 20 for 二十 and quote
the pre-2023 wording, so an exact match is too strict; below 0.6 the match is a paraphrase of something."""
MIN_MARGIN = 0.25
"""Over the best clause of another article: a sentence shared by two articles labels neither."""
MAX_CLAUSES = 3
"""A page quoting more articles than this is a survey of a law, not an answer to its question."""
_SENTENCE_END = re.compile(r"[。；;！!？?\n]+")


class MinedRecord(BaseModel):
    """What a search for pages yielded: a question and the statute text quoted beside it."""

    url: str | None = None
    questions: list[str]
    quotes: list[str]
    law: str | None = None
    article: str | None = None
    query: str | None = None


@lru_cache(maxsize=1)
def _to_simplified():  # noqa: ANN202 - an opencc.OpenCC
    try:
        import opencc
    except ImportError:
        raise ImportError("mining needs the `train` extra: pip install -e '.[train]'") from None
    return opencc.OpenCC("t2s")


def simplified(text: str) -> str:
    """Traditional characters as simplified ones (a page's script, not its words, changes)."""
    return _to_simplified().convert(text)


def trigrams(text: str) -> set[str]:
    """Character trigrams of the normalised text, numbers written in Arabic digits on both sides."""
    text = normalise(with_arabic_numbers(text))
    return {text[i : i + 3] for i in range(len(text) - 2)}


def site_of(url: str | None) -> str:
    """The source site, for grouping cross-validation folds: pages of one site share a style."""
    if not url:
        return "unknown"
    host = urlsplit(url).hostname or "unknown"
    return host.removeprefix("www.").removeprefix("m.")


class ClauseMatcher:
    """Trigram containment of a quote sentence in every clause, through an inverted index."""

    def __init__(self, clauses: Sequence[Clause], documents: dict[str, DocumentMeta]) -> None:
        self.clauses = clauses
        self.names = DocumentNames(documents)
        self._postings: dict[str, list[int]] = defaultdict(list)
        for i, clause in enumerate(clauses):
            for gram in trigrams(clause.text):
                self._postings[gram].append(i)
        # Articles with the same text in two versions of a law (支付条例 2020/2025) are one article here.
        self._article_key = [normalise(c.text) for c in clauses]

    def match_sentence(self, sentence: str) -> tuple[int, float, float] | None:
        """(clause index, containment, margin) of a confident match, or None."""
        grams = trigrams(sentence)
        if len(grams) < MIN_SENTENCE_NGRAMS:
            return None
        counts: Counter[int] = Counter()
        for gram in grams:
            counts.update(self._postings.get(gram, ()))
        if not counts:
            return None
        ranked = counts.most_common()
        best, hits = ranked[0]
        containment = hits / len(grams)
        other = next((h for i, h in ranked[1:] if self._article_key[i] != self._article_key[best]), 0)
        margin = containment - other / len(grams)
        if containment < MIN_CONTAINMENT or margin < MIN_MARGIN:
            return None
        return best, containment, margin

    def label(self, record: MinedRecord) -> list[tuple[int, str, float, float]]:
        """The clauses a record's quotes confidently match, with the matched span of each."""
        matched: dict[int, tuple[list[str], list[float], list[float]]] = {}
        for quote in record.quotes:
            for sentence in _SENTENCE_END.split(simplified(quote)):
                hit = self.match_sentence(sentence)
                if hit is not None:
                    spans, conts, margins = matched.setdefault(hit[0], ([], [], []))
                    spans.append(self._span_in_clause(sentence, self.clauses[hit[0]]))
                    conts.append(hit[1])
                    margins.append(hit[2])
        if not matched or len(matched) > MAX_CLAUSES:
            return []
        named = self.names.find(record.law or "")
        if named and not any(self.clauses[i].doc_id in self._lineage_ids(named) for i in matched):
            return []  # the page names another law than the one its words match
        return [(i, "".join(dict.fromkeys(spans)), min(conts), min(margins))
                for i, (spans, conts, margins) in matched.items()]

    def _lineage_ids(self, doc_ids: list[str]) -> set[str]:
        """Named documents and their other versions (a page saying 支付条例 may quote either text)."""
        stems = {d.removesuffix("-2020") for d in doc_ids}
        return {c.doc_id for c in self.clauses if c.doc_id.removesuffix("-2020") in stems}

    @staticmethod
    def _span_in_clause(sentence: str, clause: Clause) -> str:
        """The clause's own sentence that the quote sentence matched best (our text, not the page's)."""
        grams = trigrams(sentence)
        return max(clause.sentences or (clause.text,), key=lambda s: len(grams & trigrams(s)))


def mine_pairs(records: Iterable[MinedRecord], matcher: ClauseMatcher, held_out_urls: set[str],
               held_out_questions: set[str]) -> list[MinedPair]:
    """Training pairs from raw records, without any page or question an eval file holds."""
    pairs: dict[tuple[str, str], MinedPair] = {}
    for record in records:
        if record.url and record.url in held_out_urls:
            continue
        labels = matcher.label(record)
        for question in record.questions:
            question = simplified(question.strip())
            if not question or normalise(question) in held_out_questions:
                continue
            for index, span, containment, margin in labels:
                clause_id = matcher.clauses[index].clause_id
                pairs.setdefault((normalise(question), clause_id), MinedPair(
                    question=question, source=record.url, site=site_of(record.url), clause_id=clause_id,
                    span=span, containment=round(containment, 3), margin=round(margin, 3)))
    return list(pairs.values())


def yield_by_law(pairs: Sequence[MinedPair], documents: dict[str, DocumentMeta]) -> dict[str, dict[str, int]]:
    """Pairs, distinct questions and distinct clauses per document: where mining pays."""
    table: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"pairs": set(), "questions": set(), "clauses": set()})
    for pair in pairs:
        doc_id = pair.clause_id.split("#", 1)[0]
        row = table[documents[doc_id].title if doc_id in documents else doc_id]
        row["pairs"].add(f"{pair.question}|{pair.clause_id}")
        row["questions"].add(pair.question)
        row["clauses"].add(pair.clause_id)
    return {law: {k: len(v) for k, v in row.items()} for law, row in sorted(table.items())}


class RawDomainRecord(BaseModel):
    """A question found beside no statute: off the corpus's domain, or next to it."""

    url: str | None = None
    question: str
    kind: str
    query: str | None = None


def domain_questions(records: Iterable[RawDomainRecord], held_out_urls: set[str],
                     held_out_questions: set[str]) -> list[DomainQuestion]:
    """Off- and near-domain questions in simplified characters, one per question, eval pages left out."""
    kept: dict[str, DomainQuestion] = {}
    for record in records:
        question = simplified(record.question.strip())
        if record.kind not in ("off_domain", "near_domain") or not question:
            continue
        if (record.url and record.url in held_out_urls) or normalise(question) in held_out_questions:
            continue
        kept.setdefault(normalise(question), DomainQuestion(question=question, source=record.url,
                                                            site=site_of(record.url), kind=record.kind))
    return list(kept.values())
