"""Reading a SentencePiece `.model` file (Kudo & Richardson 2018; ALBERT's `spiece.model`,
DeBERTa-v3's `spm.model`): a `ModelProto` protobuf (sentencepiece_model.proto), parsed with
the `sentencepiece` package's generated module. Reference for the pieces of a `tokenizers`
pipeline that encode like `SentencePieceProcessor`: transformers' `convert_slow_tokenizer.py`
(`SpmConverter.build_tokenizer_from_spm_proto`).

What the file holds, and what it becomes:

* `pieces` [(piece, score, type)] -> the Unigram model (unigram.py); `trainer_spec.unk_id`
  and `trainer_spec.byte_fallback` (the `<0xXX>` pieces, type BYTE) as they are.
* `normalizer_spec`: `name` and `precompiled_charsmap` (the normalization rules, a darts-clone
  double-array trie: "nmt_nfkc" is NFKC plus NMT-specific whitespace/control rules),
  `remove_extra_whitespaces` (strip and collapse runs of spaces), `escape_whitespaces`
  (" " -> "▁") and `add_dummy_prefix` (a "▁" before the text) -> the normalizer and the
  Metaspace pre-tokenizer (metaspace.py; no split: SentencePiece runs Viterbi on the whole
  text).
* CONTROL (`<s>`, `[CLS]`...) and USER_DEFINED pieces -> added tokens; [CLS] and [SEP]
  among them -> BERT's template.

transformers builds other pipelines from the same file for some classes (tokenizer_config's
`tokenizer_class`): AlbertTokenizer lower-cases and strips accents and splits on whitespace;
DebertaV2Tokenizer (DeBERTa-v3 ships only spm.model) skips the precompiled rules and byte
fallback. `to_json(tokenizer_class, **config)` writes those (transformers 5's
`models/albert/tokenization_albert.py`, `models/deberta_v2/tokenization_deberta_v2.py`).

`Precompiled` runs the rules the way `tokenizers` does (its `normalizers/precompiled.rs` and
the `spm_precompiled` crate), which differs from SentencePiece's own longest match: per
extended grapheme cluster, a cluster of under 6 UTF-8 bytes is replaced by the rule of its
*shortest* matching prefix if there is one, else each character by its own rule.
"""

import base64
import itertools
import math
import re
import struct

from minibert.tokenization.errors import TokenizerFileError
from minibert.tokenization.files import from_dict
from minibert.tokenization.metaspace import (ByteFallback, Fuse, Metaspace, Replace, Sequence,
                                             Strip)
from minibert.tokenization.unigram import Unigram

# sentencepiece_model.proto, ModelProto.SentencePiece.Type and TrainerSpec.ModelType.
UNKNOWN, CONTROL, USER_DEFINED = 2, 3, 4
UNIGRAM = 1


def read_proto(path):
    """The ModelProto of `path`; TokenizerFileError (a ValueError) naming the file if it is not
    a whole one."""
    from google.protobuf.message import DecodeError
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as f:
        data = f.read()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise TokenizerFileError(f"{path}: not a SentencePiece model (truncated or corrupt "
                                 f"protobuf: {error})") from None
    # A file cut at a field boundary still parses: the specs come after the pieces.
    missing = [name for name in ("trainer_spec", "normalizer_spec") if not proto.HasField(name)]
    if not proto.pieces or missing:
        raise TokenizerFileError(f"{path}: not a whole SentencePiece model (truncated?): "
                                 f"{len(proto.pieces)} pieces, missing "
                                 f"{', '.join(missing) or 'nothing'}")
    return proto


