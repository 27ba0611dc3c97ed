"""Stage 2 of BERT's tokenizer: pre-tokenization into words (Devlin et al. 2019, appendix A.2 /
`tokenization.py`, `BasicTokenizer._run_split_on_punc`).

The normalized text is split on whitespace (which is dropped) and on punctuation (each
punctuation character becomes a word of its own): "Hello, world!" -> Hello | , | world | !.
"Punctuation" is every Unicode P* character plus the ASCII symbols ($, +, <, =, >, ^, `, |, ~),
so "$5" -> $ | 5 and "a+b" -> a | + | b.

One regular expression does it: a word is either one punctuation character or a run of
characters that are neither punctuation nor whitespace.
"""

from minibert.tokenization import charsets

WORD = charsets.CharsetRegex("[{p}]|[^{p}{w}]+", p=charsets.PUNCTUATION, w=charsets.WHITESPACE)


def pre_tokenize(text: str) -> list[tuple[str, int, int]]:
    """The words of `text` with their (start, end) character offsets into it."""
    return [(m.group(), m.start(), m.end()) for m in WORD(text).finditer(text)]
