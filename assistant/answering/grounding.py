"""Grounding checks shared by generative answering and the eval: is a sentence backed by its cited clauses?

Why one module: the answer path drops what the eval would count as unsupported, so both must use the
very same measure. Everything here is pure Python (no jieba, no model), deterministic and cheap.

Public API (stable; the extractive eval and generate.py call it):

    split_sentences(text) -> list[str]              answer text -> sentences, trailing [n] kept attached
    parse_markers(text) -> list[int]                 [1] [1,2] [1-3] 【1】 ［1］ -> [1, 2, 3] in order
    strip_markers(text) -> str                       text without citation markers
    numbers_in(text) -> set[str]                     canonical numbers/dates/amounts/percentages stated in text
    clause_numbers(texts) -> set[str]                the same, read leniently from clause texts (what may be cited)
    missing_numbers(sentence, clause_texts) -> set   numbers of the sentence found in none of the clauses
    support(sentence, clause_texts) -> float         share of the sentence's character bigrams found in the clauses
    is_supported(sentence, clause_texts) -> bool     support >= threshold and no missing number
    citation_texts(citations) -> dict[int, str]      n → what a sentence citing n may rely on (title, label, text)
    check_answer(answer_text, citations) -> GroundingResult   kept / removed sentences and the cleaned text
    citation_scores(answer_text, citations) -> CitationScores ALCE citation recall / precision

Canonical number forms (so "三十日" meets "30日" and "五十万元" meets "50万元"):
    plain numbers "30", "500000", "1.5"; percentages "30%"; permille "5‰"; fractions "2/3";
    dates "2025-06-01", "2025-06", month-day "03-31".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..numerals import CN_BIG as _CN_BIG
from ..numerals import CN_CHARS as _CN
from ..numerals import CN_DIGIT_CHARS as _CN_DIGIT_CHARS
from ..numerals import cn_to_number

DEFAULT_MIN_SUPPORT = 0.5
"""Share of a sentence's content bigrams that its cited clauses must contain.

