"""The training sets in training/: what the learned parts may learn from, kept apart from the eval sets.

- mined_pairs.jsonl: real questions from public pages with the clause whose text the page quoted
  (`policy-qa train mine`, learning/mining.py);
- offdomain_questions.jsonl: real questions from public pages that are not about the corpus's policies:
  `off_domain` (weather, recipes, chit-chat) and `near_domain` (tax, social insurance, labour law);
- operator labels live in the database (knowledge/labels.py), not here.

Every page address and question an eval file holds is left out when these are read, even if a file was
written before the eval set grew.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from ..config import data_dir
from .sets import EVAL_DIR, SETS, load_questions

TRAINING_DIR = data_dir("training")
MINED_PAIRS = TRAINING_DIR / "mined_pairs.jsonl"
OFF_DOMAIN = TRAINING_DIR / "offdomain_questions.jsonl"
_NOT_TEXT = re.compile(r"[^\w]|_")


class MinedPair(BaseModel):
    """One training pair: the question as written, where it came from, and the clause span it matched."""

    question: str
    source: str | None
    site: str
    clause_id: str
    span: str
    containment: float
    margin: float


class DomainQuestion(BaseModel):
    """A real question that the corpus does not cover, and how far from it it is."""

    question: str
    source: str | None
    site: str
    kind: Literal["off_domain", "near_domain"]


def normalise(text: str) -> str:
    """Full-width to half-width, no punctuation or spaces: what a re-typed question still shares."""
    return _NOT_TEXT.sub("", unicodedata.normalize("NFKC", text))


def eval_holdouts(eval_dir: Path = EVAL_DIR) -> tuple[set[str], set[str]]:
    """Every page address and (normalised) question an eval file holds: never training data."""
    questions = [q for name in SETS.values() for q in load_questions(eval_dir / name)]
    return {q.source for q in questions if q.source}, {normalise(q.question) for q in questions}


def _held_out(source: str | None, question: str, holdouts: tuple[set[str], set[str]]) -> bool:
    return bool(source and source in holdouts[0]) or normalise(question) in holdouts[1]


def load_mined(path: Path = MINED_PAIRS) -> list[MinedPair]:
    if not path.is_file():
        return []
    holdouts = eval_holdouts()
    pairs = [MinedPair.model_validate_json(line) for line in path.read_text("utf-8").splitlines() if line]
    return [p for p in pairs if not _held_out(p.source, p.question, holdouts)]


def load_off_domain(path: Path = OFF_DOMAIN) -> list[DomainQuestion]:
    if not path.is_file():
        return []
    holdouts = eval_holdouts()
    rows = [DomainQuestion.model_validate_json(line) for line in path.read_text("utf-8").splitlines() if line]
    return [r for r in rows if not _held_out(r.source, r.question, holdouts)]


def domain_questions() -> list[tuple[str, bool]]:
    """(question, is off-domain) for the domain model: off-domain questions against policy questions,
    the near-domain ones among the latter (the calibration, not the domain model, handles them)."""
    policy = {p.question for p in load_mined()} | {r.question for r in load_off_domain() if r.kind == "near_domain"}
    off = {r.question for r in load_off_domain() if r.kind == "off_domain"}
    return [(q, True) for q in sorted(off)] + [(q, False) for q in sorted(policy - off)]
