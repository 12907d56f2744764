"""The project's exceptions; every message says what is wrong and what to do.

    PolicyQAError
    ├── CorpusError          a corpus file is missing, malformed or empty
    │   └── IngestError      an uploaded .docx/.pdf/.html/.txt cannot become a corpus document
    ├── IndexError_          the index is missing, stale or unreadable
    │   └── IndexStaleError  built from another corpus or embedding model
    ├── QuestionError        an empty, over-long or otherwise unusable question
    ├── NotFoundError        an unknown clause id or document
    ├── PromptError          a prompt template is missing or lacks a placeholder
    ├── ModelError           a configured model (embedding, reranker) cannot be loaded offline
    └── ExtraMissingError    an optional extra is not installed
"""

from __future__ import annotations


class PolicyQAError(Exception):
    """Base class: callers catch this one to show a clean message."""


class CorpusError(PolicyQAError):
    """A corpus file cannot be read as a policy document."""


class IngestError(CorpusError):
    """A file offered to the knowledge base cannot be added; the message (Chinese) is for policy staff."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status the API answers with (413 for an oversized file)


class IndexError_(PolicyQAError):  # noqa: N801 - avoid shadowing the builtin IndexError
    """The index cannot be used."""


class IndexStaleError(IndexError_):
    """The index no longer matches the corpus or the configured model."""


class QuestionError(PolicyQAError, ValueError):
    """The question cannot be answered as given."""


class NotFoundError(PolicyQAError, KeyError):
    """A clause or document id that the index does not hold."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class PromptError(PolicyQAError):
    """A file in prompts/ is missing or its placeholders are not the ones the code fills in."""


class ModelError(PolicyQAError, ValueError):
    """A configured model cannot be loaded from local files (nothing is downloaded at run time)."""


class ExtraMissingError(PolicyQAError, ImportError):
    """An optional dependency group is needed for this feature."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package: install it with "
            f"pip install 'policy-qa[{extra}]'"
        )
