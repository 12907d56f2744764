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
from functools import lru_cache
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


@dataclass(frozen=True)
class _Number:
    """One number read from a text: its canonical value, where it stands and the unit written after it."""

    value: str
    start: int
    end: int
    unit: str = ""
    """Canonical unit class ("day", "workday", "month", …) or "" when none or not comparable."""


# Units whose swap changes what a clause says ("30个工作日" is not "30日"); synonyms share a class.
_UNIT_CLASSES = {"工作日": "workday", "日": "day", "天": "day", "小时": "hour", "月": "month",
                 "周年": "year", "年": "year", "周": "week", "星期": "week", "元": "yuan"}
_UNIT_CLASS_RE = re.compile(r"\s*个?\s*(工作日|小时|周年|星期|日|天|月|年|周|元)")


def _unit_after(text: str, end: int) -> str:
    m = _UNIT_CLASS_RE.match(text, end)
    return _UNIT_CLASSES[m.group(1)] if m else ""


def _scan(text: str, *, lenient: bool) -> tuple[str, list[_Number]]:
    """The normalised text and the numbers in it, with positions in that text; see module docstring.

    Strict mode (answer sentences) ignores a lone numeral character unless a unit follows it or 第
    precedes it, and skips idioms; lenient mode (clause texts) reads every numeral and also yields the
    parts of each date, so that a sentence is never faulted for a number its clause does contain.
    """
    text = _plain(text) if not lenient else unicodedata.normalize("NFKC", text)
    original = text
    found: list[_Number] = []

    def consume(pattern: re.Pattern[str], handle, unit: str | None = None) -> None:  # type: ignore[no-untyped-def]
        nonlocal text
        for m in list(pattern.finditer(text)):
            values = handle(m)
            if values:
                kind = unit if unit is not None else _unit_after(original, m.end())
                found.extend(_Number(v, m.start(), m.end(), kind) for v in values)
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
    consume(_PERCENT_CN_RE, percent_cn, "")
    consume(_FRACTION_CN_RE, fraction_cn, "")
    consume(_PERCENT_RE, lambda m: [_fmt(float(m.group(1))) + m.group(2)], "")
    consume(_DATE_RE, date, "")
    consume(_MONTH_DAY_RE, month_day, "")
    consume(_ARABIC_RE, arabic)
    consume(_CN_RUN_RE, chinese)
    return original, found


def _extract(text: str, *, lenient: bool) -> set[str]:
    """Canonical numbers in `text` (see `_scan`)."""
    return {n.value for n in _scan(text, lenient=lenient)[1]}


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
# Fidelity: does the sentence say what the clause sentence it paraphrases says?
# ---------------------------------------------------------------------------------------------
#
# Lexical support alone passes a sentence that copies a clause and changes one word: the actor
# ("由监督检查部门" → "由人民法院"), the polarity ("可以" → "不得"), a quantifier ("一律") or a number that
# the clause does state, but for something else. Each check below first finds the part of the clause
# the sentence (or one comma phrase of it) paraphrases, by shared character bigrams, and then compares
# only the one thing that check is about. Wording differences elsewhere never count against a sentence.

_SENTENCE_STOPS = "。！？!?；;\n"
_PHRASE_STOPS = _SENTENCE_STOPS + "，,：:"
_ITEM_RE = re.compile(r"[（(]\s*[一二三四五六七八九十\d]{1,3}\s*[）)]")

NUMBER_WINDOW = 10
"""Characters on each side of a number read as its context ("自收到申请之日起 | 15日 | 内裁定是否受理")."""

DEFAULT_NUMBER_MARGIN = 2
"""How many more context bigrams another number of the clause must share with the sentence's number
than any occurrence of the same value does, before the sentence counts as having moved that value."""

DEFAULT_MAX_NOVEL = 4
"""Most content characters a sentence may hold that its clauses have no bigram for (see `novel_content`)."""

