"""tokenizer.json in and out: the file format of the `tokenizers` package (its `Tokenizer`
serialization: `tokenizers/src/tokenizer/serialization.rs` and each component's serde).

    {"version": "1.0", "truncation": ..., "padding": ..., "added_tokens": [...],
     "normalizer": {...}, "pre_tokenizer": {...}, "post_processor": {...},
     "decoder": {...}, "model": {...}}

Each section is an object with a "type"; the tables below map the type to the class that reads
it (`from_json(section, source)` where the class has one, `source` naming the file and section
for its messages, else its constructor with the section's other keys). The byte-level and
SentencePiece classes are imported only when a file names them. Anything unknown or malformed
raises `TokenizerFileError` naming the file and the section.

The "Regex" patterns of Replace sections are Oniguruma's (Ruby syntax, as the `onig` crate
compiles them); `python_regex` rewrites them for Python's `re`.
"""

import importlib
import inspect
import json
import os
import re

from minibert.tokenization import charsets, normalize, pretokenize, template, wordpiece
from minibert.tokenization.base import AddedToken, Tokenizer
from minibert.tokenization.errors import TokenizerFileError


def _lazy(module: str, name: str):
    """A class of another tokenization module, imported when a file needs it."""
    def build(section, where):
        cls = getattr(importlib.import_module(f"minibert.tokenization.{module}"), name)
        return _construct(cls, section, where)
    return build


def _construct(cls, section: dict, where: str):
    """`cls.from_json(section, where)` (or without `where` where it takes no source), else the
    constructor with the section's keys."""
    if hasattr(cls, "from_json"):
        if "source" in inspect.signature(cls.from_json).parameters:
            return cls.from_json(section, source=where)
        return cls.from_json(section)
    return cls(**{k: v for k, v in section.items() if k != "type"})


def _replace(cls):
    """A Replace normalizer or decoder whose regex runs as its Python equivalent; it writes
    back the file's own pattern."""
    def build(section, where):
        pattern = section.get("pattern")
        if not (isinstance(pattern, dict) and isinstance(pattern.get("Regex"), str)):
            return _construct(cls, section, where)
        regex = python_regex(pattern["Regex"], f"{where}.pattern.Regex")
        replace = _construct(cls, section | {"pattern": {"Regex": regex}}, where)
        replace.pattern = pattern
        return replace
    return build


# Oniguruma's \s (Unicode White_Space), as a class body for `re` (whose \s adds U+001C-001F).
_SPACE_CLASS = charsets.regex_class(charsets.WHITESPACE)
_HEX_CLASS = "0-9a-fA-F"
# Escapes whose Oniguruma meaning `re` lacks or gives otherwise (\w, \b: Oniguruma's word
# characters include the marks): refused rather than run wrong.
_UNSUPPORTED = set("wWbBpPXRKGgkNOyY")


def python_regex(pattern: str, where: str) -> str:
    """An Oniguruma (Ruby syntax) regex as the `re` regex that matches the same: \\z -> \\Z
    (end of text), \\Z -> (?=\\n?\\Z) (end, or before a final newline), ^ and $ at every line,
    \\s / \\S White_Space, \\h / \\H hex digits, \\x{HHHH}, (?<name>...).
    TokenizerFileError naming `where` for what has no exact equivalent. (Oniguruma's syntax:
    its doc/RE; Ruby's Regexp.)"""
    def fail(what):
        raise TokenizerFileError(f"{where}: {what} in {pattern!r} is not supported (no exact "
                                 "Python equivalent of its Oniguruma meaning)")

    out, i, in_class, first = [], 0, False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            e = pattern[i + 1]
            i += 2
            if e in _UNSUPPORTED:
                fail(f"\\{e}")
            if e == "x" and pattern[i:i + 1] == "{":
                end = pattern.find("}", i)
                if end < 0:
                    fail("an unclosed \\x{")
                out.append(re.escape(chr(int(pattern[i + 1:end], 16))))
                i = end + 1
            elif e in "sh":
                body = _SPACE_CLASS if e == "s" else _HEX_CLASS
                out.append(body if in_class else f"[{body}]")
            elif e in "SH":
                if in_class:
                    fail(f"\\{e} inside a character class")
                out.append(f"[^{_SPACE_CLASS if e == 'S' else _HEX_CLASS}]")
            elif e == "z" and not in_class:
                out.append("\\Z")
            elif e == "Z" and not in_class:
                out.append("(?=\\n?\\Z)")
            else:
                out.append("\\" + e)
            continue
        if in_class:
            if c == "[" or pattern.startswith("&&", i):
                fail("a nested character class or class intersection")
            in_class = c != "]" or i == first  # "]" first in a class is itself
        elif c == "[":
            in_class, first = True, i + 1 + (pattern[i + 1:i + 2] == "^")
        elif c in "^$":
            c = f"(?m:{c})"  # Ruby: always line anchors
        elif pattern.startswith("(?<", i) and pattern[i + 3:i + 4] not in ("=", "!"):
            c, i = "(?P<", i + 2
        out.append(c)
        i += 1
    regex = "".join(out)
    try:
        re.compile(regex)
    except re.error as error:
        raise TokenizerFileError(f"{where}: {pattern!r} is not a regex Python can run: "
                                 f"{error}") from None
    return regex


