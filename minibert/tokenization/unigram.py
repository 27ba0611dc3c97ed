"""The Unigram language-model tokenizer (Kudo 2018, "Subword Regularization", §3.1; Kudo &
Richardson 2018, SentencePiece), as ALBERT, T5 and DeBERTa-v3 use it. Reference:
`tokenizers/src/models/unigram/model.rs` (`encode_optimized`, `tokenize`).

Each piece x has a log-probability log p(x). A word X is cut into the segmentation that
maximizes the sum of its pieces' log-probabilities (Viterbi over the lattice of all pieces
that occur in the word):

    x* = argmax_{x in S(X)} sum_i log p(x_i)                                  (Kudo 2018, eq. 2)

Details that decide ties and unknown characters, exactly as the reference:

* best[e] = max over pieces word[s:e] of best[s] + log p(word[s:e]), with starts s visited in
  increasing order and a strictly greater score needed to replace, so ties keep the earliest
  start (the longest last piece);
* a character that is not a piece of its own gets an `unk` node of score min log p - 10;
* consecutive `unk` nodes are fused into one token (`fuse_unk`); its text is then looked up in
  the vocabulary like any other, and with `byte_fallback` an unknown text becomes its UTF-8
  bytes `<0xXX>`, each with the offsets of the whole unknown text.
"""

import math

UNK_PENALTY = 10.0  # unk score = min score - 10 (model.rs, K_UNK_PENALTY)
CACHE_MAX_LENGTH = 256  # longer words (whole texts, without a split) are not cached


def byte_piece(byte: int) -> str:
    """The byte-fallback piece of one UTF-8 byte: 0xE2 -> "<0xE2>"."""
    return f"<0x{byte:02X}>"


