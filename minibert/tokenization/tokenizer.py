"""BERT's WordPiece tokenizer end to end (Devlin et al. 2019, §3 "Input/Output Representations").

    text -> normalize -> pre-tokenize -> WordPiece -> [CLS] A [SEP] (B [SEP]) -> truncate -> pad

Stages 1-3 live in normalize.py, pretokenize.py and wordpiece.py; this module adds the special
tokens, the segment (token type) ids, truncation, padding and the attention mask, the `Encoding`
they produce, batching into numpy arrays, and the files (`vocab.txt`, `tokenizer_config.json`)
that Hugging Face's `BertTokenizerFast` reads.

Special tokens typed in the text ("fill the [MASK]") are kept whole, as in the reference.
"""

import contextlib
import dataclasses
import gc
import json
import os
import re

import numpy as np

from minibert.checkpoints.hub import resolve
from minibert.tokenization import wordpiece
from minibert.tokenization.normalize import BertNormalizer
from minibert.tokenization.pretokenize import pre_tokenize

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")


@dataclasses.dataclass
class Encoding:
    """One encoded text (or pair). `offsets` are (start, end) character offsets into the original
    text of the token's sequence; special and padding tokens get (0, 0)."""
    ids: list[int]
    type_ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    attention_mask: list[int]

    def __len__(self):
        return len(self.ids)