# Deontic and lexical negation. A sentence whose phrase is negated while the clause phrase it
# paraphrases is not (or the reverse) says the opposite: 可以 → 不得, 应当 → 无需, 放弃 → 行使.
# The verbs 拒绝/放弃/暂停/终止/停止 negate the action they govern, so swapping them for the plain
# action (拒绝接受 → 接受, 暂停招标 → 继续招标) inverts the rule just as 不得 does.
_NEGATORS = ("不得", "不能", "不可", "不准", "不许", "不应", "不予", "不再", "不必", "不需", "不用",
             "无需", "无须", "禁止", "严禁", "拒绝", "拒不", "放弃", "暂停", "终止", "停止", "没有",
             "不", "未", "无", "没", "非", "勿")
_NEGATOR_RE = re.compile("|".join(sorted(map(re.escape, _NEGATORS), key=len, reverse=True)))
# Words holding a negation character that bound a quantity or name a thing, not negate a rule:
# "不得超过60日" and "最长60日" say the same, and "不动产"/"非法" are nouns and adjectives. They are
# blanked on both sides before negation is looked for.
_NOT_NEGATION = ("不得超过", "不超过", "不得少于", "不少于", "不得低于", "不低于", "不高于", "不多于",
                 "不大于", "不小于", "不足", "不动产", "不良", "不正当", "非法", "无论", "不论", "无偿",
                 "除非", "并非", "无关", "不仅", "无法")
_NOT_NEGATION_RE = re.compile("|".join(sorted(map(re.escape, _NOT_NEGATION), key=len, reverse=True)))
# Modal verbs: paraphrases swap them freely (应当 → 应/要/需要, 可以 → 可/能), so they are left out
# when a sentence phrase is matched to a clause phrase, or every "应当" phrase would look alike.
_MODALS = ("应当", "应该", "必须", "需要", "可以", "能够", "有权", "予以", "准予", "允许", "应", "须", "需",
           "要", "可", "能", "会")
_MODAL_RE = re.compile("|".join(sorted(map(re.escape, _MODALS + _NEGATORS), key=len, reverse=True)))

# Heads of the terms that name who acts: authorities, courts, boards, parties. A sentence naming an
# actor that the clause sentence it paraphrases does not name moves a duty or a power to someone else.
_ACTOR_HEADS = ("部门", "机关", "机构", "法院", "政府", "国务院", "委员会", "董事会", "股东会", "监事会",
                "单位", "银行", "供应商", "经营者", "投资者", "企业", "人")
# Heads too generic to name anyone on their own: they must carry at least two characters in front
# ("管理人", "大型企业"), and these "X人" words name no party of a rule.
_SHORT_HEADS = {"企业": 2, "人": 2, "单位": 1}
_NOT_ACTORS = ("他人", "个人", "本人", "法人", "任何人", "有人", "人员", "人数")
# Function characters that end the name in front of a head: "经|上级登记机关|批准", "由|管理人".
_ACTOR_BOUNDARY = set("的由经向对将和或与及被在于从给把应可是为让请等其并也还要即已未不之以按照自至当对凡各每该即如若")
_ACTOR_RE = re.compile("|".join(sorted(map(re.escape, _ACTOR_HEADS), key=len, reverse=True)))
_CONNECTIVES_RE = re.compile("或者|以及|或是|并且|而且|还是")

# Absolute quantifiers a faithful paraphrase only writes when its clause does: they erase the
# scope limits and exceptions that clauses carry ("限于抽奖式", "法律另有规定的除外").
_ABSOLUTES = ("一律", "所有", "任何", "全部", "一切", "凡是", "无论", "不论", "只要", "一概", "都",
              "没有例外", "无一例外", "不存在任何例外", "不存在例外", "毫无例外")
_ABSOLUTE_RE = re.compile("|".join(sorted(map(re.escape, _ABSOLUTES), key=len, reverse=True)))
# "都" only distributes a quantifier already there ("任何单位都不得", "双方都" for "双方均"), so any
# universal or distributive word in the clause licenses it.
_DISTRIBUTIVE = ("都", "均", "任何", "所有", "全部", "一律", "一切", "凡", "全体", "各", "每", "无论", "不论")
_DISTRIBUTIVE_RE = re.compile("|".join(sorted(map(re.escape, set(_DISTRIBUTIVE) | set(_ABSOLUTES)), key=len, reverse=True)))

