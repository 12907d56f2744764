"""Chinese text utilities: the one place jieba is imported.

Tokenising for BM25 and coverage, sentence splitting, docx artefact cleanup.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache

import jieba

jieba.setLogLevel(logging.WARNING)


_BOOKMARK = re.compile(r"\[bookmark: [^\]]*\]")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")
_PUNCT_OR_SPACE = re.compile(r"[\s\W_]+", re.UNICODE)

# Function words and question scaffolding that carry no topic: they do not count towards coverage.
STOPWORDS = frozenset(
    """的 了 和 与 及 或 等 是 在 对 为 被 把 将 由 从 向 以 于 之 其 该 此 这 那 这个 那个 这些 那些 哪些 哪个
    什么 怎么 怎样 怎么办 如何 多少 多久 几 几天 吗 呢 吧 啊 呀 嘛 么 请问 请 问 想 想要 要 需要 能 能否 可以 可不可以
    会 应该 应当 是否 有没有 有 没有 不 也 都 就 还 又 再 才 吗？ 我 我们 你 你们 他 她 它 他们 公司 企业 一下 一个
    个 些 怎么样 是不是 能不能 要不要 办 办理 规定 关于 呢？ 么 咋 咋办 啥 哪 哪里 谁 时候 时 里 上 下 中 后 前
    告诉 知道 了解 一般 具体 到底 现在 目前 the of""".split()
)


def clean_docx_artefacts(text: str) -> str:
    """Remove `[bookmark: _Toc…]` markers and zero-width characters that document conversion leaves."""
    return _INVISIBLE.sub("", _BOOKMARK.sub("", text))


def split_sentences(text: str) -> list[str]:
    """Split on 。！？； keeping the punctuation; line breaks also end a sentence."""
    sentences: list[str] = []
    for line in text.splitlines():
        for piece in _SENTENCE_END.split(line):
            piece = piece.strip()
            if piece:
                sentences.append(piece)
    return sentences


def load_user_words(words: Iterable[str]) -> None:
    """Teach jieba the corpus's own policy vocabulary (quoted plan terms, document names)."""
    for word in words:
        word = word.strip()
        if len(word) >= 2:
            jieba.add_word(word, freq=20000)
    tokenize.cache_clear()
    content_words.cache_clear()


@lru_cache(maxsize=4096)
def tokenize(text: str) -> tuple[str, ...]:
    """Search-engine-mode jieba tokens, lower-cased, without punctuation or stopwords.

    Search mode also emits the shorter words inside long compounds (简易注销 → 简易, 注销, 简易注销),
    so a colloquial question still meets the clause's formal wording.
    """
    tokens = []
    for token in jieba.cut_for_search(text.lower()):
        token = _PUNCT_OR_SPACE.sub("", token)
        if token and token not in STOPWORDS:
            tokens.append(token)
    return tuple(tokens)


@lru_cache(maxsize=4096)
def content_words(text: str) -> frozenset[str]:
    """The question's topic words: precise-mode jieba words of two or more characters, no stopwords.

    Precise mode, unlike the search mode used for BM25, yields each word once (简易注销 → 简易, 注销;
    no overlapping fragments), which is what a coverage share should count.
    """
    words = (_PUNCT_OR_SPACE.sub("", w) for w in jieba.cut(text.lower()))
    return frozenset(w for w in words if len(w) >= 2 and w not in STOPWORDS and not w.isdigit())


# Colloquial words callers use → the formal term the texts use; added to the lexical query only.
# Why a list: BM25 matches characters, and these everyday words share none with the legal term they mean
# (个体户 is never written in the texts, 个体工商户 always is). Each entry maps to terms of one meaning;
# an entry that only adds a generic word (营业执照 → 登记 once did) steers every question towards the
# clauses that repeat that word, and was removed when cross-validation showed it (tests/test_text.py).
COLLOQUIAL_TERMS = {
    "个体户": "个体工商户",
    "年报": "年度报告",
    "刷脸": "实名验证 身份验证",
    "招投标": "招标投标",
    "外企": "外商投资企业",
    "外资企业": "外商投资企业",
    "老板": "投资人 负责人",
    "关门": "注销 歇业",
    "不干了": "注销",
    "倒闭": "破产 注销",
    "欠钱": "拖欠 债务",
    "欠款": "拖欠 款项",
    "拖欠货款": "拖欠 中小企业款项",
    "罚钱": "罚款",
    "开公司": "设立 登记",
    "办执照": "设立 登记 营业执照",
}


def expand_colloquial(text: str) -> str:
    """Append the formal terms for colloquial words found in `text` (for BM25; embeddings need no help)."""
    extra = [formal for word, formal in COLLOQUIAL_TERMS.items() if word in text and formal not in text]
    return f"{text} {' '.join(extra)}" if extra else text
