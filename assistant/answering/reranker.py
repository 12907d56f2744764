"""An optional cross-encoder that reads the question and a clause together, for deployments that have one.

A bi-encoder (e5) embeds question and clause apart, so neighbouring articles of one law look alike to
it; a cross-encoder attends across both texts and tells 第三十七条's 遗失补领 from its 缴回 sentence. On
AIR-Bench law-zh, bge-reranker-v2-m3 lifts e5-small from nDCG@1 0.613 to 0.800. None is bundled and none
can be downloaded here, so it is off unless `POLICY_QA_RERANKER` names a local model directory (or a
name already in the local Hugging Face cache).

Its score is not trusted blindly: it becomes one more feature of the learned ranker (ranking.py), and
`policy-qa build` keeps it only if cross-validation on the dev questions says the ranker is better with
it (evaluation/tuning.py). Scoring a pool of 30 clauses costs one batched forward pass per question.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np

from ..errors import ModelError
from ..knowledge.embeddings import offline_sentence_transformers

RERANK_BATCH = 32  # pairs per forward pass: the whole candidate pool (30 by default) in one batch
SCORE_CACHE = 2048  # (question, pool) results kept: tuning and repeated hotline questions ask again


class CrossEncoderReranker:
    """Scores (question, clause text) pairs with a sentence-transformers CrossEncoder (the `st` extra).

    Loading never downloads: Hugging Face offline mode is forced, as for the embedding model.
    """

    def __init__(self, name_or_path: str, max_length: int = 512) -> None:
        self.name_or_path = name_or_path
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


def load_reranker(name_or_path: str | None) -> CrossEncoderReranker | None:
    """The configured reranker, loaded; None when `POLICY_QA_RERANKER` is unset."""
    return CrossEncoderReranker(name_or_path).load() if name_or_path else None
