"""Extracted lines → clean paragraphs the structure parser can read.

What the formats leave behind, and what each step undoes:
- radicals: PDFs printed from office software often map glyphs to Kangxi / CJK-radical code points
  (⼀ U+2F00 for 一, ⻔ U+2EEB for 门); they look right and silently break every match;
- page furniture (PDF): page numbers ("- 3 -", "第 3 页 共 9 页") and running headers or footers,
  i.e. the same line at the top or bottom of most pages;
- wrapped lines (PDF): a paragraph is cut into full-width lines; a line joins the one before it when
  that one runs (nearly) to the right margin and does not end a sentence;
- conversion artefacts: "[bookmark: _Toc…]" markers and zero-width characters;
- a missing space after "第X条", which the parser needs to see an article start.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from functools import cache
from importlib import resources

from ...numerals import CN_NUMERAL
from ...text import clean_docx_artefacts

# A page number alone on its line, in the forms Chinese government documents print them.
PAGE_NUMBER = re.compile(r"^(?:[-—－–]\s*\d{1,4}\s*[-—－–]|第\s*\d{1,4}\s*页(?:\s*[,，/]?\s*共\s*\d{1,4}\s*页)?"
                         r"|\d{1,4}\s*/\s*\d{1,4}|\d{1,4})$")
# A line that opens a structural unit: a new paragraph even if the line before it looks wrapped.
STRUCTURE_START = re.compile(
    rf"^(?:第{CN_NUMERAL}+[编章节条]|[（(]{CN_NUMERAL}+[）)]|{CN_NUMERAL}+、|\d+[.．、]|附件|附表)")
# A 文号 line under a title: its own line even when the title above runs to the margin.
NUMBER_LINE = re.compile(r"^(?:中华人民共和国)?\S{0,14}令第\S{1,8}号$|^\S{1,12}〔\d{4}〕\d{1,4}号$")
SENTENCE_END = tuple("。；：！？”」）)")  # a line ending in one of these ends its paragraph
ARTICLE_WITHOUT_SPACE = re.compile(rf"^(第{CN_NUMERAL}+条(?:之{CN_NUMERAL}+)?)(?![\s\u3000之])")
FULL_LINE_SHARE = 0.8  # a line at least this share of the body's typical full line width is wrapped
RUNNING_LINE_SHARE = 0.5  # a top/bottom line repeated on at least half the pages is a running header
MIN_PAGES_FOR_RUNNING = 2  # a single page has no "repeated" line
EDGE_LINES = 2  # header and footer blocks are at most two lines each (title + date, URL + page)
DIGITS = re.compile(r"\d+")


@cache
def _radical_table() -> dict[int, str]:
    data = json.loads(resources.files(__package__).joinpath("radicals.json").read_text(encoding="utf-8"))
    return {ord(radical): ideograph for radical, ideograph in data["map"].items()}


def map_radicals(text: str) -> str:
    """Replace Kangxi and CJK-supplement radical code points by the ideographs they stand for
    (Unicode's EquivalentUnifiedIdeograph.txt; NFKC would also rewrite full-width punctuation)."""
    return text.translate(_radical_table())


def strip_page_furniture(pages: list[list[str]]) -> list[str]:
    """The lines of all pages without page numbers and without running headers/footers: lines at a
    page's top or bottom that recur on most pages once their numbers are masked ("… 1/2", "… 2/2")."""
    edges: Counter[str] = Counter()
    for lines in pages:
        content = [line.strip() for line in lines if line.strip()]
        edges.update({_masked(line) for line in (*content[:EDGE_LINES], *content[-EDGE_LINES:])})
    running = set()
    if len(pages) >= MIN_PAGES_FOR_RUNNING:
        running = {line for line, count in edges.items() if count >= max(2, RUNNING_LINE_SHARE * len(pages))}
    kept = []
    for lines in pages:
        content = [line.strip() for line in lines if line.strip()]
        edge = {*content[:EDGE_LINES], *content[-EDGE_LINES:]}
        for line in lines:
            stripped = line.strip()
            if PAGE_NUMBER.match(stripped) or (stripped in edge and _masked(stripped) in running):
                continue
            kept.append(line)
    return kept


def _masked(line: str) -> str:
    return DIGITS.sub("#", line)


def join_wrapped_lines(lines: list[str]) -> list[str]:
    """Re-join paragraphs that a PDF's layout cut into lines (see the module docstring for the rule)."""
    stripped = [line.strip() for line in lines]
    widths = [len(line) for line in stripped if line]
    if not widths:
        return []
    full_width = statistics.quantiles(widths, n=10)[-1] if len(widths) >= 10 else max(widths)
    paragraphs: list[str] = []
    previous_wrapped = False
    for line in stripped:
        if not line:
            previous_wrapped = False
            paragraphs.append("")
            continue
        if previous_wrapped and not STRUCTURE_START.match(line) and not NUMBER_LINE.match(line):
            paragraphs[-1] += line
        else:
            paragraphs.append(line)
        previous_wrapped = len(line) >= FULL_LINE_SHARE * full_width and not line.endswith(SENTENCE_END)
    return paragraphs


def normalise_lines(lines: list[str]) -> list[str]:
    """Radicals mapped, artefacts removed, ideographic spaces trimmed, and a space after 第X条."""
    cleaned = []
    for line in lines:
        line = clean_docx_artefacts(map_radicals(line)).replace("\u00a0", " ").strip(" \t\u3000")
        cleaned.append(ARTICLE_WITHOUT_SPACE.sub(r"\1　", line))
    return cleaned