class SentencePieceModel:
    """A `.model` file read: `model` (Unigram), the normalizer settings, and the
    tokenizer.json sections (`to_json`) that encode like `SentencePieceProcessor`.

    `legacy` as transformers: True prepends "▁" to every segment between added tokens, False
    only to the first. Raises TokenizerFileError (a ValueError) naming the file on a
    truncated or corrupt file, a model that is not Unigram, a non-finite score or a bad
    unk_id.
    """

    def __init__(self, path, legacy=True):
        proto = read_proto(path)
        self.path = str(path)
        trainer, normalizer = proto.trainer_spec, proto.normalizer_spec
        if trainer.model_type != UNIGRAM:
            kind = trainer.DESCRIPTOR.fields_by_name["model_type"].enum_type \
                .values_by_number[trainer.model_type].name
            raise TokenizerFileError(f"{path}: trainer_spec.model_type is {kind}, only UNIGRAM "
                                     "models are read here")
        for i, piece in enumerate(proto.pieces):
            if not math.isfinite(piece.score):
                raise TokenizerFileError(f"{path}: pieces[{i}] {piece.piece!r} has a non-finite "
                                         f"score {piece.score}")
        if not 0 <= trainer.unk_id < len(proto.pieces) \
                or proto.pieces[trainer.unk_id].type != UNKNOWN:
            raise TokenizerFileError(f"{path}: trainer_spec.unk_id {trainer.unk_id} is not the "
                                     "id of an UNKNOWN piece")
        self.pieces = [(p.piece, p.score, p.type) for p in proto.pieces]
        self.byte_fallback = trainer.byte_fallback
        self.model = Unigram([(p, s) for p, s, _ in self.pieces], trainer.unk_id,
                             trainer.byte_fallback)
        self.normalizer_name = normalizer.name
        self.precompiled_charsmap = normalizer.precompiled_charsmap
        self.add_dummy_prefix = normalizer.add_dummy_prefix
        self.remove_extra_whitespaces = normalizer.remove_extra_whitespaces
        self.escape_whitespaces = normalizer.escape_whitespaces
        self.legacy = legacy

    def normalizer_json(self) -> dict:
        """tokenizer.json "normalizer" section, in SentencePiece's order."""
        steps = []
        if self.precompiled_charsmap:
            steps.append({"type": "Precompiled", "precompiled_charsmap":
                          base64.b64encode(self.precompiled_charsmap).decode("ascii")})
        if self.remove_extra_whitespaces:  # only " ": SentencePiece leaves newlines alone
            steps += [_replace_regex(r"\A +| +\z", ""), _replace_regex(" {2,}", " ")]
        if self.escape_whitespaces:
            steps.append({"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"})
        if self.add_dummy_prefix and self.legacy:
            # SentencePiece adds the prefix even to a text that starts with "▁"; Metaspace not.
            steps.append(_replace_regex("\\A\u2581", "\u2581\u2581"))
        return {"type": "Sequence", "normalizers": steps}

    def pre_tokenizer(self) -> Metaspace | None:
        """The dummy prefix; no split (one lattice for the whole text, as SentencePiece)."""
        if not self.add_dummy_prefix:
            return None
        return Metaspace(prepend_scheme="always" if self.legacy else "first", split=False)

    def decoder(self) -> Sequence:
        steps = [Replace("\u2581", " ")] + [ByteFallback()] * self.byte_fallback
        if self.add_dummy_prefix:
            steps += [Fuse(), Strip(" ", 1, 0)]
        elif self.byte_fallback:
            steps.append(Fuse())
        return Sequence(steps)

    def added_tokens(self) -> list[dict]:
        """CONTROL pieces (special) and USER_DEFINED ones, as tokenizer.json added_tokens."""
        return [{"id": i, "content": piece, "single_word": False, "lstrip": False,
                 "rstrip": False, "normalized": False, "special": kind == CONTROL}
                for i, (piece, _, kind) in enumerate(self.pieces)
                if kind in (CONTROL, USER_DEFINED)]

    def post_processor_json(self) -> dict | None:
        """BERT's layout `[CLS] A [SEP] B [SEP]` (ALBERT, DeBERTa-v3) when [CLS] and [SEP] are
        control pieces; else none."""
        ids = {piece: i for i, (piece, _, kind) in enumerate(self.pieces) if kind == CONTROL}
        if "[CLS]" not in ids or "[SEP]" not in ids:
            return None
        return _bert_template(("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"]))

    def to_json(self, tokenizer_class: str | None = None, **config) -> dict:
        """A whole tokenizer.json document: by default the pipeline that encodes like
        `SentencePieceProcessor`; for `tokenizer_class` "AlbertTokenizer" or
        "DebertaV2Tokenizer" (tokenizer_config.json's, with its `config` options and special
        tokens), the one transformers 5 builds for that class from the same file."""
        flavor = (tokenizer_class or "").removesuffix("Fast")
        if flavor in FLAVORS:
            return FLAVORS[flavor](self, **config)
        pre = self.pre_tokenizer()
        return {"version": "1.0", "truncation": None, "padding": None,
                "added_tokens": self.added_tokens(), "normalizer": self.normalizer_json(),
                "pre_tokenizer": pre.to_json() if pre else None,
                "post_processor": self.post_processor_json(),
                "decoder": self.decoder().to_json(), "model": self.model.to_json()}

    def _class_document(self, normalizers, pre_tokenizers, prepend_scheme, special_tokens,
                        template_names) -> dict:
        """transformers 5's AlbertTokenizer / DebertaV2Tokenizer layout: no byte fallback,
        Metaspace decoder; special added tokens: the control pieces and the token of each role
        (`special_tokens` {role: added-token entry}), a token that is not a piece appended
        after the vocabulary in role order, as transformers appends it (DeBERTa-v3's [MASK]);
        BERT's template over the cls and sep tokens, named `template_names` in it."""
        model = self.model.to_json() | {"byte_fallback": False}
        ids, appended = dict(self.model.vocab), itertools.count(len(self.pieces))
        entries = {i: _added(piece) for i, (piece, _, kind) in enumerate(self.pieces)
                   if kind == CONTROL}
        for entry in special_tokens.values():
            if entry["content"] not in ids:
                ids[entry["content"]] = next(appended)
            entries[ids[entry["content"]]] = entry
        added = [{"id": i} | entries[i] for i in sorted(entries)]
        cls, sep = (special_tokens[role]["content"] for role in ("cls_token", "sep_token"))
        metaspace = Metaspace(prepend_scheme=prepend_scheme).to_json()
        return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
                "normalizer": {"type": "Sequence", "normalizers": normalizers},
                "pre_tokenizer": {"type": "Sequence",
                                  "pretokenizers": pre_tokenizers + [metaspace]},
                "post_processor": _bert_template((template_names[0], ids[cls]),
                                                 (template_names[1], ids[sep])),
                "decoder": metaspace, "model": model}


