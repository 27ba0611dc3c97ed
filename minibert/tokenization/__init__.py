"""Tokenizers from scratch, one idea per module:

    text -> normalize.py -> pretokenize.py -> model (wordpiece.py, bpe.py, unigram.py)
         -> template.py (special tokens, type ids) ; decoders for the way back

put together by base.py (`Tokenizer`, Hugging Face's tokenizer API), read and written as
tokenizer.json by files.py, and picked from a directory by auto.py (`AutoTokenizer`).
tokenizer.py is BERT's WordPiece preset; trainer.py, bpe_trainer.py and unigram_trainer.py learn
vocabularies, and recipes.py lays each out as BERT, RoBERTa or ALBERT did. byte_level.py and
metaspace.py are the pre-tokenizers (and decoders) of BPE and Unigram; sentencepiece.py reads a
SentencePiece `.model`.

The stage interface (as in the `tokenizers` package; every stage also has `to_json()` and a
`from_json(section, source)` that names the file and section in its errors):

    normalizer(text) -> (normalized, alignment)   alignment[i]: the original index of normalized[i]
                                                  (-1: inserted before the text, the span (0, 0))
    pre_tokenizer(normalized) -> [(word, start, end)]            spans in `normalized`
    pre_tokenizer.piece_offsets(word, start, end, a, b) -> (s, e)  word[a:b] back to `normalized`
                                                  (where words are not plain slices: bytes, ▁)
    model(word) -> ((id, a, b), ...)              pieces, offsets into the word; `model.vocab`,
                                                  `model.is_word_start(token)` (whole-word masking)
    post_processor (template.py): special tokens and type ids for one text or a pair
    decoder(tokens) -> str                        the way back
"""

from minibert.tokenization.auto import AutoTokenizer
from minibert.tokenization.base import AddedToken, BatchEncoding, Tokenizer
from minibert.tokenization.encoding import Encoding
from minibert.tokenization.tokenizer import WordPieceTokenizer

__all__ = ["AddedToken", "AutoTokenizer", "BatchEncoding", "Encoding", "Tokenizer",
           "WordPieceTokenizer"]
