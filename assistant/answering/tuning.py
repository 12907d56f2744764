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
from .ranking import LinearRanker
from .scope import ScopeModel

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
    spans: SpanWeights = SpanWeights()
    ranker: LinearRanker | None = None
    scope: ScopeModel | None = None
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

    def ranker_for(self, reranker: str | None) -> LinearRanker | None:
        """The fitted ranker if it can run with the configured cross-encoder (or its absence), else None:
        a ranker that weighed one reranker's scores means nothing with another's, or with none."""
        ranker_report = self.report.get("ranker")
        fitted_with = (ranker_report or {}).get("reranker")
        if reranker and ranker_report is not None and fitted_with != reranker:  # untuned: tuning weighs it now
            logger.warning("the reranker %s was not weighed by the last tuning, so it is not used: "
                           "run `policy-qa build` (or `policy-qa tune`) to fit its weight", reranker)
        if self.ranker is not None and self.ranker.reads_reranker and fitted_with != reranker:
            logger.warning("%s's ranker was fitted with the reranker %s, which is not configured: ranking by "
                           "fusion alone until `policy-qa build` refits it", TUNING_FILE, fitted_with)
            return None
        return self.ranker

    def save(self, index_dir: Path) -> None:
        """Write atomically: a reader sees the old file or the new one, never half of one."""
        tmp = index_dir / f".{TUNING_FILE}.tmp"
        tmp.write_text(json.dumps(self.model_dump(mode="json"), ensure_ascii=False, indent=1) + "\n", "utf-8")
        tmp.replace(index_dir / TUNING_FILE)
