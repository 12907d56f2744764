"""A rule over a question's wording, kept as data: its pattern, why it exists, and examples where it must
fire and where it must not (the tests run every example). The scope rules that decline (scope_rules.py),
the follow-up rule and the question kinds the ranker reads (kinds.py) are all such rules."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class WordingRule:
    """A pattern over a question, why it exists, and examples on both sides of it."""

    name: str
    pattern: re.Pattern[str]
    why: str
    fires_on: tuple[str, ...]
    passes: tuple[str, ...]
    unless: re.Pattern[str] | None = None

    def fires(self, question: str) -> bool:
        return bool(self.pattern.search(question)) and not (self.unless and self.unless.search(question))
