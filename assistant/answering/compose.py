"""Extractive answers: the sentences of the top clauses that answer the question, each ending in [n].

No model writes anything here: every answer sentence is a verbatim span of the clause it cites, so
citations are valid and every number in an answer occurs in its cited clause by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict

from ..knowledge.units import holds_items, quotable_spans
from ..numerals import int_to_cn
from ..schema import STATUS_LABELS_ZH, Citation, Clause, DocStatus, DocumentMeta
from .grounding import split_sentences as answer_sentences

ABSTAIN_REPLY = (
    "抱歉，现有政策库（厦门营商环境行动方案及相关国家法律法规）中没有找到能够回答这个问题的条文，"
    "为避免误导，暂不作答。建议拨打12345政务服务便民热线，或向相关主管部门咨询。"
)
INSTRUCTION_REPLY = (
    "抱歉，我只能依据现有政策库回答营商环境政策方面的问题，不能执行与此无关的指令。"
    "如需其他帮助，请拨打12345政务服务便民热线。"
)
OTHER_PLACE_REPLY = (
    "抱歉，政策库收录的是厦门营商环境行动方案和国家层面的法律法规，不含其他地方出台的补贴、奖励、人才等专项政策，"
    "无法回答。建议向当地12345政务服务便民热线或主管部门咨询。"
)
AS_OF_NOTICE = "以上依据{day}当日有效的文件版本作答。"
LOW_CONFIDENCE_INTRO = "以下条文与问题可能相关，但不能确定它们就是答案，请核对条文原文后再答复："
LOW_CONFIDENCE_REFERRAL = "如需确切答复，建议拨打12345政务服务便民热线或向相关主管部门咨询。"
NO_NUMBER_NOTICE = "您问的是具体期限或数额，但所引条文没有规定具体数字。"
# Question words that ask for a number, deadline or amount: the answer should then state one, or say
# that the cited clauses do not (tests/test_compose.py has examples on both sides).
ASKS_FOR_NUMBER = re.compile(r"多久|多长|几天|几日|几个|多少|期限|时限|天数|日内|比例|金额|上限|最多|最少|最长|最短|最高|最低|几年|几个月|几次|多大")
HAS_NUMBER = re.compile(r"\d|[一二三四五六七八九十百千万]+(日|天|年|个月|个工作日|万元|元|倍|%|分之)|百分之")
MAX_SPAN_CHARS = 220


@dataclass(eq=False)  # spans are compared by identity
class Span:
    """A quotable piece of a clause: a sentence, or a 款 with its 项 kept together."""

    rank: int            # rank of the clause among the retrieved ones
    position: int        # order inside the clause
    text: str
    score: float = 0.0
    context: Span | None = None  # the span it refers back to (前款, 上述), quoted before it


class SpanWeights(BaseModel):
    """How a span's score mixes what retrieval computed; chosen by cross-validation (evaluation.tuning).

    score = coverage (idf-weighted share of the question's words in the span)
          + dense * (the span's embedding similarity to the question, scaled 0..1 over candidates)
          + prior * (its clause's place in the retrieval order: 1 for the first, 1/2, 1/3 after it)
          + number * (the question asks for a number and the span states one)
    A span is quoted when it scores at least `keep_ratio` of the best span; a clause other than the top
    one is cited only when one of its spans shares a word with the question.
    """

    model_config = ConfigDict(frozen=True)

    dense: float = 0.5
    prior: float = 0.5
    number: float = 0.25
    keep_ratio: float = 0.6


@dataclass(frozen=True)
class RankedClause:
    """A retrieved clause as the composer sees it: its retrieval prior and its units' dense similarities."""

    clause: Clause
    score: float  # 1/(1+rank) in the final order (see AnswerPipeline.ranked_clauses)
    unit_pieces: tuple[str, ...] = ()
    unit_dense: tuple[float, ...] = ()
    span_dense: tuple[float, ...] = ()  # per quotable span, in order: its own vector's cosine to the question


# A span that leans on its context cannot be quoted alone: "依照前款规定…", "有前款第二项情形的…",
# "上述材料…", "个体工商户申请注销登记的，无需提交第二项、第三项材料". Such a span is quoted after the span
# before it (its context) or not at all. The reference may follow a leading condition ("…的，"), so the
# first 30 characters of its first sentence are searched; a later reference mostly points inside the span.
DANGLING = re.compile(r"^[^。；]{0,30}?(前款|前两款|前三款|前项|前述|上述|本款|第[一二三四五六七八九十]+项|该(条|款|项|情形|规定))")
_ITEM_REFERENCE = re.compile(r"第[一二三四五六七八九十]+项|前项")


def make_citation(n: int, clause: Clause, meta: DocumentMeta, score: float | None = None) -> Citation:
    status = meta.status_on(date.today())
    return Citation(
        n=n, clause_id=clause.clause_id, doc_id=clause.doc_id, doc_title=meta.title, label=clause.label,
        heading_path=list(clause.heading_path), text=clause.text, doc_number=meta.doc_number,
        effective=meta.effective, status=status, status_zh=STATUS_LABELS_ZH[status], score=score,
    )


def clause_spans(clause: Clause, rank: int) -> list[Span]:
    """The clause's quotable spans (knowledge.units.quotable_spans), each knowing the span it leans on:
    for 第二项/前项 the nearest list of 项 before it ("无需提交第二项、第三项材料" gets the list of 材料, not
    the "除前款规定外…" sentence between them); for 前款/上述 the span right before it, if that one stands
    alone."""
    spans = [Span(rank, position, text) for position, text in enumerate(quotable_spans(clause))]
    for i, span in enumerate(spans[1:], start=1):
        reference = DANGLING.search(span.text)
        if reference is None:
            continue
        if _ITEM_REFERENCE.fullmatch(reference.group(1)):
            span.context = next((b for b in reversed(spans[:i]) if holds_items(b.text)), None)
        elif not DANGLING.search(spans[i - 1].text):
            span.context = spans[i - 1]
    return spans


def _similarity(span: Span, ranked: RankedClause) -> float:
    """The span's own cosine to the question; its unit's when the index has no vector for it."""
    if span.position < len(ranked.span_dense):
        return ranked.span_dense[span.position]
    return _unit_similarity(span, ranked)


def _unit_similarity(span: Span, ranked: RankedClause) -> float:
    """The dense similarity of the retrieval unit that holds the span (the clause's best when none does)."""
    head = span.text.split("\n", 1)[0][:40]
    for piece, score in zip(ranked.unit_pieces, ranked.unit_dense):
        if head in piece or piece in span.text:
            return score
    return max(ranked.unit_dense, default=0.0)


def select_spans(question_words: dict[str, float], wants_number: bool, ranked: list[RankedClause],
                 max_sentences: int, weights: SpanWeights = SpanWeights()) -> list[Span]:
    """The spans that answer, scored as `SpanWeights` says: best first, at most two per clause, then
    in reading order; a dangling span brings its context along or is skipped.

    `question_words` maps each content word of the question to its weight (idf over clauses).
    """
    total = sum(question_words.values()) or 1.0
    top_score = max((r.score for r in ranked), default=0.0) or 1.0
    candidates = [span for rank, r in enumerate(ranked) for span in clause_spans(r.clause, rank)]
    if not candidates:
        return []
    dense = [_similarity(s, ranked[s.rank]) for s in candidates]
    low, high = min(dense), max(dense)
    coverage: dict[int, float] = {}
    for i, (span, similarity) in enumerate(zip(candidates, dense)):
        coverage[i] = sum(w for word, w in question_words.items() if word in span.text) / total
        span.score = (
            coverage[i]
            + weights.dense * ((similarity - low) / (high - low) if high > low else 1.0)
            + weights.prior * ranked[span.rank].score / top_score
            + weights.number * (wants_number and bool(HAS_NUMBER.search(span.text)))
            - (0.1 if len(span.text) > MAX_SPAN_CHARS else 0.0)
        )
    best = max(s.score for s in candidates)
    chosen: list[Span] = []
    per_clause: dict[int, int] = {}
    for i in sorted(range(len(candidates)), key=lambda j: -candidates[j].score):
        span = candidates[i]
        if len(chosen) >= max_sentences or span.score < best * weights.keep_ratio:
            break
        if per_clause.get(span.rank, 0) >= 2 or span in chosen:
            continue
        if span.rank > 0 and coverage[i] == 0:
            continue  # a lower-ranked clause that shares no word with the question stays uncited
        if DANGLING.search(span.text):
            if span.context is None:
                continue
            if span.context not in chosen:
                chosen.append(span.context)
        chosen.append(span)
        per_clause[span.rank] = per_clause.get(span.rank, 0) + 1
    return sorted(chosen, key=lambda s: (s.rank, s.position))


def compose(spans: list[Span], marker_for_rank: dict[int, int]) -> str:
    """One quoted span per line, each ending in its clause's [n]; a list of 项 keeps its lines and one marker."""
    lines = []
    for span in spans:
        marker = f"[{marker_for_rank[span.rank]}]"
        if "\n" in span.text:
            lines.append(span.text + marker)
        else:
            lines.extend(sentence + marker for sentence in answer_sentences(span.text))
    return "\n".join(lines)


def states_a_number(spans: list[Span]) -> bool:
    return any(HAS_NUMBER.search(s.text) for s in spans)


def reference_answer(clause: Clause, meta: DocumentMeta, max_sentences: int) -> str:
    """A direct lookup reads the clause itself: its opening sentences, the rest one click away."""
    spans = clause_spans(clause, 0)[:max_sentences]
    for span in spans:
        span.context = None
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


def version_notices(metas: list[DocumentMeta], dropped: list[DocumentMeta], as_of: date | None = None) -> list[str]:
    """Say which version an answer rests on, and warn about texts that are not (or no longer) in force:
    in force today, or on `as_of` when the answer is given for a past day."""
    day = as_of or date.today()
    notices = []
    for meta in metas:
        replaced = [d for d in dropped if d.superseded_by == meta.doc_id]
        if replaced:
            notices.append(
                f"以上依据现行有效的《{meta.title}》（{meta.version or meta.doc_number}，{meta.effective}起施行）；"
                f"{'、'.join(d.version or d.title for d in replaced)}已被取代，仅供参考。"
            )
        if meta.status is DocStatus.superseded and not (as_of and meta.in_force_on(as_of)):
            notices.append(f"注意：所引《{meta.title}》（{meta.version}）已被修订或取代。{meta.status_note or ''}")
        elif meta.status is DocStatus.draft:
            notices.append(
                f"注意：所引《{meta.title}》为征求意见稿，具体措施以正式印发的文件为准。"
            )
        elif meta.status_on(day) is DocStatus.expired:
            notices.append(
                f"注意：所引《{meta.title}》的有效期已于{meta.valid_until}届满，请向发文机关确认是否有新的规定。"
            )
    return notices
