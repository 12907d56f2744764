"""The eval sets: real questions quoted from public pages (the target distribution), questions the team
wrote, and rewrites of those in other phrasings. Each question has a fixed dev or test split; tuning
reads dev only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from ..config import data_dir

EVAL_DIR = data_dir("eval")
SETS: dict[str, str] = {"real": "real_questions.jsonl", "written": "questions.jsonl", "rewrites": "rewrites.jsonl"}
SetName = Literal["real", "written", "rewrites"]
Split = Literal["dev", "test", "all"]


class EvalQuestion(BaseModel):
    """One question and what answers it; `source` is the page a real question was quoted from."""

    id: str
    split: str
    kind: str
    question: str
    gold: list[str] = []
    key_facts: list[str] = []
    real: bool = False
    source: str | None = None
    source_id: str | None = None
    style: str | None = None

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"

    @property
    def group(self) -> str:
        """Questions that must stay in one cross-validation fold: a question and its rewrites."""
        return self.source_id or self.id


def load_questions(path: Path = EVAL_DIR / SETS["written"], split: Split = "all") -> list[EvalQuestion]:
    questions = [EvalQuestion.model_validate_json(line) for line in path.read_text("utf-8").splitlines() if line]
    return [q for q in questions if split == "all" or q.split == split]


def load_set(name: SetName, split: Split = "all", eval_dir: Path = EVAL_DIR) -> list[EvalQuestion]:
    return load_questions(eval_dir / SETS[name], split)


def dev_questions(eval_dir: Path = EVAL_DIR) -> list[EvalQuestion]:
    """Every dev question of every set: what tuning and cross-validation may read."""
    return [q for name in SETS for q in load_set(name, "dev", eval_dir)]  # type: ignore[arg-type]