# Grammatical words and hedges that answers put around clause content ("一般应在……内", "也不能",
# "如果……就", "会被"). They carry no claim of their own, so a sentence is never faulted for adding them.
_FUNCTION_CHARS = set(
    "的了在和与及或并也都就还又而但且要应会能可将把被让给从对于向以为时后前中内其之该此这那等如若即则所由经按照"
    "着过吗呢吧啊您你我们他她它自己只才再更很最已曾正将"
)
_FUNCTION_WORDS = ("一般", "通常", "原则上", "情况下", "如果", "对于", "除了", "除非", "需要", "可以", "应当",
                   "自己", "同时", "一起", "以及", "或者", "并且", "而且", "但是", "不过", "也就是", "就是",
                   "之间", "期间", "相关", "具体", "有关", "依法", "按照", "根据", "规定", "条款", "条例")
_FUNCTION_WORD_RE = re.compile("|".join(sorted(map(re.escape, _FUNCTION_WORDS), key=len, reverse=True)))


def _cut(text: str, stops: str, items: bool = False) -> list[tuple[int, int]]:
    """Spans of `text` between stop characters (and before item markers "（一）" when `items`)."""
    cuts = {0, len(text)}
    cuts.update(i + 1 for i, ch in enumerate(text) if ch in stops)
    if items:
        cuts.update(m.start() for m in _ITEM_RE.finditer(text))
    points = sorted(cuts)
    return [(a, b) for a, b in zip(points, points[1:]) if _CONTENT_RUN_RE.search(text[a:b])]


def _masked(text: str, numbers: Sequence[_Number]) -> str:
    """`text` with every number written as '#' characters, so "三十日" and "30日" read alike."""
    chars = list(text)
    for n in numbers:
        for i in range(n.start, n.end):
            chars[i] = "#"
    return "".join(chars)


def _match_grams(text: str) -> frozenset[str]:
    """Bigrams used to find which clause phrase a sentence phrase paraphrases: no modal or negator
    (they are what the checks compare, so they must not steer the match) and no framing word."""
    return frozenset(_bigrams(_MODAL_RE.sub(" ", text)) - _FRAMING_BIGRAMS)


def negated(text: str) -> bool:
    """Whether a phrase negates what it states (不得, 无需, 未, 拒绝 …), ignoring bounds like 不超过."""
    return bool(_NEGATOR_RE.search(_NOT_NEGATION_RE.sub(" ", text)))


def actors_in(text: str) -> list[str]:
    """Terms naming who acts in `text`: "上一级市场监督管理部门", "管理人", "大型企业" (head word plus its
    modifiers back to the previous function character)."""
    text = _CONNECTIVES_RE.sub("、", unicodedata.normalize("NFKC", text))
    out: list[str] = []
    for m in _ACTOR_RE.finditer(text):
        start = m.start()
        while start > 0 and m.start() - start < 10 and "\u4e00" <= text[start - 1] <= "\u9fff" \
                and text[start - 1] not in _ACTOR_BOUNDARY:
            start -= 1
        term = text[start:m.end()]
        if m.start() - start < _SHORT_HEADS.get(m.group(0), 0) or term.endswith(_NOT_ACTORS):
            continue
        if m.group(0) == "人" and m.start() - start > 4:
            term = text[m.start() - 4:m.end()]
        out.append(term)
    return out


def _is_subsequence(short: str, long: str) -> bool:
    chars = iter(long)
    return all(c in chars for c in short)


def _same_actor(a: str, b: str) -> bool:
    """Whether two actor terms may name the same party: equal, or one an abbreviation of the other
    ("上一级市场监管部门" of "上一级市场监督管理部门", "地方政府" of "地方人民政府")."""
    return _is_subsequence(a, b) or _is_subsequence(b, a)


def absolutes_in(text: str) -> list[str]:
    """Absolute quantifiers in `text` ("一律", "任何情况下都", "不存在任何例外" …)."""
    return _ABSOLUTE_RE.findall(unicodedata.normalize("NFKC", text))


@dataclass(frozen=True)
class _Part:
    """A clause sentence or phrase: its text (numbers masked), bigrams and the sentence it is in."""

    text: str
    start: int
    end: int
    grams: frozenset[str]
    sentence: int
    negated: bool = False


