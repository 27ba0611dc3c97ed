"""SentencePiece's whitespace convention: the Metaspace pre-tokenizer and the decoders of
SentencePiece-style tokenizers (Kudo & Richardson 2018, §3.1 "Lossless tokenization": a space
is kept as the meta symbol "▁" (U+2581), so decoding is concatenation plus "▁" -> " ").
Reference: `tokenizers/src/pre_tokenizers/metaspace.rs` and `tokenizers/src/decoders/`
(`byte_fallback.rs`, `fuse.rs`, `strip.rs`, `sequence.rs`; `normalizers/replace.rs` for the
Replace decoder).

    "Hello  world" -> "▁Hello" (0, 5), "▁" (5, 6), "▁world" (6, 12)

Every " " becomes "▁"; a "▁" is prepended to a text that does not start with one
(`prepend_scheme` "always"; "first": only to the segment that begins the text; "never");
with `split` the text is cut before each "▁". A "▁" that replaced a space has that space's
offsets; a prepended "▁" has those of the first character (the reference aligns the inserted
character with the one it was inserted before).

Decoders map a list of tokens to a list of strings (the reference's `decode_chain`), so they
chain; `decode(decoders, tokens)` joins the result.
"""

import re

SPACE = "\u2581"
PREPEND_SCHEMES = ("always", "first", "never")


class Metaspace:
    """Pre-tokenizer: `pre(normalized, at_start=True)` -> [(word, start, end)]; `at_start` is
    False for a segment that does not begin the text (after an added token), which
    prepend_scheme "first" leaves alone."""

    def __init__(self, replacement=SPACE, prepend_scheme="always", split=True):
        if prepend_scheme not in PREPEND_SCHEMES:
            raise ValueError(f"prepend_scheme must be one of {PREPEND_SCHEMES}, "
                             f"not {prepend_scheme!r}")
        if len(replacement) != 1:
            raise ValueError(f"replacement must be one character, not {replacement!r}")
        self.replacement = replacement
        self.prepend_scheme = prepend_scheme
        self.split = split

    def __call__(self, normalized: str, at_start=True) -> list[tuple[str, int, int]]:
        if not normalized:
            return []
        text = normalized.replace(" ", self.replacement)
        prepend = not text.startswith(self.replacement) and (
            self.prepend_scheme == "always" or self.prepend_scheme == "first" and at_start)
        if not self.split:
            return [((self.replacement if prepend else "") + text, 0, len(text))]
        starts = [i for i, c in enumerate(text) if c == self.replacement and i > 0]
        words = [(text[a:b], a, b) for a, b in zip([0] + starts, starts + [len(text)])]
        if prepend:
            word, a, b = words[0]
            words[0] = (self.replacement + word, a, b)
        return words

    def piece_offsets(self, word: str, start: int, end: int, a: int, b: int) -> tuple[int, int]:
        """Span in the normalized text of word[a:b]; a prepended "▁" (the word is one
        character longer than its span) shares the first character's span."""
        if len(word) == end - start:
            return start + a, start + b
        return start + max(a - 1, 0), start + max(b - 1, 1)

    def to_json(self) -> dict:
        return {"type": "Metaspace", "replacement": self.replacement,
                "prepend_scheme": self.prepend_scheme, "split": self.split}

    @classmethod
    def from_json(cls, section: dict, source="tokenizer.json, pre_tokenizer") -> "Metaspace":
        """Older files have `add_prefix_space` instead of `prepend_scheme` (false = "never").
        ValueError naming `source` (file and section) when the two disagree."""
        scheme = section.get("prepend_scheme", "always")
        if section.get("add_prefix_space") is False:
            if scheme != "never" and "prepend_scheme" in section:
                raise ValueError(f"{source}: add_prefix_space false does not match "
                                 f"prepend_scheme {scheme!r}")
            scheme = "never"
        return cls(section.get("replacement", SPACE), scheme, section.get("split", True))


class MetaspaceDecoder:
    """"▁" -> " ", except in the first token when a "▁" was prepended (then dropped)."""

    def __init__(self, replacement=SPACE, prepend_scheme="always", split=True):
        self.replacement, self.prepend_scheme, self.split = replacement, prepend_scheme, split

    def __call__(self, tokens: list[str]) -> list[str]:
        return [t.replace(self.replacement, "" if i == 0 and self.prepend_scheme != "never"
                          else " ") for i, t in enumerate(tokens)]

    def to_json(self) -> dict:
        return Metaspace(self.replacement, self.prepend_scheme, self.split).to_json()

    @classmethod
    def from_json(cls, section: dict, source="tokenizer.json, decoder") -> "MetaspaceDecoder":
        pre = Metaspace.from_json(section, source)
        return cls(pre.replacement, pre.prepend_scheme, pre.split)


