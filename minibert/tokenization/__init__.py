"""Tokenizers from scratch, one idea per module:

    text -> normalize.py -> pretokenize.py -> model (wordpiece.py, bpe.py, unigram.py)
         -> template.py (special tokens, type ids) ; decoders for the way back

put together by base.py (`Tokenizer`, Hugging Face's tokenizer API), read and written as
tokenizer.json by files.py, and picked from a directory by auto.py (`AutoTokenizer`).
tokenizer.py is BERT's WordPiece preset; trainer.py learns a WordPiece vocabulary.
"""

from minibert.tokenization.auto import AutoTokenizer
from minibert.tokenization.base import AddedToken, BatchEncoding, Tokenizer
from minibert.tokenization.encoding import Encoding
from minibert.tokenization.tokenizer import WordPieceTokenizer

__all__ = ["AddedToken", "AutoTokenizer", "BatchEncoding", "Encoding", "Tokenizer",
           "WordPieceTokenizer"]
