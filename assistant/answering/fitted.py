"""The constants chosen by cross-validation on the dev questions, stored with the index as tuning.json.

They depend on the embedding model (dense scores move with it), so they live beside the vectors, are
refitted by `policy-qa build` (evaluation/tuning.py) and never edited by hand. Without the file every
constant takes its default and no scope model lowers confidence (the loader logs that it is missing).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import IndexError_
from .compose import SpanWeights
from .ranking import LinearRanker, Reranking
from .scope import Calibration, DomainModel

TUNING_FILE = "tuning.json"
logger = logging.getLogger(__name__)


class FusionParams(BaseModel):
    """Reciprocal-rank fusion of the BM25, dense and heading rankings (BM25 has weight 1)."""

    model_config = ConfigDict(frozen=True)

    rrf_c: int = Field(5, ge=1)
    dense_weight: float = Field(1.5, ge=0)
    heading_weight: float = Field(0.0, ge=0)


class Tuning(BaseModel):
    """Every fitted constant of the answer path, with how it was chosen."""

    model_config = ConfigDict(frozen=True)

    fusion: FusionParams = FusionParams()
    query_tower: str | None = Field(None, description="the question encoder chosen by cross-validation, by name; "
                                    "None: the index's embedding model embeds questions too")
    spans: SpanWeights = SpanWeights()
    ranker: LinearRanker | None = None
    reranking: Reranking | None = None
    scope: Calibration | None = None
    domain: DomainModel | None = None
    report: dict = Field(default_factory=dict, description="cross-validated estimates and the grid searched")

    @classmethod
    def load(cls, index_dir: Path) -> Tuning:
        path = index_dir / TUNING_FILE
        if not path.is_file():
            logger.warning("%s/%s is missing: default constants, no scope model; run `policy-qa build`",
                           index_dir.name, TUNING_FILE)
            return cls()
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError, ValueError):
            raise IndexError_(f"the index file {index_dir.name}/{TUNING_FILE} is damaged: run `policy-qa build` again") from None

    @classmethod
    def load_if_present(cls, index_dir: Path) -> Tuning | None:
        """The stored constants, or None when there are none or they cannot be read (no warning)."""
        try:
            return cls.model_validate_json((index_dir / TUNING_FILE).read_text(encoding="utf-8"))
        except (OSError, ValidationError, ValueError):
            return None

    def reranking_for(self, reranker: str | None) -> Reranking | None:
        """The fitted second stage if it was fitted with this relevance model, else None: its weights
        mean nothing with another model's scores, or with none."""
        if self.reranking is None or reranker is None:
            return None
        if self.reranking.reranker != reranker:
            logger.warning("%s's second ranking stage was fitted with %s, not %s: ranking without it until "
                           "`policy-qa build` refits it", TUNING_FILE, self.reranking.reranker, reranker)
            return None
        return self.reranking

    def save(self, index_dir: Path) -> None:
        """Write atomically: a reader sees the old file or the new one, never half of one."""
        tmp = index_dir / f".{TUNING_FILE}.tmp"
        tmp.write_text(json.dumps(self.model_dump(mode="json"), ensure_ascii=False, indent=1) + "\n", "utf-8")
        tmp.replace(index_dir / TUNING_FILE)
