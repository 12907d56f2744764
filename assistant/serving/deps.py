"""What the API's routes share: the process's one Assistant (loaded lazily, errors kept as 503s),
FastAPI dependencies, request limits, and question checking with 422s that name the field.

Both routers (/api in api.py, /v1 in openai_api.py) import from here, so neither imports the other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import Depends, Request

from ..answering.fitted import TUNING_FILE
from ..config import Settings
from ..errors import IndexError_, PolicyQAError, QuestionError
from ..knowledge.store import load_index
from ..question import clean_text, validate_question
from ..schema import Answer, Mode
from ..service import Assistant
from .api_errors import question_error

logger = logging.getLogger(__name__)

MAX_HISTORY_TURNS = 20
MAX_TURN_CHARS = 4000
RELOAD_RETRY_S = 5.0
RELOAD_CHECK_S = 1.0  # how often a request looks for a rebuilt index (one stat call)


class AssistantHolder:
    """Holds the one `Assistant` of the process: loads it lazily (a failure is kept as the 503's reason
    and retried every few seconds) and swaps in a rebuilt index without a restart.

    A build replaces the index directory atomically, so a new manifest file means a complete new index.
    Requests keep the Assistant they started with; the new one is loaded in a background thread (reusing
    the loaded embedding model) and replaces the reference only once it works, so no request fails
    during the swap, and a broken new index leaves the old one serving.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._assistant: Assistant | None = None
        self._error: PolicyQAError | None = None
        self._tried_at = 0.0
        self._checked_at = 0.0
        self._stamp: tuple[int, ...] | None = None
        self._reloading = False
        self._lock = threading.Lock()

    @property
    def error(self) -> PolicyQAError | None:
        return self._error

    @property
    def current(self) -> Assistant | None:
        """The assistant serving now, without loading or reloading (for metrics and health)."""
        return self._assistant

    def _manifest_stamp(self) -> tuple[int, ...] | None:
        """What identifies the index on disk: its manifest, and its tuned constants (a recalibration
        after a knowledge-base change rewrites tuning.json alone)."""
        try:
            stat = (self.settings.index_dir / "manifest.json").stat()
        except OSError:
            return None
        try:
            tuning = (self.settings.index_dir / TUNING_FILE).stat()
            tuning_stamp = (tuning.st_ino, tuning.st_mtime_ns)
        except OSError:
            tuning_stamp = (0, 0)
        return stat.st_ino, stat.st_mtime_ns, *tuning_stamp

    def load(self) -> Assistant | None:
        """Load the index now; on failure keep the error (it becomes a 503) and return None."""
        with self._lock:
            if self._assistant is None:
                self._tried_at = time.monotonic()
                stamp = self._manifest_stamp()
                try:
                    self._assistant = Assistant.load(self.settings)
                    self._stamp, self._error = stamp, None
                except IndexError_ as exc:
                    self._error = exc
                except PolicyQAError as exc:  # e.g. the corpus directory is gone: still a 503, not a crash
                    self._error = IndexError_(str(exc))
                except Exception as exc:  # noqa: BLE001 - the server stays up and says why
                    logger.exception("loading the index failed")
                    self._error = IndexError_(f"loading the index failed ({type(exc).__name__})")
            return self._assistant

    def get(self) -> Assistant:
        """The loaded assistant, or IndexError_ (→ 503); retries at most every few seconds."""
        assistant = self._assistant
        if assistant is not None:
            self._maybe_reload(assistant)
            return assistant
        if self._error is None or time.monotonic() - self._tried_at >= RELOAD_RETRY_S:
            self.load()
        if self._assistant is None:
            raise self._error or IndexError_("index not loaded: run policy-qa build")
        return self._assistant

    def _maybe_reload(self, current: Assistant) -> None:
        now = time.monotonic()
        if now - self._checked_at < RELOAD_CHECK_S or self._reloading:
            return
        self._checked_at = now
        stamp = self._manifest_stamp()
        if stamp is None or stamp == self._stamp:
            return
        with self._lock:
            if self._reloading:
                return
            self._reloading = True
        threading.Thread(target=self._reload, args=(current, stamp), name="index-reload", daemon=True).start()

    def _reload(self, current: Assistant, stamp: tuple[int, ...]) -> None:
        try:
            index = load_index(self.settings)
            fresh = Assistant(self.settings, index, current.embeddings)
            fresh.searcher.retrieve("预热", k=1)
            self._assistant, self._stamp = fresh, stamp
            logger.info("index reloaded: %s clauses, built at %s", index.manifest.clauses, index.manifest.built_at)
        except Exception:  # noqa: BLE001 - a broken new index must not take the old one down
            logger.exception("the rebuilt index could not be loaded; the previous one keeps serving")
            self._stamp = stamp  # do not retry the same broken files on every request
        finally:
            self._reloading = False


def get_holder(request: Request) -> AssistantHolder:
    return request.app.state.holder


def get_assistant(holder: Annotated[AssistantHolder, Depends(get_holder)]) -> Assistant:
    return holder.get()


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def check_question(question: str, settings: Settings, field: str = "question", where: str = "body") -> str:
    """The question as `validate_question` cleans it; a blank or over-long one is a 422 naming the field."""
    try:
        return validate_question(question, settings.max_question_chars)
    except QuestionError as exc:
        raise question_error(str(exc), clean_text(question)[:50], field, where) from None


def iso_date_text(value: object) -> object:
    """Only a "YYYY-MM-DD" string is a day here (pydantic would read a number as a Unix timestamp)."""
    if value is not None and not isinstance(value, (str, date)):
        raise ValueError("日期请写成 YYYY-MM-DD 格式的字符串，例如 \"2021-01-01\"")
    return value


def answer_observer(request: Request, assistant: Assistant, mode: Mode | str | None) -> Callable[[Answer], None]:
    """What a route calls with each finished answer: the outcome goes on the request's log line
    (access_log.py) and into the metrics (metrics.py), including the LLM call and fallback behind it."""

    def observe(answer: Answer) -> None:
        log = getattr(request.state, "log", None)
        if isinstance(log, dict):
            log.update(confidence=answer.confidence.value, abstained=answer.abstained, mode=answer.mode.value)
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.observe_answer(answer, assistant, mode)

    return observe
