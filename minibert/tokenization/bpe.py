"""The byte-pair-encoding model (Sennrich et al. 2016, §3.1 "Byte Pair Encoding"), as GPT-2,
RoBERTa and ModernBERT use it on byte-level words (byte_level.py).

A word starts as its characters; the learned merges are then applied by rank: the adjacent pair
whose merge was learned first (lowest rank; leftmost on ties) is replaced by its concatenation,
again and again, until no adjacent pair has a merge:

    Ġ l o w e r  ->  Ġ lo w e r  ->  Ġlo w e r  ->  Ġlow e r  ->  Ġlow er  ->  Ġlower

Reference: `tokenizers/src/models/bpe/model.rs` (`merge_word`, `tokenize_with_cache`) and
`word.rs` (`merge_all`: a heap of (rank, position), stale entries skipped), whose results this
reproduces exactly, including its options: `unk_token` (None for byte-level: characters not in
the vocabulary are dropped), `fuse_unk`, `continuing_subword_prefix`, `end_of_word_suffix`,
`ignore_merges` (a word already in the vocabulary is taken whole, as Llama-3 files set),
`byte_fallback` (a character not in the vocabulary becomes its UTF-8 bytes as "<0xE2>" tokens, if
all are there). `dropout` is refused.
"""

import heapq
import json
from pathlib import Path

from minibert.tokenization.errors import TokenizerFileError