def _added(content: str, flags: dict | None = None) -> dict:
    """A special added token as tokenizer.json writes it (`flags` from tokenizer_config.json's
    AddedToken objects)."""
    return {"content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True} | {
        k: v for k, v in (flags or {}).items()
        if k in ("single_word", "lstrip", "rstrip", "normalized")}


def _bert_template(cls: tuple[str, int], sep: tuple[str, int]) -> dict:
    """TemplateProcessing "[CLS] $A [SEP]" / "[CLS] $A [SEP] $B:1 [SEP]:1"; (name, id) each."""
    def items(*names_and_types):
        return [{"Sequence": {"id": n, "type_id": t}} if n in "AB" else
                {"SpecialToken": {"id": n, "type_id": t}} for n, t in names_and_types]
    return {"type": "TemplateProcessing",
            "single": items((cls[0], 0), ("A", 0), (sep[0], 0)),
            "pair": items((cls[0], 0), ("A", 0), (sep[0], 0), ("B", 1), (sep[0], 1)),
            "special_tokens": {name: {"id": name, "ids": [i], "tokens": [name]}
                               for name, i in (cls, sep)}}


# transformers 5's default special tokens of each class, in its order of roles.
CLASS_SPECIAL_TOKENS = {
    "AlbertTokenizer": {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "<unk>",
                        "sep_token": "[SEP]", "pad_token": "<pad>", "cls_token": "[CLS]",
                        "mask_token": "[MASK]"},
    "DebertaV2Tokenizer": {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]",
                           "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                           "mask_token": "[MASK]"},
}


