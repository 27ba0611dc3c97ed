"""The tokenizer API Hugging Face users type, shared by every algorithm (transformers'
`PreTrainedTokenizerFast`, over the pipeline of the `tokenizers` package):

    text -> added tokens -> normalizer -> pre_tokenizer -> model -> post_processor
                                                          decoder <- ids      (the way back)

`Tokenizer` composes the stages (tokenization/__init__.py gives the interface of each) with the
added vocabulary, the special tokens by role (`pad_token`, `cls_token`, ..., each may be absent:
only what needs a missing one fails, naming it), truncation (with `stride` and overflowing
windows), padding and the arrays the models take.

Added tokens are matched before the model, as tokenizers' AddedVocabulary does: those with
`normalized=False` (special tokens, by default) in the original text, the others in the
normalized text; longest match first; `single_word` only between non-word characters,
`lstrip`/`rstrip` take the whitespace beside them.
"""

import contextlib
import dataclasses
import gc
import inspect
import json
import logging
import os
import re

import numpy as np

from minibert.tokenization import template as templates
from minibert.tokenization.encoding import Encoding

logger = logging.getLogger(__name__)

SPECIAL_TOKEN_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                       "cls_token", "mask_token")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")


@dataclasses.dataclass(frozen=True)
class AddedToken:
    """tokenizers' AddedToken. `normalized` defaults to `not special`."""
    content: str
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool | None = None
    special: bool = False

    def __post_init__(self):
        if self.normalized is None:
            object.__setattr__(self, "normalized", not self.special)

    def __str__(self):
        return self.content

    def pattern(self) -> str:
        """The regular expression of one match, with the whitespace lstrip/rstrip take."""
        body = re.escape(self.content)
        if self.single_word:
            body = rf"(?<!\w){body}(?!\w)"
        return (r"\s*" if self.lstrip else "") + body + (r"\s*" if self.rstrip else "")

    def to_json(self, id_: int) -> dict:
        return {"id": id_} | {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _as_added(token, special: bool) -> AddedToken:
    if isinstance(token, AddedToken):
        return token if not special or token.special else dataclasses.replace(token, special=True)
    if not isinstance(token, str):
        raise TypeError(f"a token must be a str or AddedToken, not {type(token).__name__}")
    return AddedToken(token, special=special)


def _check_text(text):
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")


class Tokenizer:
    """A tokenizer from its stages; `PreTrainedTokenizerFast` semantics.

    model: `model(word) -> ((id, start, end), ...)` with `model.vocab` {token: id}.
    normalizer: `normalizer(text) -> (normalized, alignment or None)`, or None.
    pre_tokenizer: `pre_tokenizer(normalized) -> [(word, start, end)]`, optionally
        `piece_offsets(word, start, end, a, b)` when its words are not slices of the text.
    post_processor: template.py's processors, or None (A then B, type ids 0 then 1).
    decoder: `decoder(tokens) -> list[str] or str`, or None (tokens joined by spaces).
    Special tokens by role (`pad_token="[PAD]"`, ...) and `added_tokens` (str or AddedToken).
    """

    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(self, model, *, normalizer=None, pre_tokenizer=None, post_processor=None,
                 decoder=None, added_tokens=(), model_max_length=512, padding_side="right",
                 truncation_side="right", clean_up_tokenization_spaces=False,
                 model_input_names=None, additional_special_tokens=(), backend="minibert",
                 **special_tokens):
        if backend not in ("minibert", "tokenizers"):
            raise ValueError(f"backend must be 'minibert' or 'tokenizers', not {backend!r}")
        self.backend, self._rust = backend, None
        unknown = set(special_tokens) - set(SPECIAL_TOKEN_ROLES)
        if unknown:
            raise TypeError(f"unexpected arguments {sorted(unknown)}")
        self.model, self.normalizer, self.pre_tokenizer = model, normalizer, pre_tokenizer
        self.post_processor, self.decoder = post_processor, decoder
        self.model_max_length = model_max_length
        self.padding_side, self.truncation_side = padding_side, truncation_side
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        if model_input_names is not None:
            self.model_input_names = list(model_input_names)
        self._roles: dict[str, str | None] = dict.fromkeys(SPECIAL_TOKEN_ROLES)
        self.added_tokens: dict[str, tuple[int, AddedToken]] = {}
        self._vocab = dict(model.vocab)
        self._id_to_token = self._invert(self._vocab)
        self._warned_too_long = False
        self.add_tokens(list(added_tokens))
        for role, token in special_tokens.items():
            if token is not None:
                self.add_special_tokens({role: token})
        self.add_special_tokens({"additional_special_tokens": list(additional_special_tokens)})
        takes_at_start = pre_tokenizer is not None and "at_start" in \
            inspect.signature(pre_tokenizer.__call__).parameters
        self._pre_tokenize_at_start = takes_at_start
        self._piece_offsets = getattr(pre_tokenizer, "piece_offsets", None)

    @staticmethod
    def _invert(vocab: dict[str, int]) -> list[str | None]:
        out = [None] * (max(vocab.values(), default=-1) + 1)
        for token, i in vocab.items():
            out[i] = token
        return out

    def to_json(self) -> dict:
        """The tokenizer.json content (the `tokenizers` serialisation, which `tokenizers.Tokenizer` reads;
        files.py reads it back): each stage's own `to_json()` section, and the added tokens."""
        def section(component):
            return None if component is None else component.to_json()

        added = sorted((i, t) for i, t in self.added_tokens.values())
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [t.to_json(i) for i, t in added],
            "normalizer": section(self.normalizer),
            "pre_tokenizer": section(self.pre_tokenizer),
            "post_processor": section(self.post_processor),
            "decoder": section(self.decoder),
            "model": self.model.to_json(),
        }

    def save(self, path):
        """Write tokenizer.json to `path`."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=2, ensure_ascii=False)

    def save_pretrained(self, directory):
        """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json (what
        transformers' AutoTokenizer reads)."""
        os.makedirs(directory, exist_ok=True)
        self.save(os.path.join(directory, "tokenizer.json"))
        config = {"tokenizer_class": "PreTrainedTokenizerFast",
                  "model_max_length": self.model_max_length, "padding_side": self.padding_side,
                  "truncation_side": self.truncation_side,
                  "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
                  "model_input_names": self.model_input_names} | self.special_tokens_map
        for name, content in (("tokenizer_config.json", config),
                              ("special_tokens_map.json", self.special_tokens_map)):
            with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
                json.dump(content, f, indent=2, ensure_ascii=False)

    # ---- vocabulary and special tokens ---------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """The model's vocabulary, without the added tokens (as in transformers)."""
        return len(self.model.vocab)

    def __len__(self):
        return len(self._vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    @property
    def vocab(self) -> dict[str, int]:
        return self._vocab

    @property
    def id_to_token(self) -> list[str | None]:
        return self._id_to_token

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | list[int]:
        """Unknown tokens give the unk token's id (None without one), as in transformers."""
        if isinstance(tokens, str):
            return self._vocab.get(tokens, self.unk_token_id)
        return [self._vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | list[int], skip_special_tokens=False):
        if isinstance(ids, (int, np.integer)):
            return self._token_of(int(ids))
        special = self.all_special_ids if skip_special_tokens else ()
        return [self._token_of(int(i)) for i in ids if int(i) not in special]

    def _token_of(self, i: int) -> str:
        if not 0 <= i < len(self._id_to_token) or self._id_to_token[i] is None:
            raise IndexError(f"id {i} is not in the vocabulary of {len(self)} tokens")
        return self._id_to_token[i]

    def add_tokens(self, tokens, special_tokens=False) -> int:
        """Add tokens to the vocabulary (new ids after the last); returns how many were new.
        (token, id) pairs keep the given id (tokenizer.json's added_tokens)."""
        if isinstance(tokens, (str, AddedToken)):
            tokens = [tokens]
        new = 0
        for token in tokens:
            token, id_ = token if isinstance(token, tuple) else (token, None)
            if isinstance(token, str) and token in self.added_tokens:
                token = self.added_tokens[token][1]  # a name keeps the flags it was added with
            new += self._register(_as_added(token, special_tokens), id_)
        self._compile_added()
        return new

    def _register(self, token: AddedToken, id_: int | None) -> int:
        """Give `token` its id (a file's `id_`, its vocabulary id, or the next free one)."""
        if not token.content:
            raise ValueError("an added token cannot be empty")
        new = token.content not in self._vocab
        if new:
            id_ = len(self._id_to_token) if id_ is None else id_
            self._vocab[token.content] = id_
            self._id_to_token += [None] * (id_ + 1 - len(self._id_to_token))
            self._id_to_token[id_] = token.content
        self.added_tokens[token.content] = (self._vocab[token.content], token)
        return int(new)

    def add_special_tokens(self, special_tokens_dict: dict) -> int:
        """{"pad_token": "[PAD]", "additional_special_tokens": [...]}; returns new tokens."""
        new = 0
        for role, value in special_tokens_dict.items():
            if role == "additional_special_tokens":
                new += self.add_tokens(list(value), special_tokens=True)
                continue
            if role not in SPECIAL_TOKEN_ROLES:
                raise ValueError(f"unknown special token role {role!r} "
                                 f"(known: {', '.join(SPECIAL_TOKEN_ROLES)})")
            if value is None:
                self._roles[role] = None
                continue
            new += self.add_tokens([value], special_tokens=True)
            self._roles[role] = str(value)
        return new

    def _compile_added(self):
        """One regex for the added tokens matched in the original text, one for the others;
        alternatives longest first, so that the leftmost match is also the longest. (No
        capture groups: they would cost the regex its fast literal search.)"""
        def regex(tokens):
            tokens = sorted(tokens, key=lambda t: -len(t.content))
            return re.compile("|".join(t.pattern() for t in tokens)) if tokens else None

        self._rust = None  # rebuilt with the new tokens when needed
        tokens = [t for _, t in self.added_tokens.values()]
        self._outer_ids = {t.content: i for i, t in self.added_tokens.values() if not t.normalized}
        self._outer = regex([t for t in tokens if not t.normalized])
        # The others are looked for in the normalized text, themselves normalized.
        inner, self._inner_ids = [], {}
        for t in tokens:
            content = self.normalizer(t.content)[0] if self.normalizer else t.content
            if t.normalized and content:
                inner.append(dataclasses.replace(t, content=content))
                self._inner_ids[content] = self.added_tokens[t.content][0]
        self._inner = regex(inner)

    @staticmethod
    def _added_id(matched: str, ids: dict[str, int]) -> int:
        """The id of the added token a regex match is (with the whitespace lstrip/rstrip took)."""
        for content in (matched, matched.strip(), matched.lstrip(), matched.rstrip()):
            if content in ids:
                return ids[content]
        raise AssertionError(f"no added token matches {matched!r}")

    @property
    def all_special_tokens(self) -> list[str]:
        return [c for c, (_, t) in self.added_tokens.items() if t.special]

    @property
    def all_special_ids(self) -> list[int]:
        return [i for i, t in self.added_tokens.values() if t.special]

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {role: t for role, t in self._roles.items() if t is not None}

    def _special_id(self, role: str, needed_for: str) -> int:
        token = self._roles[role]
        if token is None:
            raise ValueError(f"this tokenizer has no {role}, which {needed_for} needs "
                             f"(set one with add_special_tokens({{{role!r}: ...}}))")
        return self._vocab[token]

    def __getattr__(self, name):
        """pad_token / pad_token_id and the other roles' (None when absent)."""
        role = name.removesuffix("_id")
        if role in SPECIAL_TOKEN_ROLES and "_roles" in self.__dict__:
            token = self._roles[role]
            if name == role:
                return token
            return None if token is None else self._vocab[token]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in SPECIAL_TOKEN_ROLES:
            self.add_special_tokens({name: value})
        else:
            super().__setattr__(name, value)

    # ---- stages 1-3: one text -> tokens ----------------------------------------------------

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens=False) -> list[str]:
        """The tokens of `text` (and `pair`), as strings."""
        return self.encode(text, pair, add_special_tokens=add_special_tokens).tokens

    def _sequence(self, text: str, word_index: int | None = None) -> Encoding:
        """One text through added tokens, normalizer, pre-tokenizer and model: an Encoding
        without special tokens. `word_index` fixes every word id (pre-split words)."""
        _check_text(text)
        ids, offsets, words = [], [], []
        matched = {}  # token index -> the text an added token matched, when not its content
        n_words, done = 0, 0
        if self._outer is not None:
            for match in self._outer.finditer(text):  # "[MASK]" typed in the text stays whole
                n_words = self._segment(text[done:match.start()], done, ids, offsets, words,
                                        n_words, matched)
                self._add_match(match, self._outer_ids, ids, matched)
                offsets += match.span()
                words.append(n_words)
                n_words += 1
                done = match.end()
        self._segment(text[done:], done, ids, offsets, words, n_words, matched)
        if word_index is not None:
            words = [word_index] * len(ids)
        tokens = list(map(self._id_to_token.__getitem__, ids))
        for i, token in matched.items():
            tokens[i] = token
        return Encoding.of_flat_sequence(ids, tokens, offsets, words)

    def _add_match(self, match, added_ids, ids, matched):
        """An added token's id; as in tokenizers, its token is the text matched, with the
        whitespace lstrip/rstrip took (" <mask>", whose space byte-level offset trimming then
        leaves out)."""
        if match.group() not in added_ids:
            matched[len(ids)] = match.group()
        ids.append(self._added_id(match.group(), added_ids))

    def _segment(self, text, shift, ids, offsets, words, n_words, matched) -> int:
        """Tokenize a stretch of text between added tokens; returns the next word index.
        `offsets` is flat: start, end, start, end, ... (see Encoding.offsets)."""
        if not text:
            return n_words
        normalized, alignment = self.normalizer(text) if self.normalizer else (text, None)
        if self._inner is None:
            return self._words(normalized, 0, len(normalized), shift, alignment, ids, offsets,
                               words, n_words)
        done = 0
        for match in self._inner.finditer(normalized):
            n_words = self._words(normalized, done, match.start(), shift, alignment, ids,
                                  offsets, words, n_words)
            self._add_match(match, self._inner_ids, ids, matched)
            s, e = match.span()
            offsets += _original(alignment, s, e, shift)
            words.append(n_words)
            n_words += 1
            done = e
        return self._words(normalized, done, len(normalized), shift, alignment, ids, offsets,
                           words, n_words)

    def _words(self, normalized, lo, hi, shift, alignment, ids, offsets, words, n_words) -> int:
        """Pre-tokenize normalized[lo:hi] and run the model on each word (the hot loop)."""
        part = normalized[lo:hi] if (lo, hi) != (0, len(normalized)) else normalized
        if not part:
            return n_words
        if self.pre_tokenizer is None:
            pre = [(part, 0, len(part))]
        elif self._pre_tokenize_at_start:
            pre = self.pre_tokenizer(part, at_start=shift == 0 and lo == 0)
        else:
            pre = self.pre_tokenizer(part)
        model, piece_offsets = self.model, self._piece_offsets
        add_id, add_offsets, add_word = ids.append, offsets.extend, words.append  # (flat offsets)
        if piece_offsets is None and alignment is None:  # BERT on plain text: the fast path
            at = shift + lo
            for word, start, end in pre:
                pieces = model(word)
                if len(pieces) == 1:  # most words are one piece
                    add_id(pieces[0][0])
                    add_offsets((at + start, at + end))
                    add_word(n_words)
                else:
                    for piece_id, a, b in pieces:
                        add_id(piece_id)
                        add_offsets((at + start + a, at + start + b))
                        add_word(n_words)
                n_words += 1
            return n_words
        for word, start, end in pre:
            for piece_id, a, b in model(word):
                add_id(piece_id)
                s, e = (start + a, start + b) if piece_offsets is None else \
                    piece_offsets(word, start, end, a, b)
                add_offsets(_original(alignment, lo + s, lo + e, shift))
                add_word(n_words)
            n_words += 1
        return n_words

    def _sequences(self, texts, is_split_into_words=False) -> list[Encoding]:
        if self.backend == "tokenizers":
            return self._rust_sequences(texts, is_split_into_words)
        if is_split_into_words:
            out = []
            for words in texts:
                if isinstance(words, str) or not isinstance(words, (list, tuple)):
                    raise TypeError("is_split_into_words=True takes a list of words per text, "
                                    f"not {type(words).__name__}")
                parts = [self._sequence(w, word_index=i) for i, w in enumerate(words)]
                merged = Encoding.empty()
                for p in parts:
                    merged.extend(p, type_id=0, sequence_id=0)
                out.append(merged)
            return out
        return [self._sequence(t) for t in texts]

    def _rust_sequences(self, texts, is_split_into_words) -> list[Encoding]:
        """The same stages run by the Rust `tokenizers` package (optional; parallel batches),
        from this tokenizer's own tokenizer.json."""
        if self._rust is None:
            from tokenizers import Tokenizer as RustTokenizer

            self._rust = RustTokenizer.from_str(json.dumps(self.to_json()))
        for text in texts:
            if is_split_into_words:
                for word in text:
                    _check_text(word)
            else:
                _check_text(text)
        encodings = self._rust.encode_batch(list(texts), add_special_tokens=False,
                                            is_pretokenized=is_split_into_words)
        return [Encoding.of_sequence(e.ids, e.tokens, e.offsets, e.word_ids) for e in encodings]

    # ---- post-processing -----------------------------------------------------------------

    def num_special_tokens_to_add(self, pair=False) -> int:
        return self.post_processor.num_special_tokens_to_add(pair) if self.post_processor else 0

    def _process(self, parts: list[Encoding], add_special_tokens: bool) -> Encoding:
        """The post-processor's layout; A then B (type ids 0 then 1) where it leaves them apart."""
        if self.post_processor is not None:
            parts = self.post_processor.process(parts, add_special_tokens)
        return parts[0] if len(parts) == 1 else templates.default_process(parts)

    def _post_process(self, first: Encoding, second: Encoding | None, add_special_tokens=True,
                      max_length=None, truncation=False, stride=0) -> Encoding:
        """Truncate (keeping the windows cut off in `overflowing`), then add special tokens."""
        if not truncation:
            return self._process([first] if second is None else [first, second],
                                 add_special_tokens)
        if max_length is None:
            raise ValueError("truncation needs a max_length")
        strategy = "longest_first" if truncation is True else truncation
        n_special = self.num_special_tokens_to_add(second is not None) \
            if add_special_tokens else 0
        if max_length < n_special:
            raise ValueError(f"max_length={max_length} leaves no room for the "
                             f"{n_special} special tokens")
        n_a, n_b = truncated_lengths(len(first), len(second) if second else None,
                                     max_length - n_special, strategy)
        firsts = first.truncate(n_a, stride, self.truncation_side)
        seconds = second.truncate(n_b, stride, self.truncation_side) if second is not None \
            else []
        # The order of tokenizers' Encoding::merge_with: the kept pair, then each overflowing
        # window of A with B and with B's windows, then A with B's windows.
        if second is None:
            combos = [[a] for a in firsts]
        else:
            combos = [[firsts[0], seconds[0]]]
            for a in firsts[1:]:
                combos += [[a, seconds[0]]] + [[a, b] for b in seconds[1:]]
            combos += [[firsts[0], b] for b in seconds[1:]]
        encodings = [self._process(c, add_special_tokens) for c in combos]
        keep = getattr(self.post_processor, "cut_windows_keep_type_ids", True)
        for encoding, combo in zip(encodings[1:], combos[1:] if keep else []):
            for sequence, part in enumerate(combo):
                if part is not (firsts, seconds)[sequence][0]:
                    # As in tokenizers' TemplateProcessing, a window that truncation cut off
                    # keeps its text's type id (0 for A, 1 for B) instead of the template's.
                    encoding.type_ids = [sequence if s == sequence else t for s, t in
                                         zip(encoding.sequence_ids, encoding.type_ids)]
        encodings[0].overflowing = encodings[1:]
        return encodings[0]

    def build_inputs_with_special_tokens(self, ids_a: list[int], ids_b: list[int] | None = None):
        """`[CLS] A [SEP] (B [SEP])` or whatever this tokenizer's template says, as ids."""
        return self._from_ids(ids_a, ids_b).ids

    def create_token_type_ids_from_sequences(self, ids_a, ids_b=None) -> list[int]:
        return self._from_ids(ids_a, ids_b).type_ids

    def get_special_tokens_mask(self, ids_a, ids_b=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            special = set(self.all_special_ids)
            return [int(i in special) for i in ids_a]
        return self._from_ids(ids_a, ids_b).special_tokens_mask

    def prepare_for_model(self, ids: list[int], pair_ids: list[int] | None = None,
                          add_special_tokens=True) -> "BatchEncoding":
        """Ids already tokenized -> the model inputs of one row (input_ids, token_type_ids,
        attention_mask), with `sequence_ids()` etc. on the result (transformers' name)."""
        encoding = self._from_ids(ids, pair_ids, add_special_tokens)
        return BatchEncoding({"input_ids": encoding.ids, "token_type_ids": encoding.type_ids,
                              "attention_mask": encoding.attention_mask}, [encoding])

    def _from_ids(self, ids_a, ids_b, add_special_tokens=True) -> Encoding:
        def part(ids):
            ids = [int(i) for i in ids]
            tokens = list(map(self._id_to_token.__getitem__, ids))
            return Encoding.of_sequence(ids, tokens, [(0, 0)] * len(ids), [None] * len(ids))
        parts = [part(ids_a)] + ([part(ids_b)] if ids_b is not None else [])
        return self._process(parts, add_special_tokens)

    # ---- encode ----------------------------------------------------------------------------

    def encode(self, text, pair=None, *, add_special_tokens=True, max_length=None,
               truncation=False, padding=False, stride=0, is_split_into_words=False) -> Encoding:
        """Encode one text (or pair) into an `Encoding` (tokenizers' `Tokenizer.encode`).
        `padding="max_length"` pads to `max_length`."""
        if padding and (padding != "max_length" or max_length is None):
            raise ValueError("encode pads a single text only with padding='max_length' and a "
                             "max_length; use encode_batch to pad to the longest")
        first = self._sequences([text], is_split_into_words)[0]  # (encode_batch's steps, for one)
        second = None if pair is None else self._sequences([pair], is_split_into_words)[0]
        encoding = self._post_process(first, second, add_special_tokens, max_length, truncation,
                                      stride)
        if padding:
            self.pad_encodings([encoding], padding, max_length)
        return encoding

    def encode_batch(self, texts, pairs=None, *, add_special_tokens=True, max_length=None,
                     truncation=False, padding=False, stride=0, pad_to_multiple_of=None,
                     is_split_into_words=False) -> list[Encoding]:
        """Encode many texts (or pairs, or (text, pair) tuples); `padding=True` pads to the
        longest, "max_length" to `max_length`."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of texts; use encode for one str")
        texts = list(texts)
        if pairs is None and texts and isinstance(texts[0], tuple) and not is_split_into_words:
            texts, pairs = [t[0] for t in texts], [t[1] for t in texts]
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
        with no_cyclic_gc():
            firsts = self._sequences(texts, is_split_into_words)
            seconds = self._sequences(pairs, is_split_into_words) if pairs is not None \
                else [None] * len(firsts)
            encodings = [self._post_process(a, b, add_special_tokens, max_length, truncation,
                                            stride) for a, b in zip(firsts, seconds)]
            del firsts, seconds  # freed now, they are not left for the collector to scan
        if padding:
            self.pad_encodings(encodings, padding, max_length, pad_to_multiple_of)
        return encodings

    def pad_encodings(self, encodings: list[Encoding], padding=True, max_length=None,
                      pad_to_multiple_of=None, padding_side=None):
        """Pad in place (with their overflowing windows) to the longest or to `max_length`."""
        everything = [x for e in encodings for x in [e, *e.overflowing]]
        if padding == "max_length":
            length = max_length if max_length is not None else self.model_max_length
        elif padding in (True, "longest"):
            length = max(map(len, everything), default=0)
        elif padding in (False, "do_not_pad"):
            return
        else:
            raise ValueError(f"padding must be True, 'longest', 'max_length' or False, "
                             f"not {padding!r}")
        if pad_to_multiple_of:
            length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
        if any(len(e) < length for e in everything):
            pad_id = self._special_id("pad_token", "padding")
            for e in everything:
                e.pad(length, pad_id, self.pad_token, 0, padding_side or self.padding_side)

    def __call__(self, text=None, text_pair=None, *, add_special_tokens=True, padding=False,
                 truncation=None, max_length=None, stride=0, is_split_into_words=False,
                 pad_to_multiple_of=None, padding_side=None, return_tensors=None,
                 return_token_type_ids=None, return_attention_mask=None,
                 return_overflowing_tokens=False, return_special_tokens_mask=False,
                 return_offsets_mapping=False, return_length=False) -> "BatchEncoding":
        """transformers' `tokenizer(...)`: one text, a pair, or batches of them (a list of
        texts, with `text_pair` a list, or a list of (text, pair) tuples).

        Lists (ragged when not padded) unless `return_tensors` is "np" or "jax" (int32 arrays
        [batch, length]; [batch, length, 2] for offsets). `truncation` True/"longest_first",
        "only_first", "only_second" to `max_length` (default `model_max_length`); a
        `max_length` without `padding` or `truncation` truncates, as in transformers.
        Raises ValueError when padding needs a pad token the tokenizer lacks."""
        batched = isinstance(text, (list, tuple)) and not (
            is_split_into_words and (not text or isinstance(text[0], str)))
        texts = list(text) if batched else [text]
        if text_pair is not None and (batched or text_pair != ""):  # ("" is no pair, as there)
            pairs = list(text_pair) if batched else [text_pair]
        elif batched and texts and isinstance(texts[0], (tuple, list)) and \
                not is_split_into_words:
            texts, pairs = [t[0] for t in texts], [t[1] for t in texts]
        else:
            pairs = None
        if truncation is None:
            truncation = max_length is not None and not padding
        if truncation and max_length is None:
            max_length = self.model_max_length
        encodings = self.encode_batch(texts, pairs, add_special_tokens=add_special_tokens,
                                      max_length=max_length, truncation=truncation,
                                      stride=stride, is_split_into_words=is_split_into_words)
        if not truncation:
            self._warn_if_too_long(encodings)
        self.pad_encodings(encodings, padding, max_length, pad_to_multiple_of, padding_side)

        rows, sample = [], []
        for i, e in enumerate(encodings):
            for x in [e, *e.overflowing] if return_overflowing_tokens else [e]:
                rows.append(x)
                sample.append(i)
        names = self.model_input_names
        fields = {"input_ids": "ids"}
        if return_token_type_ids or return_token_type_ids is None and "token_type_ids" in names:
            fields["token_type_ids"] = "type_ids"
        if return_attention_mask or return_attention_mask is None and "attention_mask" in names:
            fields["attention_mask"] = "attention_mask"
        if return_special_tokens_mask:
            fields["special_tokens_mask"] = "special_tokens_mask"
        if return_offsets_mapping:
            fields["offset_mapping"] = "offsets"
        data = {name: [getattr(e, field) for e in rows] for name, field in fields.items()}
        if return_length:
            data["length"] = [len(e) for e in rows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample
        if return_tensors is not None:
            data = {name: _tensor(values, return_tensors) for name, values in data.items()}
        elif not batched and not return_overflowing_tokens:  # (transformers leaves `length` a list)
            data = {name: values[0] if values and isinstance(values[0], list) else values
                    for name, values in data.items()}
        return BatchEncoding(data, rows)

    def _warn_if_too_long(self, encodings):
        longest = max((len(e) for e in encodings), default=0)
        if longest > self.model_max_length and not self._warned_too_long:
            logger.warning(
                "Token indices sequence length is longer than the specified maximum sequence "
                f"length for this model ({longest} > {self.model_max_length}). Running this "
                "sequence through the model will result in indexing errors")
            self._warned_too_long = True

    # ---- decode ----------------------------------------------------------------------------

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=None) -> str:
        """Ids back to text through the decoder (`skip_special_tokens` drops the added special
        tokens; `clean_up_tokenization_spaces` removes spaces before punctuation, as
        transformers' `clean_up_tokenization`)."""
        if isinstance(ids, (int, np.integer)):
            ids = [ids]
        tokens = self.convert_ids_to_tokens([int(i) for i in np.asarray(ids).reshape(-1)],
                                            skip_special_tokens=skip_special_tokens)
        text = self.convert_tokens_to_string(tokens)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None \
            else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """The decoder's text (its strings joined), or the tokens joined by spaces without one."""
        if self.decoder is None:
            return " ".join(tokens)
        result = self.decoder(list(tokens))
        return result if isinstance(result, str) else "".join(result)

    def batch_decode(self, sequences, skip_special_tokens=False,
                     clean_up_tokenization_spaces=None) -> list[str]:
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces)
                for s in sequences]

    # ---- word boundaries -----------------------------------------------------------------

    def word_starts(self, ids) -> np.ndarray:
        """Bool array shaped like `ids`: True where a token begins a word (the model's
        `is_word_start`), at special tokens, and right after one (whole-word masking)."""
        table = self._word_start_table()
        ids = np.asarray(ids)
        special = np.isin(ids, self.all_special_ids)
        starts = table[ids] | special
        starts[..., 1:] |= special[..., :-1]
        if starts.shape[-1:] != (0,):
            starts[..., 0] = True
        return starts

    def _word_start_table(self) -> np.ndarray:
        if getattr(self, "_word_start_cache", None) is None or \
                len(self._word_start_cache) != len(self._id_to_token):
            is_start = self.model.is_word_start
            self._word_start_cache = np.array(
                [t is None or t in self.added_tokens or is_start(t) for t in self._id_to_token],
                bool)
        return self._word_start_cache