class Unigram:
    """Unigram model: `model(word)` gives the pieces of `word` as ((id, a, b), ...), with
    offsets into the word (characters). Cached per word (up to 255 characters).

    `vocab` is a list of (piece, log-probability); a piece's id is its index (if a piece is
    listed twice, the later id wins, as in the reference). Raises ValueError on a bad unk_id.
    """

    def __init__(self, vocab: list[tuple[str, float]], unk_id: int | None = None,
                 byte_fallback=False, cache_size=1_000_000):
        if unk_id is not None and not 0 <= unk_id < len(vocab):
            raise ValueError(f"unk_id {unk_id} is not an id of the {len(vocab)}-piece vocabulary")
        self.pieces = [(piece, float(score)) for piece, score in vocab]
        self.scores = [score for _, score in self.pieces]
        self.vocab = {piece: i for i, (piece, _) in enumerate(self.pieces)}
        self.unk_id = unk_id
        self.byte_fallback = byte_fallback
        self.unk_score = min(self.scores, default=math.inf) - UNK_PENALTY
        self.longest = max(map(len, self.vocab), default=1)
        self._cache: dict[str, tuple[tuple[int, int, int], ...]] = {}
        self._cache_size = cache_size

    def __call__(self, word: str) -> tuple[tuple[int, int, int], ...]:
        pieces = self._cache.get(word)
        if pieces is None:
            pieces = self.tokenize(word)
            if len(word) < CACHE_MAX_LENGTH and len(self._cache) < self._cache_size:
                self._cache[word] = pieces
        return pieces

    def is_word_start(self, token: str) -> bool:
        """Whether a piece begins a word: SentencePiece marks word starts with "▁"."""
        return token.startswith("\u2581")

    def viterbi(self, word: str) -> list[tuple[int, int, int]]:
        """The best segmentation as [(id, start, end)] before unk fusion (model.rs,
        encode_optimized). Raises ValueError on an unknown character without an unk_id."""
        n, vocab, scores = len(word), self.vocab, self.scores
        best = [0.0] + [None] * n  # best[e]: score of the best path over word[:e]
        back = [None] * (n + 1)  # back[e]: (id, start) of its last piece
        for s in range(n):
            here, single = best[s], False
            for e in range(s + 1, min(n, s + self.longest) + 1):
                piece_id = vocab.get(word[s:e])
                if piece_id is None:
                    continue
                score = scores[piece_id] + here  # best[s] + log p(word[s:e])
                if back[e] is None or score > best[e]:
                    best[e], back[e] = score, (piece_id, s)
                single = single or e == s + 1
            if not single:  # an unknown character: the unk node
                if self.unk_id is None:
                    raise ValueError(f"unknown character {word[s]!r} and the model has no unk_id")
                score = self.unk_score + here
                if back[s + 1] is None or score > best[s + 1]:
                    best[s + 1], back[s + 1] = score, (self.unk_id, s)
        path, e = [], n
        while e > 0:
            piece_id, s = back[e]
            path.append((piece_id, s, e))
            e = s
        return path[::-1]

    def tokenize(self, word: str) -> tuple[tuple[int, int, int], ...]:
        """Viterbi, then fuse runs of unk, look the texts up, fall back to bytes (model.rs,
        `tokenize`)."""
        out, run = [], None  # run: (start, end) of the unk nodes being fused
        for piece_id, a, b in self.viterbi(word) + [(None, len(word), len(word))]:
            if piece_id is not None and piece_id == self.unk_id:
                run = (run[0], b) if run else (a, b)
                continue
            if run:
                out += self._lookup(word, *run)
                run = None
            if piece_id is not None:
                out.append((piece_id, a, b))
        return tuple(out)

    def _lookup(self, word: str, a: int, b: int) -> list[tuple[int, int, int]]:
        """Fused unk text word[a:b]: its own id if it is a piece, else its bytes, else unk."""
        text = word[a:b]
        if text in self.vocab:
            return [(self.vocab[text], a, b)]
        if self.byte_fallback:
            ids = [self.vocab.get(byte_piece(byte)) for byte in text.encode("utf-8")]
            if None not in ids:
                return [(i, a, b) for i in ids]
        return [(self.unk_id, a, b)]

    def to_json(self) -> dict:
        """The tokenizer.json "model" section."""
        return {"type": "Unigram", "unk_id": self.unk_id,
                "vocab": [[piece, score] for piece, score in self.pieces],
                "byte_fallback": self.byte_fallback}

    @classmethod
    def from_json(cls, section: dict, source="tokenizer.json") -> "Unigram":
        """From a tokenizer.json "model" section; ValueError naming `source` and the key."""
        where = f"{source}, model"
        vocab = section.get("vocab")
        if not isinstance(vocab, list):
            raise ValueError(f"{where}.vocab: expected a list of [piece, score], got "
                             f"{type(vocab).__name__}")
        for i, entry in enumerate(vocab):
            if not (isinstance(entry, (list, tuple)) and len(entry) == 2
                    and isinstance(entry[0], str) and isinstance(entry[1], (int, float))
                    and not isinstance(entry[1], bool)):
                raise ValueError(f"{where}.vocab[{i}]: expected [piece, score], got {entry!r:.80}")
            if not math.isfinite(entry[1]):
                raise ValueError(f"{where}.vocab[{i}]: piece {entry[0]!r} has a non-finite "
                                 f"score {entry[1]}")
        unk_id = section.get("unk_id")
        if unk_id is not None and (not isinstance(unk_id, int) or isinstance(unk_id, bool)
                                   or not 0 <= unk_id < len(vocab)):
            raise ValueError(f"{where}.unk_id: {unk_id!r} is not an id of the {len(vocab)}-piece "
                             "vocabulary")
        byte_fallback = section.get("byte_fallback", False)
        if not isinstance(byte_fallback, bool):
            raise ValueError(f"{where}.byte_fallback: expected true or false, "
                             f"got {byte_fallback!r}")
        return cls([tuple(entry) for entry in vocab], unk_id, byte_fallback)
