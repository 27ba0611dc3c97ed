"""BERT's WordPiece tokenizer from scratch: normalize.py -> pretokenize.py -> wordpiece.py, put
together (with special tokens, truncation and padding) in tokenizer.py; trainer.py learns a
vocabulary."""

from minibert.tokenization.tokenizer import Encoding, WordPieceTokenizer

__all__ = ["Encoding", "WordPieceTokenizer"]
