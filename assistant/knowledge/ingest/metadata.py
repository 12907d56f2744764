"""What a policy document says about itself: title, 文号, issuer, dates, validity, kind.

Chinese official documents state these in fixed forms (GB/T 9704, the 党政机关公文格式 standard, and the
promulgation orders of laws and regulations), so each is one pattern; anything not found is left empty
and shown as a warning in the preview, never guessed.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from itertools import pairwise

from ...numerals import CN_NUMERAL, cn_to_int

_DATE = r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"
# 厦府〔2023〕12号, 厦府办规〔2024〕5号, 国办发[2019]39号 (brackets vary in practice), up to 20
# characters of organ name (厦门市人民代表大会常务委员会公告〔2026〕1号); 国务院令第746号.
DOC_NUMBER = re.compile(
    rf"([\u4e00-\u9fa5]{{1,20}}[〔\[［(（]\s*\d{{4}}\s*[〕\]］)）]\s*(?:第\s*)?\d{{1,4}}\s*号"
    rf"|(?:中华人民共和国)?(?:国务院|主席|[\u4e00-\u9fa5]{{1,12}}(?:部|局|委员会|署|银行|总局))令\s*第\s*"
    rf"(?:\d{{1,4}}|{CN_NUMERAL}+)\s*号)")
EFFECTIVE = re.compile(rf"自\s*{_DATE}\s*起\s*(?:施行|实施|执行|生效)")
EFFECTIVE_ON_ISSUE = re.compile(r"自\s*(?:印发|发布|公布)之日\s*起\s*(?:施行|实施|执行|生效)")
VALID_UNTIL = re.compile(rf"有效期\s*至\s*{_DATE}")
VALID_YEARS = re.compile(rf"有效期\s*(?:为\s*)?(\d{{1,2}}|{CN_NUMERAL}+)\s*年")
DATE_LINE = re.compile(rf"^\s*{_DATE}\s*$")
ISSUER_LINE = re.compile(r"^[\u4e00-\u9fa5（）()]{2,30}(?:人民政府|办公厅|办公室|委员会|总局|局|部|国务院|人民代表大会常务委员会)$")
ISSUER_IN_NUMBER = {"国务院令": "国务院", "主席令": "全国人民代表大会常务委员会"}
DRAFT_MARK = "征求意见稿"
# Title endings → the document category shown to users (kinds the issue names: law, regulation, rule,
# local normative document, plan). Checked in order, first match wins: 办法 before 法, or every
# 办法 would read as a law.
CATEGORY_RULES: tuple[tuple[str, str], ...] = (
    ("方案", "工作方案"), ("计划", "工作方案"), ("措施", "政策措施"),
    ("办法", "规章"), ("细则", "规章"), ("规定", "规章"), ("条例", "法规"), ("法", "法律"),
)
REGULATION_MIN_ARTICLES = 2  # two numbered 第X条 lines make a document article-structured
ARTICLE_LINE = re.compile(rf"^第({CN_NUMERAL}+)条")


def find_doc_number(text: str) -> str | None:
    match = DOC_NUMBER.search(text)
    if not match:
        return None
    number = re.sub(r"\s+", "", match.group(1))
    return number.translate(str.maketrans("[]［］()（）", "〔〕〔〕〔〕〔〕")) if "令" not in number else number


def find_effective(text: str, promulgated: date | None) -> date | None:
    if match := EFFECTIVE.search(text):
        return _date(match)
    if EFFECTIVE_ON_ISSUE.search(text):
        return promulgated
    return None


def find_valid_until(text: str, effective: date | None) -> date | None:
    """The last day of a stated validity period (有效期至…, or 有效期N年 counted from the effective date)."""
    if match := VALID_UNTIL.search(text):
        return _date(match)
    if (match := VALID_YEARS.search(text)) and effective is not None:
        years = int(match.group(1)) if match.group(1).isdigit() else cn_to_int(match.group(1))
        try:
            return effective.replace(year=effective.year + years) - timedelta(days=1)
        except ValueError:  # 29 February
            return effective.replace(year=effective.year + years, day=28)
    return None


def find_signature(lines: list[str]) -> tuple[str | None, date | None, int]:
    """Issuer and date from the closing signature block (an organ's name, then a date line);
    also how many trailing lines that block takes, so the body can drop them."""
    tail = [i for i, line in enumerate(lines) if line.strip()][-4:]
    issuer, signed, first = None, None, len(lines)
    for i in reversed(tail):
        line = lines[i].strip().strip("（）()")
        if signed is None and (match := DATE_LINE.match(line)):
            signed, first = _date(match), i
        elif signed is not None and ISSUER_LINE.match(line):
            issuer, first = line, i
            break
        elif line in ("此件公开发布", "此件主动公开", "此件依申请公开"):
            first = i
        elif signed is None:
            break
    return issuer, signed, len(lines) - first


def find_category(title: str, doc_number: str | None) -> str:
    """A local document numbered like 厦府办规〔2024〕5号 is a 规范性文件 whatever its title; else by title."""
    title = base_title(title)
    is_statute = title.endswith("条例") or (title.endswith("法") and not title.endswith("办法"))
    if doc_number and "〔" in doc_number and not is_statute:
        return "规范性文件"
    for word, category in CATEGORY_RULES:
        if title.endswith(word):
            return category
    return "其他"


def structure_kind(lines: list[str]) -> str:
    """'regulation' when the text is made of numbered articles (第一条, 第二条, …), else 'plan'
    (一、 parts, （一） sections, 1. measures, or plain paragraphs under headings)."""
    numbers = [cn_to_int(m.group(1)) for line in lines if (m := ARTICLE_LINE.match(line.strip()))]
    rising = sum(1 for a, b in pairwise(numbers) if b == a + 1)
    return "regulation" if rising + 1 >= REGULATION_MIN_ARTICLES and numbers[:1] == [1] else "plan"


def base_title(title: str) -> str:
    """The title without edition marks, for matching versions: 保障中小企业款项支付条例（2020年版） and
    保障中小企业款项支付条例（2025年修订） share one."""
    title = re.sub(r"[（(][^（）()]*(?:\d{4}|修订|修正|版|征求意见稿|试行|暂行)[^（）()]*[）)]", "", title)
    return re.sub(r"\s+", "", title)


def _date(match: re.Match) -> date | None:
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None
