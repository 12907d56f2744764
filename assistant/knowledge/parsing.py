"""Chinese legal structure → clauses.

Regulations: 第X编/章/节 headings give the heading path; 第X条 at the start of a line opens an article
(only when its number follows the previous one, so a cross-reference such as "第十五条规定的…" that happens
to begin a line never opens one); blank-line paragraphs are 款, and （一） lines are 项 folded into
the 款 before them.

Plans: 一、 parts, （一） sections, 1. measures. Headings that the source lacks are not invented: measures
before the first part heading are grouped where their numbering restarts (g1, g2, …), and paragraphs
before the first measure are the preamble.
"""

from __future__ import annotations

import re

from ..errors import CorpusError
from ..numerals import CN_NUMERAL, cn_to_int
from ..schema import Clause, Document
from ..text import split_sentences
from .corpus import SourceFile

_NUM = rf"(?:{CN_NUMERAL}+|\d+)"
ARTICLE_START = re.compile(rf"^第({_NUM})条(?:之({CN_NUMERAL}+))?[\s\u3000]+(.*)$")
STRUCTURE_HEADING = re.compile(rf"^#*\s*(第{_NUM}[编章节])[\s\u3000]*(.*)$")
ITEM_START = re.compile(rf"^[（(]{CN_NUMERAL}+[）)]")
INFO_END = "<!-- INFO END -->"

PLAN_PART = re.compile(rf"^({CN_NUMERAL}+)、(.+)$")
PLAN_SECTION = re.compile(rf"^（({CN_NUMERAL}+)）(.+)$")
PLAN_MEASURE = re.compile(r"^(\d+)[.．、]\s*(.+)$")


def parse_document(source: SourceFile) -> Document:
    """Parse a validated source file into its clauses, by the document kind's numbering."""
    if source.meta.kind == "plan":
        clauses = parse_plan(source.meta.doc_id, source.body)
    elif source.meta.kind == "regulation":
        clauses = parse_regulation(source.meta.doc_id, source.body)
    else:
        raise CorpusError(f"{source.path}: kind must be 'regulation' or 'plan', not {source.meta.kind!r}")
    if not clauses:
        raise CorpusError(f"{source.path}: no articles or measures found; is the kind right?")
    seen: set[str] = set()
    for clause in clauses:
        if clause.clause_id in seen:
            raise CorpusError(f"{source.path}: two clauses would share the id {clause.clause_id}")
        seen.add(clause.clause_id)
    return Document(meta=source.meta, clauses=clauses)


# --- regulations -------------------------------------------------------------------------------

def parse_regulation(doc_id: str, body: str) -> list[Clause]:
    lines = _body_lines(body)
    clauses: list[Clause] = []
    path: dict[str, str] = {}  # 编/章/节 → heading text
    current: dict | None = None
    last_number = 0

    def close() -> None:
        if current is not None:
            clauses.append(_article_clause(doc_id, current))

    for line in lines:
        if not line:
            continue
        heading = STRUCTURE_HEADING.match(line)
        if heading and not ARTICLE_START.match(line):
            close()
            current = None
            level = heading.group(1)[-1]
            title = f"{heading.group(1)} {heading.group(2)}".strip()
            if level == "编":
                path = {"编": title}
            elif level == "章":
                path = {k: v for k, v in path.items() if k == "编"} | {"章": title}
            else:
                path = {k: v for k, v in path.items() if k != "节"} | {"节": title}
            continue
        article = ARTICLE_START.match(line)
        if article and cn_to_int(article.group(1)) > last_number:
            close()
            last_number = cn_to_int(article.group(1))
            sub = cn_to_int(article.group(2)) if article.group(2) else None
            label = line[: line.index("条") + 1] + (f"之{article.group(2)}" if sub else "")
            current = {
                "number": last_number,
                "sub": sub,
                "label": label,
                "heading_path": tuple(path[k] for k in ("编", "章", "节") if k in path),
                "paragraphs": [article.group(3).strip()],
            }
            continue
        if current is None:
            continue  # title lines and promulgation notes before the first article
        if ITEM_START.match(line) and current["paragraphs"]:
            current["paragraphs"][-1] += "\n" + line
        else:
            current["paragraphs"].append(line)
    close()
    return clauses


def _article_clause(doc_id: str, article: dict) -> Clause:
    paragraphs = tuple(p for p in article["paragraphs"] if p)
    suffix = f"-{article['sub']}" if article["sub"] else ""
    text = "\n".join(paragraphs)
    return Clause(
        clause_id=f"{doc_id}#{article['number']}{suffix}",
        doc_id=doc_id,
        label=article["label"],
        number=article["number"],
        heading_path=article["heading_path"],
        text=text,
        paragraphs=paragraphs,
        sentences=tuple(split_sentences(text)),
    )


# --- plans -------------------------------------------------------------------------------------

def parse_plan(doc_id: str, body: str) -> list[Clause]:
    clauses: list[Clause] = []
    part: tuple[int, str] | None = None
    section: tuple[int, str] | None = None
    group, last_measure, preamble = 0, None, 0

    for line in _body_lines(body):
        if not line:
            continue
        if match := PLAN_PART.match(line):
            part, section, last_measure = (cn_to_int(match.group(1)), line), None, None
            continue
        if match := PLAN_SECTION.match(line):
            section, last_measure = (cn_to_int(match.group(1)), line), None
            continue
        headings = tuple(h for _, h in filter(None, (part, section)))
        if match := PLAN_MEASURE.match(line):
            number, rest = int(match.group(1)), match.group(2)
            if part is None and (last_measure is None or number <= last_measure):
                group += 1
            last_measure = number
            prefix = f"{part[0]}.{section[0] if section else 0}" if part else f"g{group}"
            title, _, body_text = rest.partition("。")
            clauses.append(_plan_clause(doc_id, f"{prefix}.{number}", title, headings, rest, body_text))
        elif part is None and last_measure is None:
            preamble += 1
            clauses.append(
                _plan_clause(doc_id, f"preamble.{preamble}", f"序言第{preamble}段", (), line, line)
            )
        elif part is not None:
            # A section made of a plain paragraph: the section heading is the clause's label.
            label = section[1].split("）", 1)[1] if section else part[1].split("、", 1)[1]
            path = f"{part[0]}.{section[0]}" if section else f"{part[0]}"
            clauses.append(_plan_clause(doc_id, path, label, headings, line, line))
        else:
            raise CorpusError(f"{doc_id}: a paragraph between measures has no heading: {line[:30]}…")
    return clauses


def _plan_clause(
    doc_id: str, path: str, label: str, headings: tuple[str, ...], text: str, body_text: str
) -> Clause:
    return Clause(
        clause_id=f"{doc_id}#{path}",
        doc_id=doc_id,
        label=label,
        heading_path=headings,
        text=text,
        paragraphs=(text,),
        sentences=tuple(split_sentences(body_text)),
    )


def _body_lines(body: str) -> list[str]:
    """Lines of the body proper: after the source's INFO END marker, stripped of edge whitespace."""
    if INFO_END in body:
        body = body.split(INFO_END, 1)[1]
    return [line.strip().lstrip("\ufeff") for line in body.splitlines()]