def class_special_tokens(flavor: str, config: dict) -> dict[str, dict]:
    """{role: added-token entry}: the class's defaults, overridden by tokenizer_config.json's
    (a str, or an AddedToken object with its flags)."""
    out = {}
    for role, default in CLASS_SPECIAL_TOKENS[flavor].items():
        value = config.get(role, default)
        if value is None:
            continue
        out[role] = _added(value["content"], value) if isinstance(value, dict) \
            else _added(str(value))
    return out


def _albert(sp: SentencePieceModel, do_lower_case=True, keep_accents=False,
            add_prefix_space=True, **config) -> dict:
    """transformers' AlbertTokenizer: ``/'' -> ", NFKD + no accents, lower case, the
    precompiled rules; split on whitespace, then Metaspace."""
    steps = [{"type": "Replace", "pattern": {"String": q}, "content": '"'} for q in ("``", "''")]
    steps += [{"type": "NFKD"}, {"type": "StripAccents"}] * (not keep_accents)
    steps += [{"type": "Lowercase"}] * do_lower_case
    if sp.precompiled_charsmap:
        steps.append(Precompiled(sp.precompiled_charsmap).to_json())
    return sp._class_document(steps, [{"type": "WhitespaceSplit"}],
                              "always" if add_prefix_space else "never",
                              class_special_tokens("AlbertTokenizer", config),
                              ("[CLS]", "[SEP]"))


def _deberta_v2(sp: SentencePieceModel, do_lower_case=False, split_by_punct=False,
                add_prefix_space=True, **config) -> dict:
    """transformers' DebertaV2Tokenizer: lower case, whitespace runs and \n \r \t -> " ",
    NFC, strip on the right (no precompiled rules); punctuation split, then Metaspace."""
    steps = [{"type": "Lowercase"}] * do_lower_case + [
        _replace_regex(r"\s{2,}|[\n\r\t]", " "), {"type": "NFC"},
        {"type": "Strip", "strip_left": False, "strip_right": True}]
    pre = [{"type": "Punctuation", "behavior": "Isolated"}] * split_by_punct
    special_tokens = class_special_tokens("DebertaV2Tokenizer", config)
    return sp._class_document(steps, pre, "always" if add_prefix_space else "first",
                              special_tokens, [special_tokens[role]["content"]
                                               for role in ("cls_token", "sep_token")])


FLAVORS = {"AlbertTokenizer": _albert, "DebertaV2Tokenizer": _deberta_v2}


def from_file(path, config: dict | None = None, legacy=True, **options):
    """The tokenizer (base.py's Tokenizer, through files.py) of a SentencePiece .model file.
    `config`: tokenizer_config.json's content (its `tokenizer_class` picks transformers'
    pipeline for that class, see `to_json`, with the class's special tokens by role);
    `options` go to the Tokenizer (special tokens by role, model_max_length...).
    TokenizerFileError naming the file if it is not a whole Unigram model."""
    config = dict(config or {})
    flavor = (config.pop("tokenizer_class", None) or "").removesuffix("Fast")
    document = SentencePieceModel(path, legacy).to_json(flavor, **config)
    if flavor in CLASS_SPECIAL_TOKENS:
        options = {role: entry["content"] for role, entry in
                   class_special_tokens(flavor, config).items()} | options
    return from_dict(document, str(path), **options)


def _replace_regex(pattern: str, content: str) -> dict:
    return {"type": "Replace", "pattern": {"Regex": pattern}, "content": content}


