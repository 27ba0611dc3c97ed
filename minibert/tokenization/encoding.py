"""`Encoding`: one encoded text (or pair of texts), field for field `tokenizers.Encoding`.

Each field has one entry per token. `offsets` are (start, end) character offsets into the
original text of the token's sequence ((0, 0) for special and padding tokens), `word_ids` the
index of the word the token came from and `sequence_ids` 0 for the first text, 1 for the second
(None for both on special and padding tokens). Truncation with a stride keeps the tokens it
cuts off in `overflowing`, as windows (tokenizers' `Encoding::truncate`).
"""

import dataclasses
import itertools


@dataclasses.dataclass(init=False)
class Encoding:
    ids: list[int]
    type_ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]  # the property below, kept flat
    attention_mask: list[int]
    special_tokens_mask: list[int]
    word_ids: list[int | None]
    sequence_ids: list[int | None]
    overflowing: list["Encoding"]

    def __init__(self, ids, type_ids, tokens, offsets, attention_mask, special_tokens_mask=None,
                 word_ids=None, sequence_ids=None, overflowing=None):
        n = len(ids)
        self.ids, self.type_ids, self.tokens = ids, type_ids, tokens
        self._flat_offsets, self._offsets = list(itertools.chain.from_iterable(offsets)), None
        self.attention_mask = attention_mask
        self.special_tokens_mask = [0] * n if special_tokens_mask is None else special_tokens_mask
        self.word_ids = [None] * n if word_ids is None else word_ids
        self.sequence_ids = [None] * n if sequence_ids is None else sequence_ids
        self.overflowing = [] if overflowing is None else overflowing

    # The offsets are stored flat, [start0, end0, start1, end1, ...], and made tuples when first
    # read: a tuple per token would be the one new object per token of a large batch, and the
    # cyclic garbage collector's one pass over them costs ~10% of the encoding time.
    @property
    def offsets(self) -> list[tuple[int, int]]:
        if self._offsets is None:
            flat = iter(self._flat_offsets)
            self._offsets = list(zip(flat, flat))
        return self._offsets

    @offsets.setter
    def offsets(self, offsets: list[tuple[int, int]]):
        self._flat_offsets = list(itertools.chain.from_iterable(offsets))
        self._offsets = None

    @classmethod
    def empty(cls) -> "Encoding":
        return cls([], [], [], [], [], [], [], [])

    @classmethod
    def of_sequence(cls, ids, tokens, offsets, word_ids) -> "Encoding":
        """The encoding of one text before post-processing (type id 0, sequence 0)."""
        n = len(ids)
        return cls(ids, [0] * n, tokens, offsets, [1] * n, [0] * n, word_ids, [0] * n)

    @classmethod
    def of_flat_sequence(cls, ids, tokens, flat_offsets, word_ids) -> "Encoding":
        """`of_sequence` with the offsets flat: [start0, end0, start1, end1, ...]."""
        n = len(ids)
        encoding = cls(ids, [0] * n, tokens, (), [1] * n, [0] * n, word_ids, [0] * n)
        encoding._flat_offsets = flat_offsets
        return encoding

    def __len__(self):
        return len(self.ids)

    @property
    def words(self):
        return self.word_ids

    # ---- building --------------------------------------------------------------------------

    def extend(self, part: "Encoding", type_id: int, sequence_id: int):
        """Append the tokens of one sequence, with the given type id and sequence id."""
        n = len(part.ids)
        self.ids += part.ids
        self.type_ids += [type_id] * n
        self.tokens += part.tokens
        self._flat_offsets += part._flat_offsets
        self._offsets = None
        self.attention_mask += [1] * n
        self.special_tokens_mask += part.special_tokens_mask
        self.word_ids += part.word_ids
        self.sequence_ids += [sequence_id] * n

    def extend_special(self, ids: list[int], tokens: list[str], type_id: int):
        n = len(ids)
        self.ids += ids
        self.type_ids += [type_id] * n
        self.tokens += tokens
        self._flat_offsets += [0, 0] * n
        self._offsets = None
        self.attention_mask += [1] * n
        self.special_tokens_mask += [1] * n
        self.word_ids += [None] * n
        self.sequence_ids += [None] * n

    def slice(self, start: int, stop: int) -> "Encoding":
        part = Encoding(offsets=(), **{f.name: getattr(self, f.name)[start:stop]
                                       for f in dataclasses.fields(self)
                                       if f.name not in ("offsets", "overflowing")})
        part._flat_offsets = self._flat_offsets[2 * start:2 * stop]
        return part

    def truncate(self, max_length: int, stride=0, side="right") -> list["Encoding"]:
        """Windows of at most `max_length` tokens, each overlapping the previous by `stride`;
        the first is the truncated encoding, the others its overflow (in this order)."""
        n = len(self.ids)
        if max_length >= n:
            return [self]
        if max_length == 0:
            return [self.slice(0, 0), self]
        if stride >= max_length:
            raise ValueError(f"stride={stride} must be less than the {max_length} tokens left "
                             f"for the text once special tokens are counted")
        step, windows = max_length - stride, []
        if side == "right":
            for start in range(0, n, step):
                windows.append((start, min(start + max_length, n)))
                if windows[-1][1] == n:
                    break
        else:
            for stop in range(n, 0, -step):
                windows.append((max(stop - max_length, 0), stop))
                if windows[-1][0] == 0:
                    break
        return [self.slice(a, b) for a, b in windows]

    def pad(self, length: int, pad_id: int, pad_token: str, pad_type_id=0, side="right"):
        n = length - len(self.ids)
        if n <= 0:
            return
        fill = {"ids": [pad_id] * n, "type_ids": [pad_type_id] * n, "tokens": [pad_token] * n,
                "_flat_offsets": [0, 0] * n, "attention_mask": [0] * n,
                "special_tokens_mask": [1] * n, "word_ids": [None] * n,
                "sequence_ids": [None] * n}
        for name, values in fill.items():
            old = getattr(self, name)
            setattr(self, name, old + values if side == "right" else values + old)
        self._offsets = None

    # ---- alignment -------------------------------------------------------------------------

    def char_to_token(self, char_index: int, sequence_index=0) -> int | None:
        """The index of the token whose offsets contain character `char_index` of the text
        `sequence_index`, or None (whitespace, or past the end)."""
        for i, ((start, end), s) in enumerate(zip(self.offsets, self.sequence_ids)):
            if s == sequence_index and start <= char_index < end:
                return i
        return None

    def token_to_chars(self, token_index: int) -> tuple[int, int] | None:
        return None if self.sequence_ids[token_index] is None else self.offsets[token_index]

    def token_to_word(self, token_index: int) -> int | None:
        return self.word_ids[token_index]

    def word_to_tokens(self, word_index: int, sequence_index=0) -> tuple[int, int] | None:
        """(first, last + 1) token indices of a word."""
        hits = [i for i, (w, s) in enumerate(zip(self.word_ids, self.sequence_ids))
                if w == word_index and s == sequence_index]
        return (hits[0], hits[-1] + 1) if hits else None

