"""Exact references: "市场主体登记管理条例第三十三条", "登记条例第33条", "《破产法》第二条" → that clause.

Documents answer to their titles (with or without 中华人民共和国) and the short names in their front
matter; when two versions share a name, the one in force wins unless the question names a year that
only the other version carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..numerals import CN_NUMERAL, cn_to_int
from ..schema import DocStatus, DocumentMeta

_ARTICLE = re.compile(rf"第\s*({CN_NUMERAL}+|\d+)\s*条")
_YEAR = re.compile(r"(19|20)\d{2}")
# A name that looks like a law or regulation, right before the article number: 《劳动法》第四十四条.
_LAW_NAME = re.compile(r"《?([\u4e00-\u9fff]{1,24}?(?:法典|法|条例|细则|规定|办法|决定|方案))》?\s*$")


@dataclass(frozen=True)
class Reference:
    """A reference to an article; `doc_id` is None when the named document is not in the corpus."""

    doc_id: str | None
    article: int | None
    name: str | None = None


class DocumentNames:
    """Maps the names people use for documents to document ids."""

    def __init__(self, documents: dict[str, DocumentMeta]) -> None:
        self._documents = documents
        names: dict[str, list[str]] = {}
        for meta in documents.values():
            for name in {meta.title, meta.title.removeprefix("中华人民共和国"), *meta.short_names}:
                name = re.sub(r"（\d{4}年版）$", "", name)
                names.setdefault(name, []).append(meta.doc_id)
        # Longest first, so 政府采购法实施条例 wins over 政府采购法.
        self._names = sorted(names.items(), key=lambda item: -len(item[0]))

    def find(self, text: str) -> list[str]:
        """Document ids named in `text`, longest names first, each name's span used once."""
        found: list[str] = []
        taken: list[tuple[int, int]] = []
        for name, doc_ids in self._names:
            start = text.find(name)
            while start >= 0:
                end = start + len(name)
                if not any(s < end and start < e for s, e in taken):
                    taken.append((start, end))
                    choice = self._choose_version(doc_ids, text)
                    if choice not in found:
                        found.append(choice)
                start = text.find(name, end)
        return found

    def _choose_version(self, doc_ids: list[str], text: str) -> str:
        if len(doc_ids) == 1:
            return doc_ids[0]
        years = {m.group(0) for m in _YEAR.finditer(text)}
        for doc_id in doc_ids:
            meta = self._documents[doc_id]
            if years and any(year in (meta.promulgated or "") or year in meta.title for year in years):
                return doc_id
        in_force = [d for d in doc_ids if self._documents[d].status is DocStatus.in_force]
        return (in_force or doc_ids)[0]


def parse_reference(text: str, names: DocumentNames) -> Reference | None:
    """A reference to one article of one named document, or None when the text is not one."""
    article = _ARTICLE.search(text)
    if not article:
        return None
    number = cn_to_int(article.group(1))
    docs = names.find(text[: article.start()]) or names.find(text)
    if docs:
        return Reference(doc_id=docs[0], article=number)
    unknown = _LAW_NAME.search(text[: article.start()])
    if unknown:
        return Reference(doc_id=None, article=number, name=unknown.group(1))
    return None
