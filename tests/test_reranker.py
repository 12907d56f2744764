"""The optional cross-encoder reranker, with a real (tiny, untrained) CrossEncoder loaded from a local path.

No trained cross-encoder can be downloaded here, so these tests build a two-layer BERT with a character
vocabulary and save it the way a deployment's model directory looks. Its scores carry no meaning; what
is tested is everything around them: loading offline by path, the score joining the ranker's features,
cross-validation deciding whether it is kept, and a stale tuning never ranking with the wrong reranker.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from assistant.answering.ranking import FEATURES, RERANK_FEATURE, LinearRanker
from assistant.answering.reranker import CrossEncoderReranker, load_reranker
from assistant.answering.tuning import Tuning
from assistant.config import PROJECT_ROOT
from assistant.errors import ModelError
from assistant.evaluation.sets import dev_questions
from assistant.evaluation.tuning import RERANKER_MIN_Z, _tune_ranker, paired_gain

pytest.importorskip("sentence_transformers")

QUESTION = "营业执照丢了怎么办"


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised cross-encoder saved as a local model directory (seeded: the same each run)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    out = tmp_path_factory.mktemp("cross-encoder")
    text = "".join(p.read_text("utf-8") for p in sorted((PROJECT_ROOT / "corpus").rglob("*.md")))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({ch for ch in text if "\u4e00" <= ch <= "\u9fff"})]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", "utf-8")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(out)
    BertTokenizer(str(out / "vocab.txt")).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def reranker(cross_encoder_dir: Path) -> CrossEncoderReranker:
    return load_reranker(str(cross_encoder_dir))


def test_scores_one_logit_per_text_the_same_each_time(reranker: CrossEncoderReranker) -> None:
    texts = ["营业执照遗失的，可以申请补领", "市场主体应当缴回营业执照", "公司解散应当清算"]
    scores = reranker.scores(QUESTION, texts)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    assert len(set(scores.round(8))) == 3  # each pair is read on its own
    assert np.array_equal(scores, CrossEncoderReranker(reranker.name_or_path).scores(QUESTION, texts))
    assert reranker.scores(QUESTION, []).shape == (0,)


def test_an_unloadable_reranker_names_the_setting_and_downloads_nothing(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="POLICY_QA_RERANKER"):
        load_reranker(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelError, match="offline"):
        load_reranker("BAAI/bge-reranker-v2-m3")  # a hub name not in the local cache
    assert load_reranker(None) is None


@pytest.fixture(scope="session")
def reranking_assistant(index_settings, reranker: CrossEncoderReranker):  # noqa: ANN001, ANN201
    """An untuned Assistant with the reranker configured: the state `policy-qa build` tunes in."""
    from assistant.knowledge.embeddings import load_embeddings
    from assistant.knowledge.store import load_index
    from assistant.service import Assistant

    settings = index_settings.model_copy(update={"reranker": reranker.name_or_path})
    return Assistant(settings, load_index(settings), load_embeddings(settings.embedding_model), tuning=Tuning())


def test_the_reranker_score_is_one_more_ranker_feature(reranking_assistant) -> None:  # noqa: ANN001
    searcher = reranking_assistant.searcher
    assert searcher.feature_names() == (*FEATURES, RERANK_FEATURE)
    raw = searcher.raw_scores(QUESTION)
    fused = searcher.fuse(raw, "hybrid")
    pool = searcher.order(QUESTION, raw, fused, "hybrid")[:10]
    rows = searcher.features(QUESTION, raw, fused, pool)
    assert rows.shape == (10, len(FEATURES) + 1)
    clauses = [reranking_assistant.index.clauses[int(i)] for i in pool]
    read = [" ".join((reranking_assistant.index.documents[c.doc_id].title, *c.heading_path, c.text)) for c in clauses]
    assert np.allclose(rows[:, -1], searcher.reranker.scores(QUESTION, read))


def test_a_ranker_that_weighs_only_the_reranker_orders_by_its_scores(reranking_assistant) -> None:  # noqa: ANN001
    searcher = reranking_assistant.searcher
    names = searcher.feature_names()
    only_rerank = LinearRanker(weights=tuple(float(n == RERANK_FEATURE) for n in names), mean=(0.0,) * len(names),
                               std=(1.0,) * len(names), features=names)
    raw = searcher.raw_scores(QUESTION)
    fused = searcher.fuse(raw, "hybrid")
    pool = searcher.order(QUESTION, raw, fused, "hybrid")[: searcher.candidate_k]
    by_reranker = pool[np.argsort(-searcher.features(QUESTION, raw, fused, pool)[:, -1], kind="stable")]
    reordered = searcher.order(QUESTION, raw, fused, "hybrid", ranker=only_rerank)
    assert list(reordered[: len(pool)]) == list(by_reranker)
    assert list(by_reranker) != list(pool)  # the reranker really changed the order


def test_an_untrained_reranker_is_not_kept_by_cross_validation(reranking_assistant) -> None:  # noqa: ANN001
    """Its scores are noise: whatever it gains on held-out folds stays within two standard errors."""
    questions = [q for q in dev_questions() if q.answerable and q.gold][:80]
    ranker, report = _tune_ranker(reranking_assistant, questions, {"cv_mrr@10": 0.0})
    assert report["reranker"] == reranking_assistant.settings.reranker
    assert set(report["variants"]) == {"with_reranker", "without_reranker"}
    assert report["reranker_gain"]["z"] <= RERANKER_MIN_Z
    assert ranker is not None and report["kept"] and not report["reranker_kept"] and not ranker.reads_reranker
    assert report["cv_mrr@10"] == report["variants"]["without_reranker"]["cv_mrr@10"]
    assert tuple(report["weights"]) == ranker.features == FEATURES


@pytest.mark.parametrize(("better", "worse", "clearly"), [
    ({f"q{i}": 1.0 for i in range(50)}, {f"q{i}": 0.5 if i % 2 else 1.0 for i in range(50)}, True),
    ({f"q{i}": 1.0 if i % 2 else 0.5 for i in range(50)}, {f"q{i}": 0.5 if i % 2 else 1.0 for i in range(50)}, False),
    ({"q1": 1.0, "q2": 0.5, "q3": 1.0}, {"q1": 0.5, "q2": 1.0, "q3": 0.9}, False),
])
def test_a_gain_must_stand_out_of_its_noise(better: dict, worse: dict, clearly: bool) -> None:
    assert (paired_gain(better, worse).z > RERANKER_MIN_Z) is clearly


def _ranker(features: tuple[str, ...]) -> LinearRanker:
    return LinearRanker(weights=(1.0,) * len(features), mean=(0.0,) * len(features), std=(1.0,) * len(features),
                        features=features)


def test_a_ranker_is_used_only_with_the_reranker_it_was_fitted_with(caplog: pytest.LogCaptureFixture) -> None:
    fitted = Tuning(ranker=_ranker((*FEATURES, RERANK_FEATURE)), report={"ranker": {"reranker": "/models/a"}})
    assert fitted.ranker_for("/models/a") is fitted.ranker
    with caplog.at_level(logging.WARNING):
        assert fitted.ranker_for(None) is None
        assert fitted.ranker_for("/models/b") is None
    assert "policy-qa build" in caplog.text

    plain = Tuning(ranker=_ranker(FEATURES), report={"ranker": {"reranker": None}})
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert plain.ranker_for(None) is plain.ranker
    assert not caplog.text
    with caplog.at_level(logging.WARNING):
        assert plain.ranker_for("/models/a") is plain.ranker  # still ranks, without the unweighed reranker
    assert "not weighed" in caplog.text


def test_tuning_files_from_before_features_were_stored_still_load() -> None:
    older = 14  # weights in tuning.json files written before the question-kind features and the reranker
    stored = LinearRanker.model_validate({"weights": [1.0] * older, "mean": [0.0] * older, "std": [1.0] * older})
    assert stored.features == FEATURES[:older] and not stored.reads_reranker
    rows = np.ones((3, len(FEATURES)))
    assert stored.scores(rows, FEATURES).shape == (3,)
