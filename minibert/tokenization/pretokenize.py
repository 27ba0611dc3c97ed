"""Stage 2 of BERT's tokenizer: pre-tokenization into words (Devlin et al. 2019, appendix A.2 /
`tokenization.py`, `BasicTokenizer._run_split_on_punc`).

The normalized text is split on whitespace (which is dropped) and on punctuation (each
punctuation character becomes a word of its own): "Hello, world!" -> Hello | , | world | !.
"Punctuation" is every Unicode P* character plus the ASCII symbols ($, +, <, =, >, ^, `, |, ~),
so "$5" -> $ | 5 and "a+b" -> a | + | b.

One regular expression does it: a word is either one punctuation character or a run of
characters that are neither punctuation nor whitespace.

Other tokenizer.json files use tokenizers' Whitespace, WhitespaceSplit and Sequence, below.
"""

import inspect
import re

from minibert.tokenization import charsets

WORD = charsets.CharsetRegex("[{p}]|[^{p}{w}]+", p=charsets.PUNCTUATION, w=charsets.WHITESPACE)


def pre_tokenize(text: str) -> list[tuple[str, int, int]]:
    """The words of `text` with their (start, end) character offsets into it."""
    return [(m.group(), m.start(), m.end()) for m in WORD(text).finditer(text)]


class BertPreTokenizer:
    """`pre_tokenize` as a pipeline stage. Its words are slices of the normalized text, so it
    needs no `piece_offsets` (a piece word[a:b] is at start + a .. start + b)."""

    def __call__(self, text: str) -> list[tuple[str, int, int]]:
        return pre_tokenize(text)

    def to_json(self) -> dict:
        return {"type": "BertPreTokenizer"}


class Whitespace(BertPreTokenizer):
    r"""Runs of word characters, or of other non-space characters: \w+|[^\w\s]+ (tokenizers'
    Whitespace; Python's \w lacks the combining marks Rust's has)."""
    _WORD = re.compile(r"\w+|[^\w\s]+")

    def __call__(self, text: str) -> list[tuple[str, int, int]]:
        return [(m.group(), m.start(), m.end()) for m in self._WORD.finditer(text)]

    def to_json(self) -> dict:
        return {"type": "Whitespace"}


class WhitespaceSplit(BertPreTokenizer):
    r"""Split on whitespace only: Rust's `char::is_whitespace` (Unicode White_Space; Python's
    \s would also split on U+001C-001F)."""
    _WORD = charsets.CharsetRegex("[^{w}]+", w=charsets.WHITESPACE)

    def __call__(self, text: str) -> list[tuple[str, int, int]]:
        return [(m.group(), m.start(), m.end()) for m in self._WORD(text).finditer(text)]

    def to_json(self) -> dict:
        return {"type": "WhitespaceSplit"}


class Sequence:
    """Pre-tokenizers applied in order, each to the words of the one before. Only the last one
    may have `piece_offsets` (byte-level, Metaspace): the others keep characters as they are."""

    def __init__(self, pretokenizers: list):
        self.pretokenizers = list(pretokenizers)
        self._asks_at_start = ["at_start" in inspect.signature(p.__call__).parameters
                               for p in self.pretokenizers]
        last = self.pretokenizers[-1] if self.pretokenizers else None
        if hasattr(last, "piece_offsets"):
            self.piece_offsets = last.piece_offsets
        if any(hasattr(p, "piece_offsets") for p in self.pretokenizers[:-1]):
            raise ValueError("pre_tokenizer Sequence: only the last pre-tokenizer may change "
                             "characters (ByteLevel, Metaspace)")

    def __call__(self, text: str, at_start=True) -> list[tuple[str, int, int]]:
        """`at_start`: `text` begins the original text; a pre-tokenizer that asks (Metaspace's
        prepend_scheme "first") hears it only for a word at offset 0, as in tokenizers."""
        words = [(text, 0, len(text))]
        for p, asks in zip(self.pretokenizers, self._asks_at_start):
            words = [(w, start + a, start + b) for word, start, _ in words
                     for w, a, b in (p(word, at_start=at_start and start == 0) if asks
                                     else p(word))]
        return words

    def to_json(self) -> dict:
        return {"type": "Sequence", "pretokenizers": [p.to_json() for p in self.pretokenizers]}


class Punctuation(BertPreTokenizer):
    """tokenizers' Punctuation with behavior "Isolated": each punctuation character (BERT's
    definition above) is a word, and so is each run of other characters, spaces included."""

    def __init__(self, behavior="Isolated"):
        if behavior != "Isolated":
            raise ValueError(f"Punctuation behavior {behavior!r} is not supported "
                             "(only 'Isolated')")
        self.behavior = behavior

    _WORD = charsets.CharsetRegex("[{p}]|[^{p}]+", p=charsets.PUNCTUATION)

    def __call__(self, text: str) -> list[tuple[str, int, int]]:
        return [(m.group(), m.start(), m.end()) for m in self._WORD(text).finditer(text)]

    def to_json(self) -> dict:
        return {"type": "Punctuation", "behavior": self.behavior}