Faithful Chinese paraphrases of legal text keep most of its terms (登记机关, 营业执照, 简易注销), so
their bigram coverage sits well above one half; sentences that add claims of their own fall below it.
"""

REASONS_ZH: dict[str, str] = {
    "no_citation": "未标注引用来源",
    "invalid_citation": "引用编号不存在",
    "low_support": "所引条款不支持该句内容",
    "invented_number": "数字、日期或金额未见于所引条款",
}

# ---------------------------------------------------------------------------------------------
# Citation markers and sentences
# ---------------------------------------------------------------------------------------------

_MARKER_RE = re.compile(r"[\[【［]\s*(\d{1,3}(?:\s*[,，、\-–~～]\s*\d{1,3})*)\s*[\]】］]")
_TERMINALS = "。！？!?；;"
_SENT_RE = re.compile(rf"[^{_TERMINALS}\n]*(?:[{_TERMINALS}]+|\n|$)")
_LEADING_MARKERS_RE = re.compile(rf"^(\s*(?:{_MARKER_RE.pattern}\s*)+)")
_ENUMERATOR_RE = re.compile(
    r"^\s*(?:[-*•·]\s*|\d{1,2}\s*[.、．)）](?!\d)\s*|[（(]\s*[一二三四五六七八九十\d]{1,3}\s*[）)]\s*"
    r"|[一二三四五六七八九十]{1,3}\s*[、是]\s*|第[一二三四五六七八九十]{1,3}\s*[，,、]\s*)"
)


def parse_markers(text: str) -> list[int]:
    """Citation numbers in `text`, in order of appearance, without repeats; ranges are expanded."""
    out: list[int] = []
    for m in _MARKER_RE.finditer(text):
        for part in re.split(r"\s*[,，、]\s*", m.group(1)):
            bounds = re.split(r"\s*[\-–~～]\s*", part)
            if len(bounds) == 2 and int(bounds[0]) <= int(bounds[1]) <= int(bounds[0]) + 20:
                numbers = range(int(bounds[0]), int(bounds[1]) + 1)
            else:
                numbers = [int(b) for b in bounds]
            out.extend(n for n in numbers if n not in out)
    return out


def strip_markers(text: str) -> str:
    """`text` without any citation marker."""
    return _MARKER_RE.sub("", text)


def split_sentences(text: str) -> list[str]:
    """Split answer text into sentences on 。！？；!?; and line breaks.

    Markers written after the full stop ("……办理。[1]") belong to the sentence before them, which is
    how models often place them; they are moved back onto that sentence.
    """
    pieces = [p for p in _SENT_RE.findall(text or "") if p.strip()]
    sentences: list[str] = []
    for piece in pieces:
        piece = piece.strip()
        lead = _LEADING_MARKERS_RE.match(piece)
        if lead and sentences:
            sentences[-1] += lead.group(1).strip()
            piece = piece[lead.end():].strip()
        if piece:
            sentences.append(piece)
    return sentences


def _plain(text: str) -> str:
    """NFKC-normalised text without markers, markdown emphasis or a leading list enumerator."""
    text = unicodedata.normalize("NFKC", strip_markers(text)).replace("*", "").replace("#", "")
    return _ENUMERATOR_RE.sub("", text, count=1)


# ---------------------------------------------------------------------------------------------
# Numbers, dates, amounts, percentages
# ---------------------------------------------------------------------------------------------

_NUM = rf"(?:\d+(?:\.\d+)?|[{_CN}]+)"

# Words whose numeral characters are not quantities ("统一", "一件事", "十分重要").
_IDIOMS = ("十分", "一些", "一切", "一般", "一律", "一并", "一致", "一体", "一起", "一旦", "一定",
           "一直", "一方面", "统一", "进一步", "同一", "唯一", "之一", "万一", "千万", "一件事",
           "一次性", "一次办", "跑一次", "一次告知", "一站式", "一门式", "一网通办", "一网统管", "一窗", "一表", "一证", "一照",
           "一业", "一码", "一地", "一口", "第一时间", "一揽子", "一批", "一线", "三证合一",
           "多证合一", "一体化", "两个健康", "一把手", "一视同仁", "一键", "一屏", "一图")
_IDIOM_RE = re.compile("|".join(sorted(map(re.escape, _IDIOMS), key=len, reverse=True)))
_UNIT_AFTER = re.compile(
    r"\s*(?:个|日|天|年|月|周|次|项|条|款|章|节|倍|名|人|家|件|份|种|类|级|位|户|元|岁|层|台|张|页|"
    r"号|届|期|轮|小时|分钟|秒|工作日|季度|星期)"
)

_PERCENT_CN_RE = re.compile(rf"(百|千)分之({_NUM})")
_FRACTION_CN_RE = re.compile(rf"({_NUM})分之({_NUM})")
_PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([%‰])")
_DATE_RE = re.compile(
    rf"(\d{{4}}|[{_CN_DIGIT_CHARS}]{{4}})\s*年\s*(\d{{1,2}}|[一二三四五六七八九十]{{1,3}})\s*月"
    rf"(?:\s*(\d{{1,2}}|[一二三四五六七八九十]{{1,3}})\s*[日号])?"
)
_MONTH_DAY_RE = re.compile(r"(\d{1,2}|[一二三四五六七八九十]{1,3})\s*月\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*[日号]")
_ARABIC_RE = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?(?:\s*([万亿]))?")
_CN_RUN_RE = re.compile(rf"[{_CN}]+")


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.6g}"


def _blank(text: str, span: tuple[int, int]) -> str:
    """Overwrite a consumed match so later, broader patterns do not read it again."""
    return text[: span[0]] + " " * (span[1] - span[0]) + text[span[1]:]


def _extract(text: str, *, lenient: bool) -> set[str]:
    """Canonical numbers in `text`; see module docstring for the forms.

    Strict mode (answer sentences) ignores a lone numeral character unless a unit follows it or 第
    precedes it, and skips idioms; lenient mode (clause texts) reads every numeral and also yields the
    parts of each date, so that a sentence is never faulted for a number its clause does contain.
    """
    text = _plain(text) if not lenient else unicodedata.normalize("NFKC", text)
    found: set[str] = set()

    def consume(pattern: re.Pattern[str], handle) -> None:  # type: ignore[no-untyped-def]
        nonlocal text
        for m in list(pattern.finditer(text)):
            values = handle(m)
            if values:
                found.update(values)
                text = _blank(text, m.span())

    def percent_cn(m: re.Match[str]) -> list[str]:
        value = cn_to_number(m.group(2))
        return [] if value is None else [_fmt(value) + ("%" if m.group(1) == "百" else "‰")]

    def fraction_cn(m: re.Match[str]) -> list[str]:
        den, num = cn_to_number(m.group(1)), cn_to_number(m.group(2))
        return [] if den is None or num is None else [f"{_fmt(num)}/{_fmt(den)}"]

    def date(m: re.Match[str]) -> list[str]:
        year, month = cn_to_number(m.group(1)), cn_to_number(m.group(2))
        day = cn_to_number(m.group(3)) if m.group(3) else None
        if year is None or month is None or not 1 <= month <= 12:
            return []
        ym = f"{int(year):04d}-{int(month):02d}"
        out = [f"{ym}-{int(day):02d}" if day else ym]
        if lenient:
            out += [ym, _fmt(year), _fmt(month)] + ([f"{int(month):02d}-{int(day):02d}", _fmt(day)] if day else [])
        return out

    def month_day(m: re.Match[str]) -> list[str]:
        month, day = cn_to_number(m.group(1)), cn_to_number(m.group(2))
        if month is None or day is None or not 1 <= month <= 12:
            return []
        return [f"{int(month):02d}-{int(day):02d}"] + ([_fmt(month), _fmt(day)] if lenient else [])

    def arabic(m: re.Match[str]) -> list[str]:
        value = float(m.group(0).replace(",", "").rstrip("万亿 "))
        return [_fmt(value * (_CN_BIG[m.group(1)] if m.group(1) else 1))]

    def chinese(m: re.Match[str]) -> list[str]:
        run = m.group(0)
        value = cn_to_number(run)
        if value is None:
            return []
        if not lenient:
            has_unit = bool(_UNIT_AFTER.match(text, m.end()))
            ordinal = m.start() > 0 and text[m.start() - 1] == "第"
            positional = len(run) > 1 and any(c in "十百千万亿" for c in run)
            year_like = len(run) == 4 and all(c in _CN_DIGIT_CHARS for c in run)
            if not (has_unit or ordinal or positional or year_like):
                return []
        return [_fmt(value)]

    if not lenient:
        text = _IDIOM_RE.sub(lambda m: " " * len(m.group(0)), text)
    consume(_PERCENT_CN_RE, percent_cn)
    consume(_FRACTION_CN_RE, fraction_cn)
    consume(_PERCENT_RE, lambda m: [_fmt(float(m.group(1))) + m.group(2)])
    consume(_DATE_RE, date)
    consume(_MONTH_DAY_RE, month_day)
    consume(_ARABIC_RE, arabic)
    consume(_CN_RUN_RE, chinese)
    return found


def numbers_in(text: str) -> set[str]:
    """Numbers, dates, amounts and percentages that `text` states, in canonical form.

    Citation markers, list enumerators ("1.", "（一）", "一是") and numeral idioms ("统一", "一件事")
    are not statements of quantity and are skipped.
    """
    return _extract(text, lenient=False)


def clause_numbers(texts: Iterable[str]) -> set[str]:
    """Every canonical number the given clause texts contain, read leniently (dates also by part)."""
    found: set[str] = set()
    for text in texts:
        found |= _extract(text, lenient=True)
    return found


def missing_numbers(sentence: str, clause_texts: Iterable[str]) -> set[str]:
    """The numbers `sentence` states that none of `clause_texts` contains: each one is invented."""
    stated = numbers_in(sentence)
    return stated - clause_numbers(clause_texts) if stated else set()


# ---------------------------------------------------------------------------------------------
# Lexical support
# ---------------------------------------------------------------------------------------------

# Answer-framing words a faithful answer adds around clause content; they neither support nor refute.
_FRAMING = ("根据", "依据", "按照", "规定", "明确", "指出", "提到", "表示", "需要", "您可", "你可",
            "其中", "此外", "另外", "同时", "因此", "所以", "如果", "具体", "相关", "包括", "主要",
            "以下", "如下", "方面", "内容", "要求", "即可", "可以", "应当", "条款", "条例", "本条")
_FRAMING_BIGRAMS = frozenset(_FRAMING)
_CONTENT_RUN_RE = re.compile(r"[\w]+")


def _bigrams(text: str) -> set[str]:
    """Character bigrams inside runs of CJK characters, letters and digits (no bigram spans punctuation)."""
    grams: set[str] = set()
    for run in _CONTENT_RUN_RE.findall(unicodedata.normalize("NFKC", text).lower().replace("_", " ")):
        if len(run) == 1:
            grams.add(run)
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def has_content(text: str) -> bool:
    """Whether `text` holds any words once markers and punctuation are gone (else it is not a sentence)."""
    return bool(_bigrams(strip_markers(text)))


def support(sentence: str, clause_texts: Iterable[str]) -> float:
    """Share of the sentence's content bigrams that occur in the clauses (0..1).

    Character bigrams suit Chinese: no tokeniser is needed, legal terms are two to four characters
    long, and a paraphrase that keeps the clause's terms scores high while added claims score low.
    A sentence with no content at all scores 0.
    """
    grams = _bigrams(_plain(sentence)) - _FRAMING_BIGRAMS
    if not grams:
        return 0.0
    source: set[str] = set()
    for text in clause_texts:
        source |= _bigrams(text)
    return len(grams & source) / len(grams)


def is_supported(sentence: str, clause_texts: Sequence[str], min_support: float = DEFAULT_MIN_SUPPORT) -> bool:
    """Whether the clauses support the sentence: enough lexical support and no invented number."""
    return support(sentence, clause_texts) >= min_support and not missing_numbers(sentence, clause_texts)


# ---------------------------------------------------------------------------------------------
# Whole answers
# ---------------------------------------------------------------------------------------------


class CitedClause(Protocol):
    """What the checks need of a citation; `schema.Citation` satisfies it."""

    n: int
    text: str


def citation_texts(citations: Sequence[CitedClause] | Mapping[int, str]) -> dict[int, str]:
    """n → the text a sentence citing n may rely on: title, label and clause text together.

    The title and label are included because an answer rightly names them ("《条例》第九条规定").
    """
    if isinstance(citations, Mapping):
        return {int(n): str(text) for n, text in citations.items()}
    out: dict[int, str] = {}
    for c in citations:
        head = " ".join(str(getattr(c, name, "") or "") for name in ("doc_title", "label"))
        out[int(c.n)] = f"{head}\n{c.text}"
    return out


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence, its valid citations and the verdict."""

    text: str
    """The sentence without markers."""
    cited: tuple[int, ...]
    """Valid citation numbers the sentence carries."""
    support: float
    missing_numbers: tuple[str, ...] = ()
    invalid_markers: tuple[int, ...] = ()
    reason: str | None = None
    """None when kept; otherwise a key of REASONS_ZH."""

    @property
    def rendered(self) -> str:
        """The sentence with its valid markers placed before the closing punctuation."""
        body = self.text.rstrip()
        tail = ""
        while body and body[-1] in _TERMINALS + "，,:：":
            tail = body[-1] + tail
            body = body[:-1]
        marks = "".join(f"[{n}]" for n in self.cited)
        return f"{body}{marks}{tail or '。'}"