@contextlib.contextmanager
def no_cyclic_gc():
    """Encoding a batch allocates millions of small lists and tuples, none of which can form a
    reference cycle; left on, the cyclic garbage collector rescans them over and over, which
    more than doubles the time of a large batch."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_vocab(path) -> dict[str, int]:
    """vocab.txt: one token per line, the id is the line number."""
    vocab = {}
    with open(path, "rb") as f:
        for number, line in enumerate(f):
            try:
                vocab[line.decode("utf-8").rstrip()] = number
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}, line {number + 1}: not UTF-8 ({e})") from None
    return vocab


class WordPieceTokenizer:
    """BERT's tokenizer, from scratch; identical output to Hugging Face's BertTokenizerFast.

    `backend="tokenizers"` runs stages 1-3 in the Rust `tokenizers` package instead (same vocab,
    same output, parallel batches); post-processing is ours either way.
    """

    def __init__(self, vocab: dict[str, int], *, lowercase=True, strip_accents=None,
                 clean_text=True, handle_chinese_chars=True, model_max_length=512,
                 backend="minibert"):
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f"vocabulary lacks the special tokens {', '.join(missing)}")
        if backend not in ("minibert", "tokenizers"):
            raise ValueError(f"backend must be 'minibert' or 'tokenizers', not {backend!r}")
        self.vocab = vocab
        self.id_to_token = {i: t for t, i in vocab.items()}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            vocab[t] for t in SPECIAL_TOKENS)
        self.model_max_length = model_max_length
        self.normalizer = BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase)
        self.model = wordpiece.WordPiece(vocab)
        self._special = re.compile("|".join(map(re.escape, SPECIAL_TOKENS)))
        self._rust = self._rust_tokenizer() if backend == "tokenizers" else None

    # ---- construction, files -------------------------------------------------------------

    @classmethod
    def from_file(cls, vocab_file, **kwargs) -> "WordPieceTokenizer":
        return cls(read_vocab(vocab_file), **kwargs)

    @classmethod
    def from_pretrained(cls, directory, **kwargs) -> "WordPieceTokenizer":
        """Read a Hugging Face BERT tokenizer directory (vocab.txt + tokenizer_config.json), or a Hub name's."""
        directory = resolve(directory)
        config_file = os.path.join(directory, "tokenizer_config.json")
        config = {}
        if os.path.exists(config_file):
            with open(config_file, encoding="utf-8") as f:
                config = json.load(f)
        options = {
            "lowercase": config.get("do_lower_case", True),
            "strip_accents": config.get("strip_accents"),
            "handle_chinese_chars": config.get("tokenize_chinese_chars", True),
            "clean_text": config.get("clean_text", True),
            # Hugging Face writes 1e30 for "no limit".
            "model_max_length": min(config.get("model_max_length", 512), 1 << 31),
        }
        return cls.from_file(os.path.join(directory, "vocab.txt"), **(options | kwargs))

    def save_pretrained(self, directory):
        """Write vocab.txt, tokenizer_config.json and special_tokens_map.json."""
        os.makedirs(directory, exist_ok=True)
        if sorted(self.id_to_token) != list(range(len(self.id_to_token))):
            raise ValueError("vocab.txt needs the ids 0..n-1, each once")
        with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
            f.writelines(self.id_to_token[i] + "\n" for i in range(len(self.id_to_token)))
        special = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"),
                           SPECIAL_TOKENS))
        n = self.normalizer
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": n.lowercase,
            "strip_accents": None if n.strip_accents == n.lowercase else n.strip_accents,
            "tokenize_chinese_chars": n.handle_chinese_chars,
            "clean_text": n.clean_text,  # ours: transformers always cleans
            "model_max_length": self.model_max_length,
        } | special
        for name, content in (("tokenizer_config.json", config),
                              ("special_tokens_map.json", special)):
            with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
                json.dump(content, f, indent=2, ensure_ascii=False)

    @classmethod
    def train(cls, files_or_iterator, vocab_size=30522, *, lowercase=True, min_frequency=2,
              strip_accents=None, clean_text=True, handle_chinese_chars=True,
              **kwargs) -> "WordPieceTokenizer":
        """Learn a vocabulary and return a tokenizer that uses it.

        The algorithm (trainer.py) is bottom-up merging of the most frequent pair, with "##"
        marking non-initial pieces, as Hugging Face's WordPieceTrainer does. `files_or_iterator`
        is a path, a list of paths, or an iterator of texts (e.g. `iter(texts)`)."""
        from minibert.tokenization.trainer import train_vocab

        normalizer = BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase)
        vocab = train_vocab(files_or_iterator, vocab_size, normalizer, min_frequency,
                            SPECIAL_TOKENS)
        return cls(vocab, lowercase=lowercase, strip_accents=strip_accents,
                   clean_text=clean_text, handle_chinese_chars=handle_chinese_chars, **kwargs)

    def __len__(self):
        return len(self.vocab)

    # ---- stages 1-3 ----------------------------------------------------------------------

    def tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and character offsets of `text`, without special tokens."""
        _check_text(text)
        if self._rust is not None:
            encoding = self._rust.encode(text, add_special_tokens=False)
            return encoding.ids, encoding.offsets
        ids, offsets, done = [], [], 0
        for special in self._special.finditer(text):  # "[MASK]" typed in the text stays whole
            self._tokenize_segment(text[done:special.start()], done, ids, offsets)
            ids.append(self.vocab[special.group()])
            offsets.append(special.span())
            done = special.end()
        self._tokenize_segment(text[done:], done, ids, offsets)
        return ids, offsets

    def _tokenize_segment(self, text, shift, ids, offsets):
        normalized, alignment = self.normalizer(text)
        for word, start, _ in pre_tokenize(normalized):
            for piece_id, a, b in self.model(word):
                ids.append(piece_id)
                if alignment is None:
                    offsets.append((shift + start + a, shift + start + b))
                else:  # first and last original character behind the piece
                    offsets.append((shift + alignment[start + a],
                                    shift + alignment[start + b - 1] + 1))

    def _tokenize_batch(self, texts):
        if self._rust is None:
            return [self.tokenize(t) for t in texts]
        for text in texts:
            _check_text(text)
        encodings = self._rust.encode_batch(list(texts), add_special_tokens=False)
        return [(e.ids, e.offsets) for e in encodings]

    def _rust_tokenizer(self):
        """The same pipeline assembled from the `tokenizers` package (optional dependency)."""
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        n = self.normalizer
        rust = Tokenizer(models.WordPiece(self.vocab, unk_token=wordpiece.UNK,
                                          max_input_chars_per_word=100))
        rust.normalizer = normalizers.BertNormalizer(
            clean_text=n.clean_text, handle_chinese_chars=n.handle_chinese_chars,
            strip_accents=n.strip_accents, lowercase=n.lowercase)
        rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        rust.add_special_tokens(list(SPECIAL_TOKENS))
        return rust

    # ---- post-processing -----------------------------------------------------------------

    def encode(self, text: str, pair: str | None = None, *, add_special_tokens=True,
               max_length=None, truncation=False, padding=False) -> Encoding:
        """Encode a text, or a pair as `[CLS] A [SEP] B [SEP]` with type ids 0.. 0 1.. 1."""
        texts = [text] if pair is None else [text, pair]
        tokenized = self._tokenize_batch(texts)
        return self._post_process(tokenized[0], tokenized[1] if pair is not None else None,
                                  add_special_tokens, max_length, truncation, padding)

    def encode_batch(self, texts, pairs=None, *, add_special_tokens=True, max_length=None,
                     truncation=False, padding=False) -> list[Encoding]:
        """Encode many texts (or pairs); `padding=True` pads to the longest in the batch."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of texts; use encode for one str")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
        with no_cyclic_gc():
            firsts = self._tokenize_batch(texts)
            seconds = self._tokenize_batch(pairs) if pairs is not None else [None] * len(firsts)
            encodings = [self._post_process(a, b, add_special_tokens, max_length, truncation,
                                            False) for a, b in zip(firsts, seconds)]
        if padding:
            length = max_length if padding == "max_length" else max(map(len, encodings),
                                                                    default=0)
            for e in encodings:
                self._pad(e, length)
        return encodings

    def __call__(self, text, text_pair=None, *, max_length=None, padding=False, truncation=False,
                 add_special_tokens=True) -> dict[str, np.ndarray]:
        """Batch encoding as int32 arrays [batch, length] ready for the models.

        Like Hugging Face's tokenizers: `padding` True/"longest" or "max_length"; `truncation`
        True/"longest_first", "only_first" or "only_second" to `max_length` (default
        `model_max_length`). One str is a batch of one. Unpadded rows must have equal lengths.
        """
        single = isinstance(text, str)
        texts = [text] if single else text
        pairs = None if text_pair is None else [text_pair] if single else text_pair
        if truncation and max_length is None:
            max_length = self.model_max_length
        if padding == "max_length" and max_length is None:
            max_length = self.model_max_length
        encodings = self.encode_batch(texts, pairs, add_special_tokens=add_special_tokens,
                                      max_length=max_length, truncation=truncation,
                                      padding=padding)
        if len({len(e) for e in encodings}) > 1:
            raise ValueError("rows have different lengths: pass padding=True")
        return {name: np.array([getattr(e, field) for e in encodings], dtype=np.int32)
                    .reshape(len(encodings), -1)
                for name, field in (("input_ids", "ids"), ("token_type_ids", "type_ids"),
                                    ("attention_mask", "attention_mask"))}

    def _post_process(self, first, second, add_special_tokens, max_length, truncation, padding):
        (ids_a, offsets_a), (ids_b, offsets_b) = first, second or ([], [])
        if truncation:
            if max_length is None:
                raise ValueError("truncation needs a max_length")
            strategy = "longest_first" if truncation is True else truncation
            n_special = (3 if second is not None else 2) if add_special_tokens else 0
            if max_length < n_special:
                raise ValueError(f"max_length={max_length} leaves no room for the "
                                 f"{n_special} special tokens")
            n_a, n_b = truncated_lengths(len(ids_a), len(ids_b) if second else None,
                                         max_length - n_special, strategy)
            ids_a, offsets_a, ids_b, offsets_b = ids_a[:n_a], offsets_a[:n_a], ids_b[:n_b], \
                offsets_b[:n_b]
        if add_special_tokens:
            ids = [self.cls_id, *ids_a, self.sep_id]
            offsets = [(0, 0), *offsets_a, (0, 0)]
            type_ids = [0] * len(ids)
            if second is not None:
                ids += [*ids_b, self.sep_id]
                offsets += [*offsets_b, (0, 0)]
                type_ids += [1] * (len(ids_b) + 1)
        else:
            ids, offsets = ids_a + ids_b, offsets_a + offsets_b
            type_ids = [0] * len(ids_a) + [1] * len(ids_b)
        encoding = Encoding(ids, type_ids, list(map(self.id_to_token.__getitem__, ids)),
                            offsets, [1] * len(ids))
        if padding:
            if padding != "max_length" or max_length is None:
                raise ValueError("encode pads a single text only with padding='max_length' "
                                 "and a max_length; use encode_batch to pad to the longest")
            self._pad(encoding, max_length)
        return encoding

    def _pad(self, encoding: Encoding, length: int):
        n = length - len(encoding)
        if n > 0:
            encoding.ids += [self.pad_id] * n
            encoding.type_ids += [0] * n
            encoding.tokens += ["[PAD]"] * n
            encoding.offsets += [(0, 0)] * n
            encoding.attention_mask += [0] * n

    def decode(self, ids, skip_special_tokens=True) -> str:
        """Token ids back to text: "##" pieces are joined, spaces before punctuation cleaned up."""
        special = set(SPECIAL_TOKENS) if skip_special_tokens else set()
        tokens = [self.id_to_token[i] for i in ids if i in self.id_to_token]
        return wordpiece.decode([t for t in tokens if t not in special])