def _simple(cls):
    return lambda section, where: _construct(cls, section, where)


NORMALIZERS = {
    "BertNormalizer": _simple(normalize.BertNormalizer),
    **{form: (lambda form: lambda section, where: normalize.UnicodeNormalizer(form))(form)
       for form in ("NFC", "NFD", "NFKC", "NFKD")},
    "Lowercase": lambda section, where: normalize.Lowercase(),
    "StripAccents": lambda section, where: normalize.StripAccents(),
    "Replace": _replace(normalize.Replace),
    "Strip": _simple(normalize.Strip),
    "Prepend": _simple(normalize.Prepend),
    "Sequence": lambda section, where: normalize.Sequence(
        [_read(NORMALIZERS, s, f"{where}.normalizers[{i}]", "normalizer")
         for i, s in enumerate(section.get("normalizers", []))]),
    "Precompiled": _lazy("sentencepiece", "Precompiled"),
}

PRE_TOKENIZERS = {
    "BertPreTokenizer": lambda section, where: pretokenize.BertPreTokenizer(),
    "Whitespace": lambda section, where: pretokenize.Whitespace(),
    "WhitespaceSplit": lambda section, where: pretokenize.WhitespaceSplit(),
    "Punctuation": _simple(pretokenize.Punctuation),
    "Sequence": lambda section, where: pretokenize.Sequence(
        [_read(PRE_TOKENIZERS, s, f"{where}.pretokenizers[{i}]", "pre-tokenizer")
         for i, s in enumerate(section.get("pretokenizers", []))]),
    "ByteLevel": _lazy("byte_level", "ByteLevel"),
    "Metaspace": _lazy("metaspace", "Metaspace"),
}

MODELS = {
    "BPE": ("bpe", "BPE"),
    "Unigram": ("unigram", "Unigram"),
    "WordPiece": ("wordpiece", "WordPiece"),
}

DECODERS = {
    "WordPiece": _simple(wordpiece.WordPieceDecoder),
    "ByteLevel": _lazy("byte_level", "ByteLevelDecoder"),
    "Metaspace": _lazy("metaspace", "MetaspaceDecoder"),
    "Replace": lambda section, where: _replace(
        importlib.import_module("minibert.tokenization.metaspace").Replace)(section, where),
    "ByteFallback": _lazy("metaspace", "ByteFallback"),
    "Fuse": _lazy("metaspace", "Fuse"),
    "Strip": _lazy("metaspace", "Strip"),
    "Sequence": lambda section, where: importlib.import_module(
        "minibert.tokenization.metaspace").Sequence(
        [_read(DECODERS, s, f"{where}.decoders[{i}]", "decoder")
         for i, s in enumerate(section.get("decoders", []))]),
}


def _read(table: dict, section, where: str, what: str):
    """One section through its table; None stays None."""
    if section is None:
        return None
    if not isinstance(section, dict) or "type" not in section:
        raise TokenizerFileError(f"{where}: expected an object with a \"type\", got "
                                 f"{str(section)[:80]}")
    kind = section["type"]
    if kind not in table:
        raise TokenizerFileError(f"{where}.type: unknown {what} {kind!r} "
                                 f"(known: {', '.join(sorted(table))})")
    try:
        return table[kind](section, where)
    except TokenizerFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        if str(e).startswith(where):  # the component named the file and section itself
            raise TokenizerFileError(str(e)) from None
        raise TokenizerFileError(f"{where} ({kind}): {type(e).__name__}: {e}") from None