@dataclass(frozen=True)
class GroundingResult:
    """The verdict on a whole answer: which sentences stay, which go and why."""

    kept: list[SentenceCheck] = field(default_factory=list)
    removed: list[SentenceCheck] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The answer made of the kept sentences only, with valid markers."""
        return "".join(s.rendered for s in self.kept)

    @property
    def cited(self) -> list[int]:
        """Citation numbers used by kept sentences, sorted."""
        return sorted({n for s in self.kept for n in s.cited})

    @property
    def invalid_markers(self) -> list[int]:
        """Markers that pointed at no retrieved clause (they are never shown)."""
        return sorted({n for s in self.kept + self.removed for n in s.invalid_markers})

    @property
    def kept_share(self) -> float:
        """Share of the answer's sentences that survived (1.0 for an empty answer)."""
        total = len(self.kept) + len(self.removed)
        return len(self.kept) / total if total else 1.0

    def report(self) -> dict[str, list]:
        """The JSON shape adapters show: {"kept": [sentence…], "removed": [{text, reason, reason_zh}…]}."""
        return {
            "kept": [s.rendered for s in self.kept],
            "removed": [
                {"text": s.text, "reason": s.reason, "reason_zh": REASONS_ZH.get(s.reason or "", "")}
                for s in self.removed
            ],
        }


