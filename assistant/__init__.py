"""Cited Q&A over Xiamen's business-environment action plan and the national regulations behind it.

    from assistant import Assistant
    answer = Assistant.load().ask("简易注销需要公示多久？")

The names below are imported on first use (PEP 562), so that `import assistant.text` or
`import assistant.numerals` loads those modules alone, not the whole answer path and langchain.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Settings, get_settings
    from .errors import PolicyQAError
    from .schema import Answer, Ask, Citation, Clause, SearchHit
    from .service import Assistant

_HOMES = {
    "Answer": ".schema", "Ask": ".schema", "Assistant": ".service", "Citation": ".schema", "Clause": ".schema",
    "PolicyQAError": ".errors", "SearchHit": ".schema", "Settings": ".config", "get_settings": ".config",
}

__all__ = [
    "Answer",
    "Ask",
    "Assistant",
    "Citation",
    "Clause",
    "PolicyQAError",
    "SearchHit",
    "Settings",
    "get_settings",
]


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name], __name__), name)
    globals()[name] = value
    return value