def _check_text(text):
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")


def truncated_lengths(n_a: int, n_b: int | None, budget: int, strategy: str):
    """How many tokens of A (and B) to keep so that together they fit in `budget`."""
    if strategy not in TRUNCATION_STRATEGIES:
        raise ValueError(f"truncation must be one of {TRUNCATION_STRATEGIES}, not {strategy!r}")
    if budget == 0:  # the reference empties both texts, whatever the strategy
        return 0, 0
    if n_a + (n_b or 0) <= budget:
        return n_a, n_b or 0
    if n_b is None:
        if strategy == "only_second":
            raise ValueError("truncation='only_second' needs a pair of texts")
        return budget, 0
    if strategy == "longest_first":  # trim the longer one; if both are too long, halve
        short, long_ = sorted((n_a, n_b))
        long_ = short if short > budget else max(short, budget - short)
        if short + long_ > budget:
            short, long_ = budget // 2, budget // 2 + budget % 2
        return (short, long_) if n_a <= n_b else (long_, short)
    excess = n_a + n_b - budget
    if strategy == "only_first":
        if n_a <= excess:
            raise ValueError("truncation='only_first': the first text is too short to fit")
        return n_a - excess, n_b
    if n_b <= excess:
        raise ValueError("truncation='only_second': the second text is too short to fit")
    return n_a, n_b - excess