def check_sentence(
    sentence: str, texts: Mapping[int, str], min_support: float = DEFAULT_MIN_SUPPORT
) -> SentenceCheck:
    """Judge one sentence (markers included) against the citation texts it may use."""
    markers = parse_markers(sentence)
    cited = tuple(n for n in markers if n in texts)
    invalid = tuple(n for n in markers if n not in texts)
    body = strip_markers(sentence).strip()
    sources = [texts[n] for n in cited]
    score = support(body, sources) if sources else 0.0
    missing = tuple(sorted(missing_numbers(body, sources))) if sources else ()
    if not cited:
        reason: str | None = "invalid_citation" if invalid else "no_citation"
    elif missing:
        reason = "invented_number"
    elif score < min_support:
        reason = "low_support"
    else:
        reason = None
    return SentenceCheck(body, cited, round(score, 4), missing, invalid, reason)


def check_answer(
    answer_text: str,
    citations: Sequence[CitedClause] | Mapping[int, str],
    min_support: float = DEFAULT_MIN_SUPPORT,
) -> GroundingResult:
    """Split an answer with [n] markers and keep only the sentences their cited clauses support.

    A sentence is removed when it cites nothing valid (markers that point nowhere are dropped
    first), when it states a number, date, amount or percentage absent from its cited clauses, or
    when its lexical support falls below `min_support`. `citations` are the retrieved clauses
    numbered as the prompt showed them (objects with `n` and `text`, or a mapping n → text).
    """
    texts = citation_texts(citations)
    kept: list[SentenceCheck] = []
    removed: list[SentenceCheck] = []
    for sentence in split_sentences(answer_text):
        if not has_content(sentence):
            continue  # punctuation or stray markers only
        check = check_sentence(sentence, texts, min_support)
        (removed if check.reason else kept).append(check)
    return GroundingResult(kept, removed)