@dataclass(frozen=True)
class _Source:
    """The cited clause texts, read once for all checks."""

    text: str
    grams: frozenset[str]
    sentences: tuple[_Part, ...]
    phrases: tuple[_Part, ...]
    numbers: tuple[_Number, ...]
    number_context: tuple[frozenset[str], ...]
    actors: tuple[tuple[str, ...], ...]
    """Actor terms of each sentence."""
    absolutes: frozenset[str]


def _window(text: str, start: int, end: int, lo: int, hi: int) -> frozenset[str]:
    """Bigrams of the NUMBER_WINDOW characters before and after text[start:end], inside [lo, hi)."""
    left = text[max(lo, start - NUMBER_WINDOW):start]
    right = text[end:min(hi, end + NUMBER_WINDOW)]
    return frozenset(_bigrams(left) | _bigrams(right))


def _sentence_of(parts: Sequence[_Part], position: int) -> _Part:
    for part in parts:
        if part.start <= position < part.end:
            return part
    return parts[-1]


@lru_cache(maxsize=256)
def _source(texts: tuple[str, ...]) -> _Source:
    raw, numbers = _scan("\n".join(texts), lenient=True)
    text = _masked(raw, numbers)
    sentences = tuple(
        _Part(text[a:b], a, b, _match_grams(text[a:b]), i) for i, (a, b) in enumerate(_cut(text, _SENTENCE_STOPS, True))
    )
    phrases: list[_Part] = []
    for s in sentences:
        for a, b in _cut(s.text, _PHRASE_STOPS):
            piece = s.text[a:b]
            phrases.append(_Part(piece, s.start + a, s.start + b, _match_grams(piece), s.sentence, negated(piece)))
    contexts = []
    for n in numbers:
        s = _sentence_of(sentences, n.start) if sentences else _Part(text, 0, len(text), frozenset(), 0)
        contexts.append(_window(text, n.start, n.end, s.start, s.end))
    return _Source(
        text=text,
        grams=frozenset(_bigrams(text)),
        sentences=sentences,
        phrases=tuple(phrases),
        numbers=tuple(numbers),
        number_context=tuple(contexts),
        actors=tuple(tuple(actors_in(s.text)) for s in sentences),
        absolutes=frozenset(_DISTRIBUTIVE_RE.findall(raw)),
    )



def _best(candidates: Sequence[_Part], grams: frozenset[str], whole: frozenset[str],
          sentences: Sequence[_Part]) -> tuple[list[_Part], int]:
    """The candidates sharing most bigrams with `grams`; ties go to the one whose clause sentence shares
    most with the whole answer sentence. Returns all that tie on both, and the shared count."""
    scored = [(len(grams & c.grams), len(whole & sentences[c.sentence].grams), c) for c in candidates]
    if not scored:
        return [], 0
    top = max((a, b) for a, b, _ in scored)
    return [c for a, b, c in scored if (a, b) == top], top[0]


@dataclass(frozen=True)
class Fidelity:
    """What the fine checks found in one sentence against its cited clauses (empty when faithful)."""

    moved_numbers: tuple[str, ...] = ()
    """Numbers the clause states, but for something else (or with another unit)."""
    flipped: tuple[str, ...] = ()
    """Sentence phrases negated where the clause phrase they paraphrase is not, or the reverse."""
    stray_actors: tuple[str, ...] = ()
    """Actors the clause sentence being paraphrased does not name."""
    absolutes: tuple[str, ...] = ()
    """Absolute quantifiers the clauses never use."""
    novel: str = ""
    """Content characters of the sentence that no clause bigram covers."""


def _sentence_parts(sentence: str) -> tuple[str, str, list[_Number], list[tuple[int, int]]]:
    plain, numbers = _scan(sentence, lenient=False)
    plain_norm = unicodedata.normalize("NFKC", plain)
    masked = _masked(plain_norm, numbers)
    return plain_norm, masked, numbers, _cut(masked, _PHRASE_STOPS)


