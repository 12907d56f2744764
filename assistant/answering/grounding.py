"""Grounding checks shared by generative answering and the eval: is a sentence backed by its cited clauses?

Why one module: the answer path drops what the eval would count as unsupported, so both must use the
very same measure. Everything here is pure Python (no jieba, no model), deterministic and cheap.

Public API (stable; the extractive eval and llm.py call it):

    split_sentences(text) -> list[str]              answer text -> sentences, trailing [n] kept attached
    parse_markers(text) -> list[int]                 [1] [1,2] [1-3] 【1】 ［1］ -> [1, 2, 3] in order
    strip_markers(text) -> str                       text without citation markers
    numbers_in(text) -> set[str]                     canonical numbers/dates/amounts/percentages stated in text
    clause_numbers(texts) -> set[str]                the same, read leniently from clause texts (what may be cited)
    missing_numbers(sentence, clause_texts) -> set   numbers of the sentence found in none of the clauses
    support(sentence, clause_texts) -> float         share of the sentence's character bigrams found in the clauses
    fidelity(sentence, clause_texts) -> Fidelity     numbers moved to other context, flipped negations, actors
                                                     the paraphrased clause sentence does not name, absolute
                                                     quantifiers, content characters the clauses lack
    verdict(body, clause_texts) -> Verdict           the reason (a REASONS_ZH key) a sentence is unsupported, or None
    is_supported(sentence, clause_texts) -> bool     verdict is None: the same judgement as check_sentence
    citation_texts(citations) -> dict[int, str]      n → what a sentence citing n may rely on (title, label, text)
    check_sentence(sentence, texts) -> SentenceCheck one sentence with its [n] markers against citation_texts
    check_answer(answer_text, citations) -> GroundingResult   kept / removed sentences and the cleaned text
    citation_scores(answer_text, citations) -> CitationScores ALCE citation recall / precision

The tunable constants (DEFAULT_MAX_NOVEL, DEFAULT_NUMBER_MARGIN, DEFAULT_SENTENCE_BONUS) were chosen by
5-fold cross-validation on the dev split of eval/grounding_cases.jsonl; see
assistant/evaluation/grounding_eval.py, which reports per-label kept/removed rates.

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
    "number_mismatch": "数字与所引条款中对应的内容不符",
    "negation": "与所引条款的肯定或否定相反",
    "wrong_actor": "行为主体与所引条款不符",
    "overgeneralization": "使用了所引条款没有的绝对化表述",
    "unsupported_content": "含有所引条款没有的内容",
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
           "一业", "一码", "一地", "一口", "第一时间", "第一次", "一揽子", "一批", "一线", "三证合一",
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

    # Fractions first: "二分之一" ends in the idiom "之一" ("情形之一") and would lose its numerator.
    consume(_PERCENT_CN_RE, percent_cn, "")
    consume(_FRACTION_CN_RE, fraction_cn, "")
    if not lenient:
        text = _IDIOM_RE.sub(lambda m: " " * len(m.group(0)), text)
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
    """Whether the clauses support the sentence: the verdict `check_sentence` gives (no invented or
    moved number, enough lexical support, and none of the fidelity findings below)."""
    return verdict(strip_markers(sentence).strip(), clause_texts, min_support).reason is None


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
_ITEM_RE = re.compile(r"[（(]\s*[一二三四五六七八九十\d#]{1,3}\s*[）)]")  # "#": a masked numeral

NUMBER_WINDOW = 10
"""Characters on each side of a number read as its context ("自收到申请之日起 | 15日 | 内裁定是否受理")."""

DEFAULT_NUMBER_MARGIN = 1
"""How many more context bigrams another number of the clause must share with the sentence's number
than any occurrence of the same value does, before the sentence counts as having moved that value."""

DEFAULT_MAX_NOVEL = 3
"""Most content characters a sentence may hold that its clauses have no bigram for (`Fidelity.novel`);
a faithful paraphrase adds a word ("房屋", "高管"), an added claim a whole phrase. Refitted to 3 (from 5) when
the dev cases grew from 162 to 237 with a second, independently written batch."""

# Deontic and lexical negation. A sentence whose phrase is negated while the clause phrase it
# paraphrases is not (or the reverse) says the opposite: 可以 → 不得, 应当 → 无需, 放弃 → 行使.
# The verbs 拒绝/放弃/暂停/终止/停止 negate the action they govern, so swapping them for the plain
# action (拒绝接受 → 接受, 暂停招标 → 继续招标) inverts the rule just as 不得 does.
_NEGATORS = ("不得", "不能", "不可", "不准", "不许", "不应", "不予", "不再", "不必", "不需", "不用",
             "无需", "无须", "禁止", "严禁", "拒绝", "拒不", "放弃", "暂停", "终止", "停止", "没有",
             "不", "未", "无", "没", "非", "勿")
# Permission to cross a bound ("可以超过60日") reverses the bound ("不得超过60日") like a negator.
_NEGATOR_RE = re.compile(
    r"(?:可以|可|能够|能|允许)(?:超过|少于|低于|高于|多于)|"
    + "|".join(sorted(map(re.escape, _NEGATORS), key=len, reverse=True))
)
# Words holding a negation character that bound a quantity or name a thing, not negate a rule:
# "不得超过60日" and "最长60日" say the same, and "不动产"/"非法" are nouns and adjectives. They are
# blanked on both sides before negation is looked for.
_NOT_NEGATION = ("不足", "不动产", "不良", "不正当", "非法", "无论", "不论", "无偿",
                 "除非", "并非", "无关", "不仅", "无法")
_NOT_NEGATION_RE = re.compile(
    r"(?:不得|不能|不可|不应当?|禁止|严禁|不)(?:超过|少于|低于|高于|多于|大于|小于)|"
    + "|".join(sorted(map(re.escape, _NOT_NEGATION), key=len, reverse=True))
)
# Modal verbs: paraphrases swap them freely (应当 → 应/要/需要, 可以 → 可/能), so they are left out
# when a sentence phrase is matched to a clause phrase, or every "应当" phrase would look alike.
_MODALS = ("应当", "应该", "必须", "需要", "可以", "能够", "有权", "予以", "准予", "允许", "应", "须", "需",
           "要", "可", "能", "会")
_MODAL_RE = re.compile("|".join(sorted(map(re.escape, _MODALS), key=len, reverse=True)))

# Heads of the terms that name who acts: authorities, courts, boards, parties. A sentence naming an
# actor that the clause sentence it paraphrases does not name moves a duty or a power to someone else.
_ACTOR_HEADS = ("部门", "机关", "机构", "法院", "政府", "国务院", "委员会", "董事会", "股东会", "监事会",
                "单位", "银行", "供应商", "经营者", "投资者", "企业", "人")
# Heads too generic to name anyone on their own: they must carry at least two characters in front
# ("管理人", "大型企业"), and these "X人" words name no party of a rule.
_SHORT_HEADS = {"企业": 2, "人": 2, "单位": 1}
_NOT_ACTORS = ("他人", "个人", "本人", "法人", "任何人", "有人", "人员", "人数")
# Function characters that end the name in front of a head: "经|上级登记机关|批准", "由|管理人".
_ACTOR_BOUNDARY = set("的由经向对将和或与及被在于从给把应可能须需会是为让请等其并也还要即已未不禁之以按照自至当凡各每该"
                      "如若用除")
# Verbs that take a party as their object at the start of a phrase ("鼓励银行等金融机构……",
# "除非经营者能证明"): the name begins after them, and it is not the one who acts.
_ACTOR_OBJECT_VERBS_RE = re.compile("鼓励|支持|要求|通过|委托|督促|引导|指导|责令|会同|组织|推动|协助|除非|允许")
_ACTOR_RE = re.compile("|".join(sorted(map(re.escape, _ACTOR_HEADS), key=len, reverse=True)))
# Two-character conjunctions read as a list separator, so "采购人或者采购代理机构" names two parties
# (a single 或 is already a boundary, but "者采购代理机构" would not be).
_CONNECTIVES_RE = re.compile("或者|以及|或是|并且|而且|还是")

# Absolute quantifiers a faithful paraphrase only writes when its clause does: they erase the
# scope limits and exceptions that clauses carry ("限于抽奖式", "法律另有规定的除外").
_ABSOLUTES = ("一律", "所有", "任何", "全部", "一切", "凡是", "无论", "不论", "只要", "一概", "都",
              "没有例外", "无一例外", "不存在任何例外", "不存在例外", "毫无例外")
_ABSOLUTE_RE = re.compile("|".join(sorted(map(re.escape, _ABSOLUTES), key=len, reverse=True)))
# "都" only distributes a quantifier already there ("任何单位都不得", "双方都" for "双方均"), so any
# universal or distributive word in the clause licenses it.
_DISTRIBUTIVE = ("都", "均", "任何", "所有", "全部", "一律", "一切", "凡", "全体", "各", "每", "无论", "不论")
_DISTRIBUTIVE_RE = re.compile(
    "|".join(sorted(map(re.escape, set(_DISTRIBUTIVE) | set(_ABSOLUTES)), key=len, reverse=True))
)

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


_NUMERAL_CHARS = "0123456789" + _CN


def _masked(text: str) -> str:
    """`text` with every digit and numeral character written '#', so "三十日" and "30日" read alike.

    Character by character, not by the numbers read from it: answer sentences and clauses are read
    with different leniency ("一致" is an idiom in one and a numeral in the other), but masking must
    treat both the same or their bigrams stop meeting."""
    return text.translate(_MASK)


_MASK = str.maketrans({c: "#" for c in _NUMERAL_CHARS})


# Particles and pronouns: bigrams holding one ("定其", "的市") tie any two texts that use them.
_PARTICLES = set("的其之该此这那了着地得")


def _match_grams(text: str) -> frozenset[str]:
    """Bigrams used to find which clause part a sentence part paraphrases: no modal (paraphrases swap
    them freely), no framing word, no particle."""
    grams = _bigrams(_MODAL_RE.sub(" ", text)) - _FRAMING_BIGRAMS
    return frozenset(g for g in grams if not _PARTICLES & set(g))


_SCOPE = 6
"""Characters right after a negator that it certainly governs ("不得 | 以营利为目的"); a negator
ending its phrase governs as many before it ("予以禁止")."""


@dataclass(frozen=True)
class _Negation:
    """One negator and the bigrams of what it governs: `near`, the _SCOPE characters right after it
    (what it certainly negates), and `reach`, everything up to the next negator or the phrase end."""

    near: frozenset[str]
    reach: frozenset[str]


def _negation_scopes(text: str) -> tuple[_Negation, ...]:
    """The negations in `text` (empty when nothing is negated). A negator ending its phrase governs
    the words before it ("予以禁止")."""
    text = _NOT_NEGATION_RE.sub(lambda m: " " * len(m.group(0)), text)
    found = list(_NEGATOR_RE.finditer(text))
    out = []
    for m, following in zip(found, found[1:] + [None]):
        end = following.start() if following else len(text)
        reach = _match_grams(text[m.end():end])
        if reach:
            out.append(_Negation(_match_grams(text[m.end():min(end, m.end() + _SCOPE)]) or reach, reach))
        else:
            before = _match_grams(text[max(0, m.start() - _SCOPE):m.start()])
            out.append(_Negation(before, before))
    return tuple(out)


def negated(text: str) -> bool:
    """Whether a phrase negates anything it states (不得, 无需, 未, 拒绝 …), ignoring bounds like 不超过."""
    return bool(_negation_scopes(unicodedata.normalize("NFKC", text)))


# Characters after which a name in subject position starts: the phrase start, 由/经 (by, upon approval
# of) and 被 (passive agent). Elsewhere a head word is usually an object ("通过部门间共享").
_AGENT_MARKERS = set("由经被")
# Conjunctions and adverbs that may open a phrase before its subject ("并由公安机关……", "但管理人……").
_LEADING_FUNCTION = set("则并但而且也还再即就另")


def actors_in(text: str, *, subjects_only: bool = False) -> list[str]:
    """Terms naming who acts in `text`: "上一级市场监督管理部门", "管理人", "大型企业" (head word plus its
    modifiers back to the previous function character). With `subjects_only`, only those standing
    where the one who acts stands: at the start of a phrase, or after 由/经/被."""
    text = _CONNECTIVES_RE.sub("、", unicodedata.normalize("NFKC", text))
    out: list[str] = []
    for m in _ACTOR_RE.finditer(text):
        start = m.start()
        while start > 0 and m.start() - start < 10 and "\u4e00" <= text[start - 1] <= "\u9fff" \
                and text[start - 1] not in _ACTOR_BOUNDARY:
            start -= 1
        for verb in _ACTOR_OBJECT_VERBS_RE.finditer(text, start, m.start()):  # the name starts after it
            start = max(start, verb.end())
        term = text[start:m.end()]
        if m.start() - start < _SHORT_HEADS.get(m.group(0), 0) or term.endswith(_NOT_ACTORS):
            continue
        if m.group(0) == "人" and m.start() - start > 4:
            start = m.start() - 4
            term = text[start:m.end()]
        if subjects_only:
            before = start
            while before > 0 and text[before - 1] in _LEADING_FUNCTION:
                before -= 1
            opens_phrase = before == 0 or text[before - 1] in _PHRASE_STOPS + "、 "
            if not opens_phrase and text[start - 1] not in _AGENT_MARKERS:
                continue
        out.append(term)
    return out


def _is_subsequence(short: str, long: str) -> bool:
    chars = iter(long)
    return all(c in chars for c in short)


def _names(text: str, term: str) -> bool:
    """Whether `text` names the party `term` names: the term itself, or written shorter or longer
    around the same head ("上一级市场监管部门" for "上一级市场监督管理部门", "中标供应商" for
    "中标、成交供应商"); a different modifier ("受理投诉部门" for "处理投诉部门") is another party."""
    head = _ACTOR_RE.search(term[-3:]) or _ACTOR_RE.search(term)
    if head is None:
        return term in text
    head_word = head.group(0)
    modifier = term[: len(term) - len(head_word)]
    for m in re.finditer(re.escape(head_word), text):
        before = text[max(0, m.start() - 2 * len(modifier) - 2):m.start()]
        if _is_subsequence(modifier, before):
            return True
    return False


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
    index: int = 0
    scopes: tuple[_Negation, ...] = ()
    """What each of its negations governs (see `_negation_scopes`)."""
    raw: str = ""
    """The text as written (numbers not masked)."""
    under_negation: bool = False
    """An item of a list whose lead-in negates ("不得含有下列内容：（一）给予……"): an answer may state it
    with the negation ("不能给予……") or without (naming what is listed), so its polarity is not judged."""


@dataclass(frozen=True)
class _Source:
    """The cited clause texts, read once for all checks."""

    grams: frozenset[str]
    sentences: tuple[_Part, ...]
    phrases: tuple[_Part, ...]
    numbers: tuple[_Number, ...]
    number_context: tuple[frozenset[str], ...]
    absolutes: frozenset[str]


# Numbers joined into a range or a list: "1至3年", "第七十八条至第八十条", "“二日”“三日”", "5日、10日".
_JOIN = r"[^\S\n]*[条款项章日天年月个%‰]*[^\S\n]*(?:或者|以及|[至到或和及]|[\-~～—、“”\"'][^\S\n]*[“”\"']?)[^\S\n]*第?"
_RANGE_AFTER_RE = re.compile(_JOIN + "#+")
_RANGE_BEFORE_RE = re.compile("#+" + _JOIN + "$")


def _window(text: str, start: int, end: int, lo: int, hi: int) -> frozenset[str]:
    """Bigrams of the NUMBER_WINDOW characters before and after text[start:end], inside [lo, hi).

    Both ends of a range ("1至3年") and every member of a list ("“二日”“三日”") get the window of the
    whole range or list, so none looks closer than the others to what it is about. `text` has its
    numbers masked as '#'.
    """
    while (m := _RANGE_AFTER_RE.match(text, end)) is not None:
        end = m.end()
    while (m := _RANGE_BEFORE_RE.search(text, 0, start)) is not None:
        start = m.start()
    left = text[max(lo, start - NUMBER_WINDOW):start]
    right = text[end:min(hi, end + NUMBER_WINDOW)]
    return frozenset(g for g in _bigrams(left) | _bigrams(right) if "#" not in g)  # words, not other numbers


@lru_cache(maxsize=256)
def _source(texts: tuple[str, ...]) -> _Source:
    raw, numbers = _scan("\n".join(texts), lenient=True)
    text = _masked(raw)
    sentences = tuple(
        _Part(text[a:b], a, b, _match_grams(text[a:b]), i, raw=raw[a:b])
        for i, (a, b) in enumerate(_cut(text, _SENTENCE_STOPS, True))
    )
    phrases: list[_Part] = []
    lead_negated = False  # a negated lead-in ("不得含有下列内容：") reaches its items
    for s in sentences:
        is_item = bool(_ITEM_RE.match(s.text.strip()))
        for a, b in _cut(s.text, _PHRASE_STOPS):
            piece = s.text[a:b]
            grams = _match_grams(piece)
            phrases.append(_Part(piece, s.start + a, s.start + b, grams, s.sentence, len(phrases),
                                 _negation_scopes(piece), s.raw[a:b], is_item and lead_negated))
        if s.text.rstrip().endswith((":", "：")):
            lead_negated = bool(phrases and phrases[-1].scopes)
        elif not is_item:
            lead_negated = False
    contexts = []
    for n in numbers:
        s = next((p for p in sentences if p.start <= n.start < p.end), None)
        contexts.append(_window(text, n.start, n.end, s.start if s else 0, s.end if s else len(text)))
    return _Source(
        grams=frozenset(_bigrams(text) | _bigrams(raw)),
        sentences=sentences,
        phrases=tuple(phrases),
        numbers=tuple(numbers),
        number_context=tuple(contexts),
        absolutes=frozenset(_DISTRIBUTIVE_RE.findall(raw)),
    )


@dataclass(frozen=True)
class Fidelity:
    """What the fine checks found in one sentence against its cited clauses (all empty when faithful)."""

    moved_numbers: tuple[str, ...] = ()
    """Numbers the clause states, but for something else (or with another unit)."""
    flipped: tuple[str, ...] = ()
    """Sentence phrases negated where the clause phrases they paraphrase are not, or the reverse."""
    stray_actors: tuple[str, ...] = ()
    """Actors, in subject position, that the clause sentence being paraphrased does not name."""
    absolutes: tuple[str, ...] = ()
    """Absolute quantifiers the clauses never use."""
    novel: str = ""
    """Content characters of the sentence that no clause bigram covers (function words left out)."""


def _moved_numbers(masked: str, numbers: Sequence[_Number], src: _Source, margin: int) -> list[str]:
    """Numbers whose context in the sentence matches the context of another number of the clause
    clearly better than that of any occurrence of the same value, or whose unit differs from the
    unit the clause writes after that value ("30日" for "30个工作日")."""
    out: list[str] = []
    for n in numbers:
        same = [i for i, c in enumerate(src.numbers) if c.value == n.value]
        if not same or "-" in n.value:
            continue  # absent ones are invented (missing_numbers); whole dates are specific enough
        context = _window(masked, n.start, n.end, 0, len(masked))
        spans = {(src.numbers[i].start, src.numbers[i].end) for i in same}
        scores = [len(context & c) for c in src.number_context]
        best_same = max(scores[i] for i in same)
        best_other = max((scores[i] for i, c in enumerate(src.numbers)
                          if c.value != n.value and (c.start, c.end) not in spans), default=0)
        units = {src.numbers[i].unit for i in same if scores[i] == best_same}
        if best_other - best_same >= margin or (n.unit and "" not in units and n.unit not in units):
            out.append(n.value)
    return out


DEFAULT_SENTENCE_BONUS = 1
"""Bigrams a clause phrase is credited for lying in the clause sentence where the sentence's other
phrases were found: answers paraphrase one clause sentence at a time, so "视为行使优先购买权" after
"股东……三十日内未答复的" is read against "视为放弃优先购买权" of that sentence, not against a phrase
elsewhere that happens to share one more bigram."""


def _align(
    pieces: Sequence[frozenset[str]], src: _Source, bonus: int = DEFAULT_SENTENCE_BONUS
) -> list[list[list[_Part]]]:
    """For each sentence phrase, the clause phrases it paraphrases: one list per equally good reading.

    A phrase goes with the clause phrase sharing most bigrams (at least two and half its own, plus a
    bonus for the clause sentence its neighbours were found in), grown by neighbouring phrases of the
    same clause sentence that account for more of it (see `_extends`: "X的，不得Y" read as one).
    Ties stay: each is a reading, and a verdict must hold for all of them.
    """
    shared = [[len(grams & q.grams) for q in src.phrases] for grams in pieces]
    eligible = [[k >= max(2, len(grams) / 2) for k in row] for grams, row in zip(pieces, shared)]
    firsts: list[int | None] = []
    for row, ok in zip(shared, eligible):
        top = max((k for k, e in zip(row, ok) if e), default=None)
        best = [j for j, (k, e) in enumerate(zip(row, ok)) if e and k == top]
        firsts.append(best[0] if len(best) == 1 else None)
    out: list[list[list[_Part]]] = []
    for i, grams in enumerate(pieces):
        anchors = [j for k, j in enumerate(firsts) if k != i and j is not None]
        home = {src.phrases[j].sentence for j in anchors}
        scored = [(shared[i][j] + bonus * (q.sentence in home), q)
                  for j, q in enumerate(src.phrases) if eligible[i][j]]
        top = max((k for k, _ in scored), default=None)
        best = [q for k, q in scored if k == top]
        readings = []
        for q in best:
            lo = hi = q.index
            found = grams & q.grams
            while True:
                if lo > 0 and _extends(grams, found, src.phrases[lo - 1], q):
                    lo -= 1
                    found |= grams & src.phrases[lo].grams
                elif hi + 1 < len(src.phrases) and _extends(grams, found, src.phrases[hi + 1], q):
                    hi += 1
                    found |= grams & src.phrases[hi].grams
                else:
                    break
            readings.append(list(src.phrases[lo:hi + 1]))
        out.append(readings)
    return out


def _extends(grams: frozenset[str], found: frozenset[str], neighbour: _Part, q: _Part) -> bool:
    """Whether a neighbouring clause phrase is part of what a sentence phrase paraphrases: same clause
    sentence, and it accounts for sentence bigrams not yet found (two or more, half its own or more)."""
    new = (grams & neighbour.grams) - found
    return neighbour.sentence == q.sentence and len(new) >= 2 and len(new) >= len(neighbour.grams) / 2


def _unmatched(negations: Sequence[_Negation], others: Sequence[_Negation], other_grams: frozenset[str]) -> bool:
    """Whether one of `negations` certainly negates words the other side states, while no negation of
    the other side reaches them (a negation whose words the other side does not state is not compared)."""
    return any(neg.near & other_grams and not any(neg.reach & other.reach for other in others)
               for neg in negations)


def _flipped(masked: str, phrases: Sequence[tuple[int, int]], src: _Source, bonus: int) -> list[str]:
    """Sentence phrases whose negation disagrees with every reading of the clause phrases they paraphrase.

    Negations are compared one by one, each with the words it governs: "不得于每年3月31日前公开" is
    flipped against "应当于每年3月31日前……公开" even though both also say "逾期尚未支付". Sentence
    phrases found in the same clause phrases are judged together, against all the clause phrases they
    were found in ("双方都没履行完的合同，管理人有权……" against one clause phrase).
    """
    pieces = [masked[a:b] for a, b in phrases]
    grams = [_match_grams(p) for p in pieces]
    scopes = [_negation_scopes(p) for p in pieces]
    readings = _align(grams, src, bonus)
    out: list[str] = []
    for i, options in enumerate(readings):
        if not options or len(grams[i]) < 2:
            continue
        disagree = 0
        for parts in options:
            if any(q.under_negation for q in parts):
                continue
            span = {q.index for q in parts}
            group = [j for j, other in enumerate(readings)
                     if j != i and other and all(span & {q.index for q in r} for r in other)]
            clause_side = {q.index: q for q in parts}
            clause_side.update((q.index, q) for j in group for r in readings[j] for q in r)
            group.append(i)
            mine = [scope for j in group for scope in scopes[j]]
            mine_grams = frozenset().union(*(grams[j] for j in group))
            theirs = [scope for q in clause_side.values() for scope in q.scopes]
            their_grams = frozenset().union(*(q.grams for q in clause_side.values()))
            disagree += _unmatched(mine, theirs, their_grams) or _unmatched(theirs, mine, mine_grams)
        if options and disagree == len(options):
            out.append(pieces[i].strip("，,：:。；; "))
    return out


def _stray_actors(
    plain: str, phrases: Sequence[tuple[int, int]], whole: frozenset[str], src: _Source
) -> list[str]:
    """Actors in subject position that the clause sentence the phrase paraphrases does not name.

    The clause sentence is found by what the phrase says after the actor (its predicate: "将罚款上缴国库")
    or, when that is too short, by the rest of the phrase. It must name somebody: a clause sentence
    without any actor leaves the actor to the sentences around it.
    """
    out: list[str] = []
    for a, b in phrases:
        piece = plain[a:b]
        for term in dict.fromkeys(actors_in(piece, subjects_only=True)):
            position = piece.find(term)
            after = _match_grams(piece[position + len(term):])
            grams = after if len(after) >= 3 else _match_grams(piece)
            scored = [(len(grams & s.grams), len(whole & s.grams), s) for s in src.sentences]
            top = max(((x, y) for x, y, _ in scored), default=(0, 0))
            if top[0] < 2:
                continue
            best = [s for x, y, s in scored if (x, y) == top]
            if any(actors_in(s.raw) for s in best) and not any(_names(s.raw, term) for s in best):
                out.append(term)
    return out


def _novel(plain: str, numbers: Sequence[_Number], src: _Source) -> str:
    """Content characters of the sentence that no bigram of the clauses covers, in order."""
    skip = [False] * len(plain)
    for n in numbers:
        unit = _UNIT_AFTER.match(plain, n.end)
        for i in range(n.start, unit.end() if unit else n.end):  # the number and its unit
            skip[i] = True
    for pattern in (_FUNCTION_WORD_RE, _NEGATOR_RE, _MODAL_RE, _ABSOLUTE_RE):  # judged by their own checks
        for m in pattern.finditer(plain):
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


def fidelity(
    sentence: str,
    clause_texts: Sequence[str],
    number_margin: int = DEFAULT_NUMBER_MARGIN,
    sentence_bonus: int = DEFAULT_SENTENCE_BONUS,
) -> Fidelity:
    """Compare a sentence with the clause parts it paraphrases: numbers, polarity, actors, quantifiers,
    and content the clauses lack. Pure string work; the verdict is `check_sentence`'s."""
    src = _source(tuple(clause_texts))
    plain, numbers = _scan(sentence, lenient=False)
    masked = _masked(plain)
    phrases = _cut(masked, _PHRASE_STOPS)
    quantifiers = [q for q in absolutes_in(plain) if q not in src.absolutes and not (q == "都" and src.absolutes)]
    return Fidelity(
        moved_numbers=tuple(dict.fromkeys(_moved_numbers(masked, numbers, src, number_margin))),
        flipped=tuple(_flipped(masked, phrases, src, sentence_bonus)),
        stray_actors=tuple(dict.fromkeys(_stray_actors(plain, phrases, _match_grams(masked), src))),
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
    evidence: tuple[str, ...] = ()
    """What the removing check found: moved numbers, flipped phrases, actors, quantifiers, new words."""

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


@dataclass(frozen=True)
class Verdict:
    """The judgement of a sentence body against clause texts (see `verdict`)."""

    reason: str | None
    support: float
    missing_numbers: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()


def verdict(
    body: str,
    clause_texts: Sequence[str],
    min_support: float = DEFAULT_MIN_SUPPORT,
    *,
    max_novel: int = DEFAULT_MAX_NOVEL,
    number_margin: int = DEFAULT_NUMBER_MARGIN,
    sentence_bonus: int = DEFAULT_SENTENCE_BONUS,
) -> Verdict:
    """Why the clauses do not support `body` (a sentence without markers), or reason None.

    In order: a number the clauses lack (invented_number) or state for something else
    (number_mismatch), too little lexical support (low_support), a negation the clause phrase does not
    have or lacks (negation), an actor the clause sentence does not name (wrong_actor), an absolute
    quantifier the clauses never use (overgeneralization), and more than `max_novel` content
    characters the clauses have no bigram for (unsupported_content).
    """
    if not clause_texts:
        return Verdict("no_citation", 0.0)
    score = support(body, clause_texts)
    missing = tuple(sorted(missing_numbers(body, clause_texts)))
    if missing:
        return Verdict("invented_number", score, missing, missing)
    found = fidelity(body, clause_texts, number_margin, sentence_bonus)
    for reason, evidence in (
        ("number_mismatch", found.moved_numbers),
        ("low_support", ("%.2f" % score,) if score < min_support else ()),
        ("negation", found.flipped),
        ("wrong_actor", found.stray_actors),
        ("overgeneralization", found.absolutes),
        ("unsupported_content", (found.novel,) if len(found.novel) > max_novel else ()),
    ):
        if evidence:
            return Verdict(reason, score, (), tuple(evidence))
    return Verdict(None, score)


def check_sentence(
    sentence: str,
    texts: Mapping[int, str],
    min_support: float = DEFAULT_MIN_SUPPORT,
    *,
    max_novel: int = DEFAULT_MAX_NOVEL,
    number_margin: int = DEFAULT_NUMBER_MARGIN,
    sentence_bonus: int = DEFAULT_SENTENCE_BONUS,
) -> SentenceCheck:
    """Judge one sentence (markers included) against the citation texts it may use (see `verdict`)."""
    markers = parse_markers(sentence)
    cited = tuple(n for n in markers if n in texts)
    invalid = tuple(n for n in markers if n not in texts)
    body = strip_markers(sentence).strip()
    if not cited:
        reason = "invalid_citation" if invalid else "no_citation"
        return SentenceCheck(body, cited, 0.0, (), invalid, reason)
    judged = verdict(body, [texts[n] for n in cited], min_support, max_novel=max_novel,
                     number_margin=number_margin, sentence_bonus=sentence_bonus)
    return SentenceCheck(body, cited, round(judged.support, 4), judged.missing_numbers, invalid, judged.reason,
                         judged.evidence)


def check_answer(
    answer_text: str,
    citations: Sequence[CitedClause] | Mapping[int, str],
    min_support: float = DEFAULT_MIN_SUPPORT,
) -> GroundingResult:
    """Split an answer with [n] markers and keep only the sentences their cited clauses support.

    A sentence is removed when it cites nothing valid (markers that point nowhere are dropped
    first), when it states a number, date, amount or percentage absent from its cited clauses or
    attached there to something else, when its lexical support falls below `min_support`, or when
    it flips a negation, names another actor, generalises absolutely or adds content of its own
    (see `verdict`). `citations` are the retrieved clauses numbered as the prompt showed them
    (objects with `n` and `text`, or a mapping n → text).
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