class Replace:
    """Replace `pattern` by `content` in every token. Pattern {"String": s} or {"Regex": r};
    the regex runs on Python's `re` (the reference uses Oniguruma: same on common patterns)."""

    def __init__(self, pattern: str | dict, content: str):
        self.pattern = {"String": pattern} if isinstance(pattern, str) else pattern
        (kind, value), = self.pattern.items()
        self.content = content
        self._regex = re.compile(re.escape(value) if kind == "String" else value)

    def __call__(self, tokens: list[str]) -> list[str]:
        return [self._regex.sub(self.content.replace("\\", "\\\\"), t) for t in tokens]

    def to_json(self) -> dict:
        return {"type": "Replace", "pattern": self.pattern, "content": self.content}

    @classmethod
    def from_json(cls, section: dict) -> "Replace":
        return cls(section["pattern"], section["content"])


_BYTE = re.compile(r"<0x(\+[0-9A-Fa-f]|[0-9A-Fa-f]{2})>")  # Rust's u8::from_str_radix(_, 16)


class ByteFallback:
    """Runs of "<0xXX>" tokens -> the UTF-8 text of their bytes, or one "�" per byte when the
    bytes are not valid UTF-8."""

    def __call__(self, tokens: list[str]) -> list[str]:
        out, run = [], bytearray()
        for token in tokens + [None]:
            match = _BYTE.fullmatch(token) if token is not None else None
            if match:
                run.append(int(match[1], 16))
                continue
            if run:
                try:
                    out.append(run.decode("utf-8"))
                except UnicodeDecodeError:
                    out += ["\ufffd"] * len(run)
                run = bytearray()
            if token is not None:
                out.append(token)
        return out

    def to_json(self) -> dict:
        return {"type": "ByteFallback"}

    @classmethod
    def from_json(cls, section: dict) -> "ByteFallback":
        return cls()


class Fuse:
    """All tokens -> one string."""

    def __call__(self, tokens: list[str]) -> list[str]:
        return ["".join(tokens)]

    def to_json(self) -> dict:
        return {"type": "Fuse"}

    @classmethod
    def from_json(cls, section: dict) -> "Fuse":
        return cls()


class Strip:
    """Remove up to `start` leading and `stop` trailing `content` characters of each token."""

    def __init__(self, content=" ", start=0, stop=0):
        self.content, self.start, self.stop = content, start, stop

    def __call__(self, tokens: list[str]) -> list[str]:
        out = []
        for token in tokens:
            a = 0
            while a < min(self.start, len(token)) and token[a] == self.content:
                a += 1
            b = len(token)
            while len(token) - b < self.stop and b > 0 and token[b - 1] == self.content:
                b -= 1
            out.append(token[a:max(a, b)])
        return out

    def to_json(self) -> dict:
        return {"type": "Strip", "content": self.content, "start": self.start, "stop": self.stop}

    @classmethod
    def from_json(cls, section: dict) -> "Strip":
        return cls(section["content"], section["start"], section["stop"])


class Sequence:
    """Decoders applied one after the other (each gets the previous one's list)."""

    def __init__(self, decoders: list):
        self.decoders = decoders

    def __call__(self, tokens: list[str]) -> list[str]:
        for decoder in self.decoders:
            tokens = decoder(tokens)
        return tokens

    def to_json(self) -> dict:
        return {"type": "Sequence", "decoders": [d.to_json() for d in self.decoders]}


DECODERS = {"Metaspace": MetaspaceDecoder, "Replace": Replace, "ByteFallback": ByteFallback,
            "Fuse": Fuse, "Strip": Strip}


def decoder_from_json(section: dict):
    """A decoder (or Sequence of them) of this module from its tokenizer.json section."""
    if section["type"] == "Sequence":
        return Sequence([decoder_from_json(s) for s in section["decoders"]])
    return DECODERS[section["type"]].from_json(section)


def decode(decoder, tokens: list[str]) -> str:
    """The text of `tokens`: the decoder chain, joined."""
    return "".join(decoder(list(tokens)))