def _original(alignment, s, e, shift) -> tuple[int, int]:
    """Span [s, e) of the normalized text -> original characters (first and last behind it;
    -1, a character inserted before the first, is the empty span at 0)."""
    if alignment is None:
        return shift + s, shift + e
    if e > s:
        return shift + max(alignment[s], 0), shift + alignment[e - 1] + 1
    at = shift + (max(alignment[s], 0) if s < len(alignment) else
                  (alignment[-1] + 1 if alignment else 0))
    return at, at


def _tensor(values, kind):
    try:
        array = np.array(values, dtype=np.int32)
    except ValueError:
        raise ValueError("rows have different lengths: pass padding=True (or truncation) to "
                         f"get return_tensors={kind!r}") from None
    if kind == "np":
        return array
    if kind == "jax":
        import jax.numpy as jnp
        return jnp.asarray(array)
    raise ValueError(f"return_tensors must be 'np' or 'jax', not {kind!r}")


class BatchEncoding(dict):
    """transformers' BatchEncoding: a dict of the model inputs (also as attributes), with the
    encodings behind it for `word_ids`, `sequence_ids`, `char_to_token`, ..."""

    def __init__(self, data: dict, encodings: list[Encoding]):
        super().__init__(data)
        self.encodings = encodings

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def tokens(self, batch_index=0) -> list[str]:
        return self.encodings[batch_index].tokens

    def word_ids(self, batch_index=0) -> list[int | None]:
        return self.encodings[batch_index].word_ids

    def sequence_ids(self, batch_index=0) -> list[int | None]:
        return self.encodings[batch_index].sequence_ids

    def char_to_token(self, batch_or_char_index: int, char_index: int | None = None,
                      sequence_index=0) -> int | None:
        """char_to_token(char) for a single text, char_to_token(batch_index, char) otherwise."""
        if char_index is None:
            batch_or_char_index, char_index = 0, batch_or_char_index
        return self.encodings[batch_or_char_index].char_to_token(char_index, sequence_index)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None):
        if token_index is None:
            batch_or_token_index, token_index = 0, batch_or_token_index
        return self.encodings[batch_or_token_index].token_to_word(token_index)


_CLEANUP = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
            (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]


def clean_up_tokenization(text: str) -> str:
    """transformers' `clean_up_tokenization`: no space before . ? ! , and English clitics."""
    for dirty, clean in _CLEANUP:
        text = text.replace(dirty, clean)
    return text


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
