"""Stage 3 of BERT's tokenizer: the WordPiece model (Schuster & Nakajima 2012; Wu et al. 2016
§4.1; Devlin et al. 2019 §3 uses a 30,000-token WordPiece vocabulary).

Each word is cut into vocabulary pieces by *greedy longest match first*: take the longest
prefix of the word that is in the vocabulary, then the longest prefix of the rest spelled with
the continuation prefix "##", and so on:

    "unaffable" -> un | ##aff | ##able

If at some point no piece matches, the whole word becomes `[UNK]` (not just the failing
part), and so does any word longer than `max_input_chars_per_word` characters.

`decode` goes back: continuation pieces are glued to the previous piece, the others are
separated by a space, and the spaces before . ? ! , are removed.
"""

from minibert.tokenization.base import clean_up_tokenization
from minibert.tokenization.errors import TokenizerFileError

UNK = "[UNK]"
PREFIX = "##"


class WordPiece:
    def __init__(self, vocab: dict[str, int], unk_token=UNK, prefix=PREFIX,
                 max_input_chars_per_word=100, cache_size=1_000_000):
        self.vocab = vocab
        self.unk_token = unk_token
        self.unk_id = vocab.get(unk_token)  # needed only when a word has no segmentation
        self.prefix = prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        self.longest = max(map(len, vocab), default=0)  # no piece can be longer than this
        self._cache: dict[str, tuple[tuple[int, int, int], ...]] = {}
        self._cache_size = cache_size

    def __call__(self, word: str) -> tuple[tuple[int, int, int], ...]:
        """The pieces of `word` as (id, start, end), offsets into the word. Cached per word."""
        pieces = self._cache.get(word)
        if pieces is None:
            pieces = self.greedy_longest_match(word)
            if len(self._cache) < self._cache_size:
                self._cache[word] = pieces
        return pieces

    def greedy_longest_match(self, word: str) -> tuple[tuple[int, int, int], ...]:
        if len(word) > self.max_input_chars_per_word:
            return self._unknown(word)
        pieces, start = [], 0
        while start < len(word):
            prefix = self.prefix if start > 0 else ""
            for end in range(min(len(word), start + self.longest), start, -1):
                piece_id = self.vocab.get(prefix + word[start:end])
                if piece_id is not None:
                    break
            else:
                return self._unknown(word)
            pieces.append((piece_id, start, end))
            start = end
        return tuple(pieces)

    def _unknown(self, word: str) -> tuple[tuple[int, int, int], ...]:
        if self.unk_id is None:
            raise ValueError(f"the word {word[:50]!r} has no WordPiece segmentation and the "
                             f"vocabulary lacks the unknown token {self.unk_token!r}")
        return ((self.unk_id, 0, len(word)),)

    def is_word_start(self, token: str) -> bool:
        """Whether `token` begins a word (whole-word masking, pipelines): no "##"."""
        return not token.startswith(self.prefix)

    def to_json(self) -> dict:
        """tokenizer.json's "model" section."""
        return {"type": "WordPiece", "unk_token": self.unk_token,
                "continuing_subword_prefix": self.prefix,
                "max_input_chars_per_word": self.max_input_chars_per_word, "vocab": self.vocab}

    @classmethod
    def from_json(cls, section: dict, source="tokenizer.json") -> "WordPiece":
        vocab = section.get("vocab")
        if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
            raise TokenizerFileError(f"{source}, model.vocab: expected an object {{token: id}}")
        return cls(vocab, section.get("unk_token", UNK),
                   section.get("continuing_subword_prefix", PREFIX),
                   section.get("max_input_chars_per_word", 100))


class WordPieceDecoder:
    """tokenizer.json's WordPiece decoder: `decoder(tokens) -> str`."""

    def __init__(self, prefix=PREFIX, cleanup=True):
        self.prefix, self.cleanup = prefix, cleanup

    def __call__(self, tokens: list[str]) -> str:
        return decode(tokens, self.prefix, self.cleanup)

    def to_json(self) -> dict:
        return {"type": "WordPiece", "prefix": self.prefix, "cleanup": self.cleanup}


def decode(tokens: list[str], prefix=PREFIX, cleanup=True) -> str:
    """Join WordPiece tokens back into text: "un ##aff ##able ." -> "unaffable."."""
    out = []
    for i, token in enumerate(tokens):
        if i > 0:
            token = token[len(prefix):] if token.startswith(prefix) else " " + token
        if cleanup:  # the reference decoder's clean-up, per piece with its space: transformers' plus "do not"
            token = clean_up_tokenization(token).replace(" do not", " don't")
        out.append(token)
    return "".join(out)
