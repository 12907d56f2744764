"""Cited Q&A over Xiamen's business-environment action plan and the national regulations behind it.

    from assistant import Assistant
    answer = Assistant.load().ask("简易注销需要公示多久？")
"""

from .config import Settings, get_settings
from .errors import PolicyQAError
from .schema import Answer, Citation, Clause, SearchHit
from .service import Assistant

__all__ = [
    "Answer",
    "Assistant",
    "Citation",
    "Clause",
    "PolicyQAError",
    "SearchHit",
    "Settings",
    "get_settings",
]