def _moved_numbers(masked: str, numbers: Sequence[_Number], src: _Source, margin: int) -> list[str]:
    out: list[str] = []
    for n in numbers:
        same = [i for i, c in enumerate(src.numbers) if c.value == n.value]
        if not same or "-" in n.value:
            continue  # absent ones are invented (missing_numbers); whole dates are specific enough
        context = _window(masked, n.start, n.end, 0, len(masked))
        spans = {(src.numbers[i].start, src.numbers[i].end) for i in same}
        scores = [len(context & src.number_context[i]) for i in range(len(src.numbers))]
        best_same = max(scores[i] for i in same)
        best_other = max((scores[i] for i, c in enumerate(src.numbers)
                          if c.value != n.value and (c.start, c.end) not in spans), default=0)
        units = {src.numbers[i].unit for i in same if scores[i] == best_same}
        if best_other - best_same >= margin or (n.unit and "" not in units and n.unit not in units):
            out.append(n.value)
    return out


def _flipped(masked: str, phrases: Sequence[tuple[int, int]], whole: frozenset[str], src: _Source) -> list[str]:
    out: list[str] = []
    for a, b in phrases:
        piece = masked[a:b]
        grams = _match_grams(piece)
        if len(grams) < 2:
            continue
        best, shared = _best(src.phrases, grams, whole, src.sentences)
        if shared < max(2, len(grams) / 2):
            continue  # no clause phrase is clearly the one paraphrased
        mine = negated(piece)
        if best and all(p.negated != mine for p in best):
            out.append(piece.strip("，,：:。；; "))
    return out


def _stray_actors(plain: str, masked: str, phrases: Sequence[tuple[int, int]], whole: frozenset[str],
                  src: _Source) -> list[str]:
    out: list[str] = []
    for a, b in phrases:
        piece = masked[a:b]
        for term in dict.fromkeys(actors_in(piece)):
            position = piece.find(term)
            after = _match_grams(piece[position + len(term):])
            grams = after if len(after) >= 3 else _match_grams(piece) - _bigrams(term)
            best, shared = _best(src.sentences, grams, whole, src.sentences)
            if shared < 2:
                continue
            named = [s for s in best if src.actors[s.sentence]]
            if named and not any(term in s.text or any(_same_actor(term, t) for t in src.actors[s.sentence])
                                 for s in best):
                out.append(term)
    return out


def _novel(plain: str, numbers: Sequence[_Number], src: _Source) -> str:
    """Content characters of the sentence that no bigram of the clauses covers, in order."""
    skip = [False] * len(plain)
    for n in numbers:
        unit = _UNIT_AFTER.match(plain, n.end)
        for i in range(n.start, unit.end() if unit else n.end):  # the number and its unit
            skip[i] = True
    for m in _FUNCTION_WORD_RE.finditer(plain):
        for i in range(m.start(), m.end()):
            skip[i] = True
    text = plain.lower()
    out = []
    for i, ch in enumerate(text):
        if skip[i] or ch in _FUNCTION_CHARS or not _CONTENT_RUN_RE.match(ch) or ch == "_":
            continue
        if text[max(0, i - 1):i + 1] in src.grams or text[i:i + 2] in src.grams:
            continue
        out.append(ch)
    return "".join(out)


def fidelity(sentence: str, clause_texts: Sequence[str], number_margin: int = DEFAULT_NUMBER_MARGIN) -> Fidelity:
    """Compare a sentence with the clause parts it paraphrases: numbers, polarity, actors, quantifiers,
    and content the clauses lack. Pure string work; the verdict is `check_sentence`'s."""
    src = _source(tuple(clause_texts))
    plain, masked, numbers, phrases = _sentence_parts(sentence)
    whole = _match_grams(masked)
    quantifiers = [q for q in absolutes_in(plain)
                   if q not in src.absolutes and not (q == "都" and src.absolutes)]
    return Fidelity(
        moved_numbers=tuple(dict.fromkeys(_moved_numbers(masked, numbers, src, number_margin))),
        flipped=tuple(_flipped(masked, phrases, whole, src)),
        stray_actors=tuple(dict.fromkeys(_stray_actors(plain, masked, phrases, whole, src))),
        absolutes=tuple(dict.fromkeys(quantifiers)),
        novel=_novel(plain, numbers, src),
    )


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