def _read_model(section, source: str):
    where = f"{source}, model"
    if not isinstance(section, dict):
        raise TokenizerFileError(f"{where}: expected an object, got {str(section)[:80]}")
    kind = section.get("type")
    if kind is None:  # files written before "type" was required: guess from the keys
        kind = "BPE" if "merges" in section else "WordPiece" if "continuing_subword_prefix" \
            in section else "Unigram" if "unk_id" in section else None
    if kind not in MODELS:
        raise TokenizerFileError(f"{where}.type: unknown model {kind!r} "
                                 f"(known: {', '.join(sorted(MODELS))})")
    module, name = MODELS[kind]
    cls = getattr(importlib.import_module(f"minibert.tokenization.{module}"), name)
    try:
        return cls.from_json(section, source)
    except TokenizerFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        message = str(e)
        if source in message:
            raise TokenizerFileError(message) from None
        raise TokenizerFileError(f"{where} ({kind}): {message}") from None


# Special tokens by role when no tokenizer_config.json says which is which.
CONVENTIONAL_ROLES = {"[PAD]": ["pad_token"], "<pad>": ["pad_token"], "[UNK]": ["unk_token"],
                      "<unk>": ["unk_token"], "[CLS]": ["cls_token"], "[SEP]": ["sep_token"],
                      "[MASK]": ["mask_token"], "<mask>": ["mask_token"],
                      "<s>": ["bos_token", "cls_token"], "</s>": ["eos_token", "sep_token"]}


def from_dict(data: dict, source="tokenizer.json", cls=Tokenizer, **kwargs) -> Tokenizer:
    """A tokenizer from the parsed JSON of a tokenizer.json. `kwargs` go to `cls`: special
    tokens by role (else the conventional names among the special added tokens), etc."""
    if not isinstance(data, dict) or "model" not in data:
        raise TokenizerFileError(f"{source}: expected an object with a \"model\" section")
    model = _read_model(data["model"], source)
    normalizer = _read(NORMALIZERS, data.get("normalizer"), f"{source}, normalizer", "normalizer")
    pre_tokenizer = _read(PRE_TOKENIZERS, data.get("pre_tokenizer"), f"{source}, pre_tokenizer",
                          "pre-tokenizer")
    decoder = _read(DECODERS, data.get("decoder"), f"{source}, decoder", "decoder")
    try:
        post_processor = template.from_json(data.get("post_processor"),
                                            f"{source}, post_processor")
    except (KeyError, TypeError, ValueError) as e:
        message = str(e)  # (template.py's own messages name the file and section)
        raise TokenizerFileError(message if message.startswith(source) else
                                 f"{source}, post_processor: {type(e).__name__}: {e}") from None

    added = []
    for i, entry in enumerate(data.get("added_tokens") or []):
        try:
            token = AddedToken(entry["content"], entry.get("single_word", False),
                               entry.get("lstrip", False), entry.get("rstrip", False),
                               entry.get("normalized", not entry.get("special", False)),
                               entry.get("special", False))
            added.append((token, int(entry["id"])))
        except (KeyError, TypeError, ValueError) as e:
            raise TokenizerFileError(f"{source}, added_tokens[{i}]: {type(e).__name__}: {e}") \
                from None
    options = {}
    if not any(role in kwargs for role in ("pad_token", "unk_token", "cls_token")):
        for token, _ in added:
            if token.special:
                for role in CONVENTIONAL_ROLES.get(token.content, []):
                    options.setdefault(role, token.content)
    padding, truncation = data.get("padding"), data.get("truncation")
    if padding:
        options["padding_side"] = padding.get("direction", "Right").lower()
        if padding.get("pad_token"):
            options.setdefault("pad_token", padding["pad_token"])
    if truncation:
        options["truncation_side"] = truncation.get("direction", "Right").lower()
        options["model_max_length"] = truncation.get("max_length", 512)
    tokenizer = cls(model, normalizer=normalizer, pre_tokenizer=pre_tokenizer,
                    post_processor=post_processor, decoder=decoder, added_tokens=added,
                    **(options | kwargs))
    return tokenizer


def load(path, **kwargs) -> Tokenizer:
    """Read a tokenizer.json file."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise TokenizerFileError(f"{path}: not JSON ({e})") from None
    return from_dict(data, path, **kwargs)