# ---------------------------------------------------------------------------------------------
# ALCE citation metrics (Gao et al., 2023), with the support measure above as the judge
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CitationScores:
    """Citation recall: share of sentences supported by their citations together.

    Citation precision: share of citations that are needed, i.e. not irrelevant, where a citation
    is irrelevant when it alone does not support its sentence and the others do without it.
    Citations of unsupported sentences count as imprecise, as in ALCE.
    """

    recall: float
    precision: float
    sentences: int
    citations: int


def citation_scores(
    answer_text: str,
    citations: Sequence[CitedClause] | Mapping[int, str],
    min_support: float = DEFAULT_MIN_SUPPORT,
) -> CitationScores:
    """ALCE citation recall and precision for one answer; an empty answer scores 0/0 over 0 items."""
    texts = citation_texts(citations)
    supported_sentences = 0
    total_sentences = 0
    precise = 0
    total_citations = 0
    for sentence in split_sentences(answer_text):
        body = strip_markers(sentence)
        if not has_content(body):
            continue
        total_sentences += 1
        cited = [n for n in parse_markers(sentence) if n in texts]
        total_citations += len(cited)
        if not cited or not is_supported(body, [texts[n] for n in cited], min_support):
            continue
        supported_sentences += 1
        for n in cited:
            alone = is_supported(body, [texts[n]], min_support)
            others = [texts[m] for m in cited if m != n]
            rest = bool(others) and is_supported(body, others, min_support)
            precise += int(alone or not rest)
    return CitationScores(
        recall=supported_sentences / total_sentences if total_sentences else 0.0,
        precision=precise / total_citations if total_citations else 0.0,
        sentences=total_sentences,
        citations=total_citations,
    )
