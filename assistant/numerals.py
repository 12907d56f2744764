"""Chinese and Arabic numerals → numbers: one parser for article numbers and for the grounding checks."""

from __future__ import annotations

import re

CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
CN_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_BIG = {"万": 10_000, "亿": 100_000_000}
CN_CHARS = "〇零一二两三四五六七八九十百千万亿"
CN_DIGIT_CHARS = "〇零一二两三四五六七八九"
CN_NUMERAL = "[零〇一二两三四五六七八九十百千]"  # a regex class for article and item numbers


def cn_to_number(text: str) -> float | None:
    """Value of a Chinese or Arabic numeral string: "三十五" → 35, "二〇二五" → 2025, "五十万" → 500000.

    Returns None when the string holds no digit (e.g. "千万" as in "千万不要").
    """
    text = text.strip()
    if not text:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        pass
    if re.fullmatch(r"\d+(?:\.\d+)?[万亿]", text):
        return float(text[:-1]) * CN_BIG[text[-1]]
    if not any(c in CN_DIGIT_CHARS or c == "十" for c in text):
        return None
    if not any(c in CN_UNITS or c in CN_BIG for c in text):  # digit by digit: 二〇二五
        return float("".join(str(CN_DIGITS[c]) for c in text))
    total, section, digit = 0, 0, 0
    for char in text:
        if char in CN_DIGITS:
            digit = CN_DIGITS[char]
        elif char in CN_UNITS:
            section += (digit or 1) * CN_UNITS[char]
            digit = 0
        elif char == "万":
            total += (section + digit) * CN_BIG[char]
            section = digit = 0
        elif char == "亿":
            total = (total + section + digit) * CN_BIG[char]
            section = digit = 0
    return float(total + section + digit)


def cn_to_int(numeral: str) -> int:
    """An article or item number ('三十三', '二百四十', '33') as an int; ValueError for anything else.

    >>> cn_to_int("三十三"), cn_to_int("二百零一"), cn_to_int("十"), cn_to_int("33")
    (33, 201, 10, 33)
    """
    value = cn_to_number(numeral) if numeral.strip() and not set(numeral.strip()) - set("0123456789" + CN_CHARS) else None
    if value is None or value != int(value):
        raise ValueError(f"not a Chinese numeral: {numeral!r}")
    return int(value)


def int_to_cn(number: int) -> str:
    """An integer as Chinese numerals the way article numbers are written: 33 → 三十三, 10 → 十, 0 → 零.

    cn2an does the work (it covers 0, 万 and 亿, which a hand-written converter got wrong); it is imported
    here, on the rare paths that print a number, because it adds a quarter second to start-up. Beyond
    its 16 digits the number is written in Arabic digits rather than failing.
    """
    import cn2an

    try:
        return cn2an.an2cn(int(number))
    except ValueError:
        return str(number)


def with_arabic_numbers(text: str) -> str:
    """Chinese numerals in running text rewritten as Arabic ones ("十日内" → "10日内", "百分之十" → "10%"),
    so that a page quoting "10%" and a clause saying 百分之十 share their words. Text cn2an cannot read is
    returned as it was."""
    import warnings

    import cn2an

    with warnings.catch_warnings():  # cn2an warns about every numeral-like word it leaves alone ("千万")
        warnings.simplefilter("ignore")
        try:
            return cn2an.transform(text, "cn2an")
        except (ValueError, KeyError, IndexError):
            return text