class BPE:
    """`BPE(vocab, merges)(word)` -> ((id, start, end), ...), character offsets into `word`.

    vocab: {token: id}; merges: [(a, b), ...], rank = index (a later duplicate pair wins, as in
    the reference). Raises ValueError if a merge's parts or result are not in the vocabulary,
    naming `source` (or merge_names[rank], e.g. "merges.txt, line 7").
    """

    def __init__(self, vocab: dict[str, int], merges, unk_token=None,
                 continuing_subword_prefix=None, end_of_word_suffix=None, fuse_unk=False,
                 ignore_merges=False, byte_fallback=False, cache_size=1_000_000, source="BPE",
                 merge_names=None):
        self.vocab = vocab
        self.unk_token = unk_token
        self.continuing_subword_prefix = continuing_subword_prefix
        self.end_of_word_suffix = end_of_word_suffix
        self.fuse_unk = fuse_unk
        self.ignore_merges = ignore_merges
        self.byte_fallback = byte_fallback
        if byte_fallback and (continuing_subword_prefix or end_of_word_suffix):
            raise ValueError(f"{source}: byte_fallback with a subword prefix or suffix is not "
                             "supported")  # the reference's offsets go past the word there
        self.ids_to_tokens = {i: t for t, i in vocab.items()}
        if len(self.ids_to_tokens) != len(vocab):
            raise ValueError(f"{source}: vocab has duplicate ids")
        if unk_token is not None and unk_token not in vocab:
            raise ValueError(f"{source}: unk_token {unk_token!r} is not in the vocab")
        self.unk_id = vocab.get(unk_token)
        # (id_a, id_b) -> (rank, id of a + b)
        self.merges: dict[tuple[int, int], tuple[int, int]] = {}
        prefix = continuing_subword_prefix or ""
        for rank, (a, b) in enumerate(merges):
            where = merge_names[rank] if merge_names else f"{source}.merges[{rank}]"
            if prefix and not b.startswith(prefix):
                raise ValueError(f"{where}: {b!r} lacks the prefix {prefix!r}")
            merged = a + b[len(prefix):]
            for token in (a, b, merged):
                if token not in vocab:
                    raise ValueError(f"{where}: {a!r} {b!r}: {token!r} is not in the vocab")
            self.merges[vocab[a], vocab[b]] = (rank, vocab[merged])
        self._cache: dict[str, tuple[tuple[int, int, int], ...]] = {}
        self._cache_size = cache_size

    def __call__(self, word: str) -> tuple[tuple[int, int, int], ...]:
        """The pieces of `word` as (id, start, end), offsets into the word. Cached per word."""
        pieces = self._cache.get(word)
        if pieces is None:
            whole = self.vocab.get(word) if self.ignore_merges else None
            pieces = ((whole, 0, len(word)),) if whole is not None else self.merge_word(word)
            if len(self._cache) < self._cache_size:
                self._cache[word] = pieces
        return pieces

    def merge_word(self, word: str) -> tuple[tuple[int, int, int], ...]:
        ids, lengths = self._symbols(word)
        if len(ids) > 1:
            _merge_all(ids, lengths, self.merges)
        pieces, start = [], 0
        for i, n in zip(ids, lengths):
            if n:  # merged-away symbols have length 0
                pieces.append((i, start, start + n))
                start += n
        if not word.isascii():  # lengths were in UTF-8 bytes, as the reference counts them
            char = [k for k, c in enumerate(word) for _ in c.encode("utf-8")]
            pieces = [(i, char[a], char[b - 1] + 1) for i, a, b in pieces]
        return tuple(pieces)

    def _symbols(self, word: str) -> tuple[list[int], list[int]]:
        """The word's characters as ids (with prefix/suffix), and their lengths in UTF-8 bytes
        (`model.rs` `merge_word`). A character not in the vocab becomes its byte tokens
        (`byte_fallback`), else unk -- held back until the next known character, so byte tokens
        can come before it, and fused with the next unk if `fuse_unk` -- or, without an unk
        token, is dropped (the offsets of the pieces after it then shift back, as there)."""
        ids, lengths, vocab, unk_id = [], [], self.vocab, self.unk_id
        prefix, suffix = self.continuing_subword_prefix, self.end_of_word_suffix
        last, unk = len(word) - 1, None  # unk: the held-back (id, length)
        for k, c in enumerate(word):
            token = c if k == 0 or prefix is None else prefix + c
            if k == last and suffix is not None:
                token += suffix
            i, n = vocab.get(token), 1 if c < "\x80" else len(c.encode("utf-8"))
            if i is not None:
                if unk:
                    ids.append(unk[0])
                    lengths.append(unk[1])
                    unk = None
                ids.append(i)
                lengths.append(n)
                continue
            if self.byte_fallback:
                fallback = [vocab.get(f"<0x{b:02X}>") for b in token.encode("utf-8")]
                if None not in fallback:
                    ids += fallback
                    lengths += [1] * len(fallback)
                    continue
            if unk_id is not None:
                if unk and self.fuse_unk:
                    unk = (unk_id, unk[1] + n)
                    continue
                if unk:
                    ids.append(unk[0])
                    lengths.append(unk[1])
                unk = (unk_id, n)
        if unk:
            ids.append(unk[0])
            lengths.append(unk[1])
        return ids, lengths

    def is_word_start(self, token: str) -> bool:
        """Whether a token begins a word (byte-level: starts with "Ġ", the space), for
        whole-word masking."""
        return token.startswith("Ġ")

    def to_json(self) -> dict:
        """The tokenizer.json "model" section, as `tokenizers` writes it."""
        ranked = sorted(self.merges.items(), key=lambda item: item[1][0])
        return {"type": "BPE", "dropout": None, "unk_token": self.unk_token,
                "continuing_subword_prefix": self.continuing_subword_prefix,
                "end_of_word_suffix": self.end_of_word_suffix, "fuse_unk": self.fuse_unk,
                "byte_fallback": self.byte_fallback, "ignore_merges": self.ignore_merges,
                "vocab": dict(sorted(self.vocab.items(), key=lambda item: item[1])),
                "merges": [[self.ids_to_tokens[a], self.ids_to_tokens[b]] for (a, b), _ in ranked]}

    @classmethod
    def from_json(cls, section: dict, source: str = "tokenizer.json") -> "BPE":
        """A "model" section with type BPE; merges as "a b" strings or [a, b] pairs.
        Raises ValueError naming `source` (the file), the section and the key or merges[i]."""
        where = f"{source}, model"
        if section.get("type", "BPE") != "BPE":
            raise ValueError(f"{where}.type: expected 'BPE', got {section.get('type')!r}")
        for key in ("vocab", "merges"):
            if key not in section:
                raise ValueError(f"{where}: missing {key!r}")
        if section.get("dropout") not in (None, 0, 0.0):
            raise ValueError(f"{where}.dropout: BPE dropout is not supported")
        vocab = _check_vocab(section["vocab"], f"{where}.vocab")
        if not isinstance(section["merges"], list):
            raise ValueError(f"{where}.merges: expected a list, got {section['merges']!r:.80}")
        merges = [_parse_merge(m, f"{where}.merges[{i}]") for i, m in enumerate(section["merges"])]
        options = {}
        for key in ("unk_token", "continuing_subword_prefix", "end_of_word_suffix"):
            options[key] = section.get(key)
            if options[key] is not None and not isinstance(options[key], str):
                raise ValueError(f"{where}.{key}: expected a string or null, got {options[key]!r}")
        for key in ("fuse_unk", "ignore_merges", "byte_fallback"):
            options[key] = section.get(key) or False
            if not isinstance(options[key], bool):
                raise ValueError(f"{where}.{key}: expected true or false, got {options[key]!r}")
        return cls(vocab, merges, source=where, **options)

    @classmethod
    def from_files(cls, vocab_json, merges_txt, **options) -> "BPE":
        """RoBERTa/GPT-2's vocab.json + merges.txt ("a b" per line, an optional "#version"
        header). Raises TokenizerFileError (a ValueError) naming the file (and line) at
        fault."""
        try:
            vocab = json.loads(Path(vocab_json).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TokenizerFileError(f"{vocab_json}: not a JSON vocabulary: {e}") from None
        try:
            vocab = _check_vocab(vocab, str(vocab_json))
            lines = Path(merges_txt).read_text(encoding="utf-8").split("\n")
            if lines[-1] == "":
                lines.pop()  # the final newline
            merges, names = [], []
            for number, line in enumerate(lines, 1):
                line = line.removesuffix("\r")
                if not line.startswith("#version"):
                    names.append(f"{merges_txt}, line {number}")
                    merges.append(_parse_merge(line, names[-1]))
            return cls(vocab, merges, source=str(merges_txt), merge_names=names, **options)
        except ValueError as e:  # (their messages name the file and line)
            raise TokenizerFileError(str(e)) from None


def _merge_all(ids: list[int], lengths: list[int], merges: dict) -> None:
    """Apply merges in place, lowest (rank, position) first (`word.rs` `merge_all`). The symbols
    form a linked list; a merged-away symbol keeps length 0. A heap entry is stale (skipped)
    when its symbol is gone or the pair there no longer merges into the same token."""
    n = len(ids)
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    prev = list(range(-1, n - 1))
    heap = []
    for pos in range(n - 1):
        merge = merges.get((ids[pos], ids[pos + 1]))
        if merge is not None:
            heap.append((merge[0], pos, merge[1]))
    heapq.heapify(heap)
    while heap:
        _, pos, new = heapq.heappop(heap)
        right = nxt[pos]
        if not lengths[pos] or right == -1:
            continue
        merge = merges.get((ids[pos], ids[right]))
        if merge is None or merge[1] != new:
            continue
        ids[pos] = new  # merge: pos absorbs right
        lengths[pos] += lengths[right]
        lengths[right] = 0
        after = nxt[pos] = nxt[right]
        if after != -1:
            prev[after] = pos
        before = prev[pos]
        if before >= 0 and (merge := merges.get((ids[before], new))) is not None:
            heapq.heappush(heap, (merge[0], before, merge[1]))
        if after != -1 and (merge := merges.get((new, ids[after]))) is not None:
            heapq.heappush(heap, (merge[0], pos, merge[1]))


def _check_vocab(vocab, source: str) -> dict[str, int]:
    if not isinstance(vocab, dict):
        raise ValueError(f"{source}: expected an object {{token: id}}, got {type(vocab).__name__}")
    seen: dict[int, str] = {}
    for token, i in vocab.items():
        if not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise ValueError(f"{source}[{token!r}]: expected a non-negative integer id, got {i!r}")
        if i in seen:
            raise ValueError(f"{source}: id {i} is given to both {seen[i]!r} and {token!r}")
        seen[i] = token
    return vocab


def _parse_merge(merge, source: str) -> tuple[str, str]:
    """'a b' or [a, b] -> (a, b)."""
    if isinstance(merge, str):
        parts = merge.split(" ")
    elif isinstance(merge, list):
        parts = merge
    else:
        parts = None
    if parts is None or len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
        raise ValueError(f"{source}: expected 'a b' or [a, b], got {merge!r:.80}")
    return parts[0], parts[1]