class Precompiled:
    """SentencePiece's compiled normalization rules: `normalizer(text) -> (normalized,
    alignment | None)`, alignment[i] the index in `text` of the character behind
    normalized[i]. ValueError if the charsmap is not one.

    The charsmap is [uint32 n][n bytes: darts-clone double array][NUL-separated replacement
    strings]; a trie leaf's value is the offset of its replacement.
    """

    def __init__(self, charsmap: bytes):
        if len(charsmap) < 4 or 4 + struct.unpack_from("<I", charsmap)[0] > len(charsmap) \
                or struct.unpack_from("<I", charsmap)[0] % 4:
            raise ValueError("precompiled_charsmap: not a SentencePiece charsmap (bad trie size)")
        size = struct.unpack_from("<I", charsmap)[0]
        self.charsmap = charsmap
        self.units = struct.unpack_from(f"<{size // 4}I", charsmap, 4)
        self.replacements = charsmap[4 + size:]
        self._cache: dict[str, str | None] = {}
        # Fast path: ASCII text whose characters have no rule is left alone (its grapheme
        # clusters are single characters, but for "\r\n").
        ruled = [chr(c) for c in range(128) if self.transform(chr(c)) is not None] + ["\r"]
        self._ascii_ruled = re.compile("[" + re.escape("".join(ruled)) + "]")

    def _first_prefix_value(self, key: bytes) -> int | None:
        """Value of the shortest prefix of `key` in the trie (darts-clone units: offset =
        (u >> 10) << ((u & 512) >> 6), has_leaf = u >> 8 & 1, label = u & (2^31 | 255))."""
        units, node = self.units, 0
        node ^= (units[0] >> 10) << ((units[0] & 512) >> 6)
        for c in key:
            if c == 0 or node ^ c >= len(units):
                return None
            node ^= c
            unit = units[node]
            if unit & 0x800000FF != c:
                return None
            node ^= (unit >> 10) << ((unit & 512) >> 6)
            if unit >> 8 & 1:
                return units[node] & 0x7FFFFFFF
        return None

    def transform(self, chunk: str) -> str | None:
        """The replacement of `chunk` by its shortest matching prefix's rule, or None."""
        if chunk not in self._cache:
            value = self._first_prefix_value(chunk.encode("utf-8"))
            self._cache[chunk] = None if value is None else \
                self.replacements[value:self.replacements.index(b"\0", value)].decode("utf-8")
        return self._cache[chunk]

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        import regex  # extended grapheme clusters (\X), as Rust's unicode-segmentation

        if text.isascii() and not self._ascii_ruled.search(text):
            return text, None
        edits, modified = [], False  # (char, change) as precompiled.rs: +1 inserted, -k removed
        for cluster in regex.findall(r"\X", text):
            norm = self.transform(cluster) if len(cluster.encode("utf-8")) < 6 else None
            if norm is not None:
                modified = True
                _replace(edits, cluster, norm)
                continue
            for c in cluster:
                norm = self.transform(c)
                if norm is None:
                    edits.append((c, 0))
                else:
                    modified = True
                    _replace(edits, c, norm)
        if not modified:
            return text, None
        out, alignment, done = [], [], 0  # done: input characters consumed
        for c, change in edits:  # NormalizedString::transform
            if change > 0:
                alignment.append(max(done - 1, 0))
            else:
                alignment.append(done)
                done += 1 - change
            out.append(c)
        return "".join(out), alignment

    def to_json(self) -> dict:
        return {"type": "Precompiled",
                "precompiled_charsmap": base64.b64encode(self.charsmap).decode("ascii")}

    @classmethod
    def from_json(cls, section: dict) -> "Precompiled":
        return cls(base64.b64decode(section["precompiled_charsmap"], validate=True))


def _replace(edits: list, old: str, new: str):
    """precompiled.rs `replace`: new characters as changes 0, the extra ones +1, or the last
    one carrying the removal of the missing ones (onto the previous edit if `new` is empty)."""
    diff = len(new) - len(old)
    edits += [(c, 0) for c in new]
    if diff > 0:
        edits[len(edits) - diff:] = [(c, 1) for c, _ in edits[len(edits) - diff:]]
    elif diff < 0 and edits:
        c, change = edits[-1]
        edits[-1] = (c, change + diff)
