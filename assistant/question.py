"""Question validation, in one place for every surface (CLI, API, UI, eval).

Text arrives broken in ways users cannot see: a lone UTF-16 surrogate from a cut emoji in JSON
("\\ud83d"), undecodable bytes from a terminal (Python maps them to surrogates "\\udcxx"), control
characters pasted from documents. None of these can be encoded or means anything, so they are removed
before anything else reads the question; what remains must be non-empty and not over-long.
"""

from __future__ import annotations

import re

from .errors import QuestionError

# Surrogates (U+D800–U+DFFF) cannot exist in valid text; C0/C1 controls other than tab and newline
# and the DEL character carry no meaning in a question.
_UNUSABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f]")
EXAMPLE = "简易注销怎么办理？"


def clean_text(text: str) -> str:
    """`text` without surrogates and control characters (safe to encode, print and log)."""
    return _UNUSABLE.sub("", text)


def validate_question(question: object, max_chars: int) -> str:
    """The question cleaned and stripped, or a QuestionError that tells the user what to change."""
    if not isinstance(question, str):
        raise QuestionError("问题必须是文本。")
    question = clean_text(question).strip()
    if not question:
        raise QuestionError(f"问题为空：请输入要咨询的问题，例如“{EXAMPLE}”。")
    if len(question) > max_chars:
        raise QuestionError(f"问题过长（{len(question)}字）：请精简到{max_chars}字以内，一次问一个问题。")
    return question
