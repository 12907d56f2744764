"""Relevance models that read the question and a clause together: the bundled one, or a local cross-encoder.

A bi-encoder (e5) embeds question and clause apart, so neighbouring articles of one law look alike to
it; a cross-encoder attends across both texts and tells 第三十七条's 遗失补领 from its 缴回 sentence.
`POLICY_QA_RERANKER` chooses one: `bundled` (the default: the model trained here from e5's weights,
knowledge/relevance.py), a local sentence-transformers cross-encoder directory (e.g. a copy of
bge-reranker-v2-m3), or `none`.

Its score is not trusted blindly: the second ranking stage weighs it against the learned ranker's score
(ranking.Reranking), and `policy-qa build` keeps it only if cross-validation on the dev questions says the
ranking is better with it (evaluation/tuning.py). Only the ranker's top few clauses are read.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ModelError
from ..knowledge.e5.onnx import MANIFEST_FILE, MODEL_FILE
from ..knowledge.embeddings import offline_sentence_transformers
from ..knowledge.relevance import BUNDLED_DIR, RelevanceModel

BUNDLED = "bundled"
OFF = ("", "none", "off")


class Reranker(Protocol):
    """What the second ranking stage needs of a relevance model."""

    name: str

    def scores(self, query: str, texts: list[str]) -> np.ndarray: ...

RERANK_BATCH = 32  # pairs per forward pass: the whole candidate pool (30 by default) in one batch
SCORE_CACHE = 2048  # (question, pool) results kept: tuning and repeated hotline questions ask again


class CrossEncoderReranker:
    """Scores (question, clause text) pairs with a sentence-transformers CrossEncoder (the `st` extra).

    Loading never downloads: Hugging Face offline mode is forced, as for the embedding model.
    """

    def __init__(self, name_or_path: str, max_length: int = 512) -> None:
        self.name = self.name_or_path = name_or_path
        self.max_length = max_length
        self.pair_scores = lru_cache(maxsize=SCORE_CACHE)(self._pair_scores)

    @cached_property
    def _model(self):  # noqa: ANN202 - the CrossEncoder type lives in the optional extra
        sentence_transformers = offline_sentence_transformers("the cross-encoder reranker")
        from torch.nn import Identity  # installed with sentence-transformers

        try:
            # Raw logits: a sigmoid would squash the differences the ranker's linear weight reads.
            return sentence_transformers.CrossEncoder(self.name_or_path, device="cpu", max_length=self.max_length,
                                                      local_files_only=True, activation_fn=Identity())
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load the reranker {self.name_or_path!r} offline ({exc}). Set POLICY_QA_RERANKER to "
                "a local cross-encoder directory, or unset it to rank without one."
            ) from None

    def load(self) -> CrossEncoderReranker:
        """Load the model now (at start), so that a bad path fails before the first question."""
        _ = self._model
        return self

    def scores(self, query: str, texts: list[str]) -> np.ndarray:
        """One relevance score per text, higher is more relevant (raw logits: the ranker standardises)."""
        return np.asarray(self.pair_scores(query, tuple(texts)), dtype=float)

    def _pair_scores(self, query: str, texts: tuple[str, ...]) -> tuple[float, ...]:
        if not texts:
            return ()
        scores = self._model.predict([(query, text) for text in texts], batch_size=RERANK_BATCH,
                                     show_progress_bar=False, convert_to_numpy=True)
        return tuple(float(s) for s in np.asarray(scores).reshape(len(texts), -1)[:, -1])


def load_reranker(setting: str | None) -> Reranker | None:
    """The configured relevance model, loaded: `bundled`, a local cross-encoder path, or None for `none`."""
    if setting is None or setting.strip().lower() in OFF:
        return None
    if setting == BUNDLED:
        if not (BUNDLED_DIR / MODEL_FILE).is_file():
            return None  # a checkout without the trained artefact ranks without it
        return RelevanceModel(BUNDLED_DIR).load()
    if (Path(setting) / MODEL_FILE).is_file() and (Path(setting) / MANIFEST_FILE).is_file():
        return RelevanceModel(Path(setting)).load()  # one exported by `policy-qa train export`
    return CrossEncoderReranker(setting).load()
