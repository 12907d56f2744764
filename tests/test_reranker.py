"""A local cross-encoder as the relevance model, with a real (tiny, untrained) CrossEncoder loaded from a path.

No trained cross-encoder can be downloaded here, so these tests build a two-layer BERT with a character
vocabulary and save it the way a deployment's model directory looks. Its scores carry no meaning; what
is tested is everything around them: loading offline by path, the second ranking stage reading it only
for the ranker's top clauses, cross-validation deciding whether it is kept, and a stale tuning never
ranking with the wrong model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from assistant.answering.fitted import Tuning
from assistant.answering.ranking import RERANK_FEATURES, LinearRanker, Reranking
from assistant.answering.reranker import CrossEncoderReranker, load_reranker
from assistant.config import PROJECT_ROOT
from assistant.errors import ModelError
from assistant.evaluation.sets import dev_questions
from assistant.evaluation.tuning import RERANKER_MIN_Z, _tune_ranker, _tune_reranking, paired_gain
from assistant.knowledge.relevance import relevance_text

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
    assert load_reranker(None) is None and load_reranker("none") is None


@pytest.fixture(scope="session")
def reranking_assistant(index_settings, reranker: CrossEncoderReranker):  # noqa: ANN001, ANN201
    """An untuned Assistant with the cross-encoder configured: the state `policy-qa build` tunes in,
    with the first-stage ranker fitted as the build fits it."""
    from assistant.knowledge.embeddings import load_embeddings
    from assistant.knowledge.store import load_index
    from assistant.service import Assistant

    settings = index_settings.model_copy(update={"reranker": reranker.name_or_path})
    assistant = Assistant(settings, load_index(settings), load_embeddings(settings.embedding_model), tuning=Tuning())
    questions = [q for q in dev_questions() if q.answerable and q.gold][:80]
    assistant.searcher.ranker, report = _tune_ranker(assistant, questions, {"cv_mrr@10": 0.0})
    assistant.fold_rankers = report["per_fold"]  # what the build hands the second stage
    return assistant


def _only(feature: str, depth: int, name: str) -> Reranking:
    weights = tuple(float(n == feature) for n in RERANK_FEATURES)
    return Reranking(depth=depth, reranker=name, ranker=LinearRanker(
        weights=weights, mean=(0.0, 0.0), std=(1.0, 1.0), features=RERANK_FEATURES))


def test_the_second_stage_reorders_only_the_rankers_top_clauses(reranking_assistant) -> None:  # noqa: ANN001
    searcher = reranking_assistant.searcher
    raw = searcher.raw_scores(QUESTION)
    fused = searcher.fuse(raw, "hybrid")
    first = searcher.rank(QUESTION, raw, fused, "hybrid")
    assert not first.relevance  # no second stage fitted: the model is not read at all
    second = searcher.rank(QUESTION, raw, fused, "hybrid", reranking=_only("relevance", 5, searcher.reranker.name))
    top = first.order[:5]
    by_model = top[np.argsort(-searcher.relevance(QUESTION, top), kind="stable")]
    assert list(second.order[:5]) == list(by_model)
    assert list(second.order[5:]) == list(first.order[5:])  # below the depth nothing moves
    assert set(second.relevance) == set(map(int, top))  # only the top five were read
    clause = reranking_assistant.index.clauses[int(top[0])]
    read = relevance_text(clause, reranking_assistant.index.documents[clause.doc_id])
    assert clause.text in read and clause.label in read  # the model reads the clause with its label
    assert searcher.relevance(QUESTION, top[:1])[0] == searcher.reranker.scores(QUESTION, [read])[0]
    keep_ranker = searcher.rank(QUESTION, raw, fused, "hybrid", reranking=_only("ranker", 5, searcher.reranker.name))
    assert list(keep_ranker.order) == list(first.order)


def test_an_untrained_reranker_is_not_kept_by_cross_validation(reranking_assistant) -> None:  # noqa: ANN001
    """Its scores are noise: whatever it gains on held-out folds stays within two standard errors."""
    questions = [q for q in dev_questions() if q.answerable and q.gold][:80]
    reranking, report = _tune_reranking(reranking_assistant, questions, reranking_assistant.fold_rankers)
    assert report["reranker"] == reranking_assistant.settings.reranker
    assert set(report["by_depth"]) == {5, 8, 12}
    assert report["gain"]["z"] <= RERANKER_MIN_Z
    assert reranking is None and not report["kept"]


@pytest.mark.parametrize(("better", "worse", "clearly"), [
    ({f"q{i}": 1.0 for i in range(50)}, {f"q{i}": 0.5 if i % 2 else 1.0 for i in range(50)}, True),
    ({f"q{i}": 1.0 if i % 2 else 0.5 for i in range(50)}, {f"q{i}": 0.5 if i % 2 else 1.0 for i in range(50)}, False),
    ({"q1": 1.0, "q2": 0.5, "q3": 1.0}, {"q1": 0.5, "q2": 1.0, "q3": 0.9}, False),
])
def test_a_gain_must_stand_out_of_its_noise(better: dict, worse: dict, clearly: bool) -> None:
    assert (paired_gain(better, worse).z > RERANKER_MIN_Z) is clearly


def test_a_second_stage_is_used_only_with_the_model_it_was_fitted_with(caplog: pytest.LogCaptureFixture) -> None:
    fitted = Tuning(reranking=_only("relevance", 8, "/models/a"))
    assert fitted.reranking_for("/models/a") is fitted.reranking
    assert fitted.reranking_for(None) is None
    with caplog.at_level(logging.WARNING):
        assert fitted.reranking_for("/models/b") is None
    assert "policy-qa build" in caplog.text
    assert Tuning().reranking_for("/models/a") is None
