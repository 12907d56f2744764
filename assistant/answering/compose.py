"""Extractive answers: the sentences of the top clauses that answer the question, each ending in [n].

No model writes anything here: every answer sentence is a verbatim span of the clause it cites, so
citations are valid and every number in an answer occurs in its cited clause by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..numerals import int_to_cn
from ..schema import Citation, Clause, DocStatus, DocumentMeta
from ..text import content_words, expand_colloquial, split_sentences
from .grounding import split_sentences as answer_sentences

ABSTAIN_REPLY = (
    "抱歉，现有政策库（厦门营商环境行动方案及相关国家法律法规）中没有找到能够回答这个问题的条文，"
    "为避免误导，暂不作答。建议拨打12345政务服务便民热线，或向相关主管部门咨询。"
)
INSTRUCTION_REPLY = (
    "抱歉，我只能依据现有政策库回答营商环境政策方面的问题，不能执行与此无关的指令。"
    "如需其他帮助，请拨打12345政务服务便民热线。"
)
ASKS_FOR_NUMBER = re.compile(r"多久|多长|几天|几日|几个|多少|期限|时限|天数|日内|比例|金额|上限|最多|最少|最长|最短|最高|最低|几年|几个月|几次|多大")
_HAS_NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万]+(日|天|年|个月|个工作日|万元|元|倍|%|分之)|百分之")
_ITEM_LINE = re.compile(r"\n(?=[（(][一二三四五六七八九十]+[）)])")
MAX_SPAN_CHARS = 220
MAX_LIST_CHARS = 320   # a 款 with many 项 is cut after the items that fit, and says so
MORE_ITEMS_NOTE = "（其余各项见条文全文）"


@dataclass
class Span:
    """A quotable piece of a clause: a sentence, or a 款 with its 项 kept together."""

    rank: int            # rank of the clause among the retrieved ones
    position: int        # order inside the clause
    text: str
    score: float = 0.0


def make_citation(n: int, clause: Clause, meta: DocumentMeta, score: float | None = None) -> Citation:
    return Citation(
        n=n, clause_id=clause.clause_id, doc_id=clause.doc_id, doc_title=meta.title, label=clause.label,
        heading_path=list(clause.heading_path), text=clause.text, doc_number=meta.doc_number,
        effective=meta.effective, status=meta.status, status_zh=meta.status_zh, score=score,
    )


def clause_spans(clause: Clause, rank: int) -> list[Span]:
    """Quotable spans: plain sentences, but a 款 that introduces 项 stays one span, items on their lines."""
    pieces: list[str] = []
    for paragraph in clause.paragraphs:
        if _ITEM_LINE.search(paragraph):
            pieces.append(_shorten_list(paragraph))
        else:
            pieces.extend(split_sentences(paragraph))
    return [Span(rank, position, text) for position, text in enumerate(pieces)]


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


def score_span(span: Span, question_words: set[str], wants_number: bool) -> float:
    """Lexical overlap with the question (longer words weigh more), a clause-rank prior, a number bonus."""
    overlap = sum(len(w) for w in question_words if w in span.text)
    total = sum(len(w) for w in question_words) or 1
    score = overlap / total + 0.35 / (1 + span.rank)
    if wants_number and _HAS_NUMBER.search(span.text):
        score += 0.25
    if len(span.text) > MAX_SPAN_CHARS:
        score -= 0.1
    return score


def select_spans(question: str, ranked: list[Clause], max_sentences: int) -> list[Span]:
    """The spans that answer: best-scoring first, at most two per clause, then in reading order."""
    words = set(content_words(expand_colloquial(question)))
    wants_number = bool(ASKS_FOR_NUMBER.search(question))
    candidates = [span for rank, clause in enumerate(ranked) for span in clause_spans(clause, rank)]
    for span in candidates:
        span.score = score_span(span, words, wants_number)
    chosen: list[Span] = []
    per_clause: dict[int, int] = {}
    best = max((s.score for s in candidates), default=0.0)
    for span in sorted(candidates, key=lambda s: -s.score):
        if len(chosen) >= max_sentences or span.score < best * 0.6:
            break
        if per_clause.get(span.rank, 0) >= 2:
            continue
        chosen.append(span)
        per_clause[span.rank] = per_clause.get(span.rank, 0) + 1
    return sorted(chosen, key=lambda s: (s.rank, s.position))


def compose(spans: list[Span], marker_for_rank: dict[int, int]) -> str:
    """Join spans into the answer text; every sentence ends in its clause's [n], list items on their lines."""
    blocks = []
    for span in spans:
        marker = f"[{marker_for_rank[span.rank]}]"
        separator = "\n" if "\n" in span.text else ""
        blocks.append(separator.join(sentence + marker for sentence in answer_sentences(span.text)))
    return ("\n" if any("\n" in block for block in blocks) else "").join(blocks)


def reference_answer(clause: Clause, meta: DocumentMeta, max_sentences: int) -> str:
    """A direct lookup reads the clause itself: its opening sentences, the rest one click away."""
    spans = clause_spans(clause, 0)[:max_sentences]
    text = compose(spans, {0: 1})
    if len(spans) < len(clause_spans(clause, 0)):
        text += "（条文全文见引用[1]）"
    return text


def missing_article_reply(meta: DocumentMeta, article: int, last_article: int) -> str:
    return (
        f"《{meta.title}》共{int_to_cn(last_article)}条，没有第{int_to_cn(article)}条。"
        "请核对条文序号，或直接描述您要了解的问题。"
    )


def unnumbered_document_reply(meta: DocumentMeta) -> str:
    return (
        f"《{meta.title}》不按“第X条”编号，而是按“一、（一）1.”分部分、分措施编排，因此没有该条。"
        "请直接描述您要了解的措施（例如“一件事一次办”“带押过户”），或在条文检索中按关键词查找。"
    )


def unknown_document_reply(name: str) -> str:
    return (
        f"政策库目前未收录《{name.strip('《》')}》，无法提供该条文。本库收录厦门营商环境行动方案及相关国家法律法规；"
        "如需查询其他法规，请拨打12345政务服务便民热线或向相关主管部门咨询。"
    )


def version_notices(metas: list[DocumentMeta], dropped: list[DocumentMeta]) -> list[str]:
    """Say which version an answer rests on, and warn about texts that are not (or no longer) in force."""
    notices = []
    for meta in metas:
        replaced = [d for d in dropped if d.superseded_by == meta.doc_id]
        if replaced:
            notices.append(
                f"以上依据现行有效的《{meta.title}》（{meta.version or meta.doc_number}，{meta.effective}起施行）；"
                f"{'、'.join(d.version or d.title for d in replaced)}已被取代，仅供参考。"
            )
        if meta.status is DocStatus.superseded:
            notices.append(f"注意：所引《{meta.title}》（{meta.version}）已被修订或取代。{meta.status_note or ''}")
        elif meta.status is DocStatus.draft:
            notices.append(
                f"注意：所引《{meta.title}》为征求意见稿，具体措施以正式印发的文件为准。"
            )
    return notices
