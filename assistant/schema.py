"""The data shapes that cross module and process boundaries: Clause, Citation, Answer."""

from __future__ import annotations

import re
from datetime import date
from enum import Enum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from .question import clean_text


class Mode(str, Enum):
    """How an answer is written: quoted clause sentences, or an LLM's sentences checked against them."""

    extractive = "extractive"
    generative = "generative"


class Confidence(str, Enum):
    """high: the corpus answers it; low: only loosely related clauses were found (shown as 可能相关);
    declined: not answered at all (instructions, small talk, other places' policies, unknown documents)."""

    high = "high"
    low = "low"
    declined = "declined"


class DocStatus(str, Enum):
    """What a corpus file says. `expired` is never written: a document whose 有效期 has ended reads as
    expired from that day on (see `DocumentMeta.status_on`); `retired` marks files moved out of use."""

    in_force = "in_force"
    superseded = "superseded"
    draft = "draft"
    expired = "expired"
    retired = "retired"


STATUS_LABELS_ZH = {
    DocStatus.in_force: "现行有效",
    DocStatus.superseded: "已被修订/取代",
    DocStatus.draft: "征求意见稿",
    DocStatus.expired: "已过有效期",
    DocStatus.retired: "已下架",
}


class DocumentMeta(BaseModel):
    """One document's front matter, as the loader validated it."""

    model_config = ConfigDict(frozen=True)

    doc_id: str
    kind: str = Field(description="'regulation' or 'plan'")
    title: str
    short_names: tuple[str, ...] = ()
    issuer: str | None = None
    doc_number: str | None = None
    promulgated: str | None = None
    effective: str | None = None
    version: str | None = None
    status: DocStatus
    status_note: str | None = None
    superseded_by: str | None = None
    superseded_on: str | None = Field(None, description="the day the replacing version took effect")
    valid_until: str | None = Field(None, description="last day of a stated 有效期 (YYYY-MM-DD)")
    category: str | None = Field(None, description="法律, 法规, 规章, 规范性文件, 工作方案 …")
    source: str

    @property
    def status_zh(self) -> str:
        return STATUS_LABELS_ZH[self.status]

    def status_on(self, day: date) -> DocStatus:
        """The status on `day`: an in-force document past its 有效期 is expired."""
        if self.status is DocStatus.in_force and self.valid_until and self.valid_until < day.isoformat():
            return DocStatus.expired
        return self.status

    def effective_date(self) -> str | None:
        """The ISO date `effective` starts with (the field is free text where the source says more)."""
        match = re.match(r"\d{4}-\d{2}-\d{2}", self.effective or "")
        return match.group(0) if match else None

    def in_force_on(self, day: date) -> bool:
        """Whether this version applied on `day`: in effect by then, not yet replaced, not yet expired.
        Drafts count (the plan is a draft and users ask about it); retired files never do."""
        iso = day.isoformat()
        if self.status is DocStatus.retired:
            return False
        if (start := self.effective_date()) and iso < start:
            return False
        if self.superseded_on and iso >= self.superseded_on:
            return False
        return not (self.valid_until and iso > self.valid_until)


class Clause(BaseModel):
    """One citable unit: a regulation article or a plan measure (or preamble paragraph)."""

    model_config = ConfigDict(frozen=True)

    clause_id: str = Field(description="'{doc_id}#{path}', stable across rebuilds")
    doc_id: str
    label: str = Field(description="第三十三条, or a measure's own heading")
    number: int | None = Field(None, description="article number for regulations")
    heading_path: tuple[str, ...] = ()
    text: str = Field(description="the whole clause text, verbatim")
    paragraphs: tuple[str, ...] = Field((), description="款: blank-line paragraphs, 项 folded in")
    sentences: tuple[str, ...] = ()


class Document(BaseModel):
    """A parsed document: its metadata and its clauses in reading order."""

    meta: DocumentMeta
    clauses: list[Clause]


class Citation(BaseModel):
    """A clause as cited by an answer: `[n]` in the text resolves to the citation with that n."""

    n: int
    clause_id: str
    doc_id: str
    doc_title: str
    label: str
    heading_path: list[str] = []
    text: str
    doc_number: str | None = None
    effective: str | None = None
    status: DocStatus
    status_zh: str
    score: float | None = None


class Timings(BaseModel):
    retrieve_ms: float = 0.0
    answer_ms: float = 0.0
    total_ms: float = 0.0


class RemovedSentence(BaseModel):
    """A generated sentence the grounding check dropped, and why (reason: a grounding.REASONS_ZH key)."""

    text: str
    reason: str
    reason_zh: str


class Grounding(BaseModel):
    """What the grounding check kept and removed of a generated answer."""

    kept: list[str] = []
    removed: list[RemovedSentence] = []


class Answer(BaseModel):
    """What every adapter (CLI, API, UI, eval) returns for a question."""

    question: str
    answer: str
    abstained: bool = Field(description="true only when the question was declined (confidence 'declined')")
    confidence: Confidence = Confidence.high
    citations: list[Citation] = []
    related: list[Citation] = Field(
        [], description="'可能相关' clauses shown on abstention; never cited in the answer"
    )
    notices: list[str] = Field([], description="version notes and other caveats, in Chinese")
    mode: Mode = Mode.extractive
    grounding: Grounding | None = Field(None, description="generative mode only: kept/removed sentences")
    timings_ms: Timings = Timings()


class SearchHit(BaseModel):
    """A clause returned by clause search (operators), with its score and rank."""

    rank: int
    score: float
    citation: Citation


class Turn(BaseModel):
    """One earlier chat turn, passed with a follow-up question (cleaned like a question is)."""

    role: str = Field(pattern="^(user|assistant)$")
    content: Annotated[str, AfterValidator(clean_text)]


class Ask(BaseModel):
    """One question as it travels: built once in each adapter (CLI, /api, /v1, the web UI) and passed whole
    through the Assistant, the pipeline, retrieval and the composers, so no field is handed on by position.

    `as_of` answers from the document versions in force on that day; `doc_id` keeps retrieval to one
    document; `mode` None means generative when an LLM is configured."""

    model_config = ConfigDict(frozen=True)

    question: str
    history: tuple[Turn, ...] = ()
    top_k: int | None = None
    method: Literal["hybrid", "bm25", "dense"] = "hybrid"
    mode: Mode | None = None
    as_of: date | None = None
    doc_id: str | None = None


class DocumentInfo(BaseModel):
    """A corpus document as listed to users."""

    doc_id: str
    title: str
    kind: str
    doc_number: str | None = None
    issuer: str | None = None
    effective: str | None = None
    status: DocStatus
    status_zh: str
    clause_count: int


class StreamEvent(BaseModel):
    """One event of `Assistant.stream`: 'sources', then 'token'..., then 'done' (or 'error')."""

    event: str = Field(pattern="^(sources|token|done|error)$")
    data: dict
