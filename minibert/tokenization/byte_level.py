"""Byte-level pre-tokenization and decoding for BPE (Radford et al. 2019, GPT-2 §2.2 "Input
Representation"), as RoBERTa (Liu et al. 2019 §4.4) and ModernBERT use it.

Reference: `tokenizers/src/pre_tokenizers/byte_level.rs` (pre-tokenizer, decoder and the
`process_offsets` trimming of the ByteLevel/Roberta post-processors) and GPT-2's `encoder.py`.

1. Split the text into words with GPT-2's regex: contractions, runs of letters, of digits, of
   other symbols (each with at most one leading space), and whitespace:

       's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

2. Spell each word as its UTF-8 bytes, each byte as one printable character
   (`bytes_to_unicode`: a space is "Ġ", a newline "Ċ"), so that BPE needs no unknown token.

The reference's regex engine (Oniguruma) knows Unicode 16.0; Python's `unicodedata` is older,
so the letters and digits assigned since (NEW_LETTERS, NEW_NUMBERS) are added by hand;
tests/tokenization/test_byte_level.py checks every code point against the reference.
"""

import functools
import unicodedata

from minibert.tokenization import charsets


def bytes_to_unicode() -> dict[int, str]:
    """byte -> character: printable Latin-1 bytes stand for themselves, the 68 others (controls,
    space, NBSP, soft hyphen) for U+0100 onwards in byte order (GPT-2 `encoder.py`)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table, n = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return dict(sorted(table.items()))


BYTES_CHAR = bytes_to_unicode()
CHAR_BYTES = {c: b for b, c in BYTES_CHAR.items()}
_CONTINUATION = frozenset(BYTES_CHAR[b] for b in range(0x80, 0xC0))  # UTF-8 10xxxxxx bytes
_SPACE = BYTES_CHAR[ord(" ")]  # "Ġ"
_WHITESPACE = charsets.characters(charsets.WHITESPACE)  # Rust's char::is_whitespace

# Letters and digits of Unicode 15.0 and 16.0 (Oniguruma's tables; Python 3.11 has 14.0).
NEW_LETTERS = """
    1C89-1C8A A7CB-A7CD A7DA-A7DC 105C0-105F3 10D4A-10D65 10D6F-10D85 10EC2-10EC4 1123F-11240
    11380-11389 1138B 1138E 11390-113B5 113B7 113D1 113D3 11BC0-11BE0 11F02 11F04-11F10
    11F12-11F33 1342F 13441-13446 13460-143FA 16100-1611D 16D40-16D6C 18CFF 1B132 1B155
    1DF25-1DF2A 1E030-1E06D 1E4D0-1E4EB 1E5D0-1E5ED 1E5F0 2B739 2EBF0-2EE5D 31350-323AF
"""
NEW_NUMBERS = """
    10D40-10D49 116D0-116E3 11BF0-11BF9 11F50-11F59 16130-16139 16D70-16D79 1CCF0-1CCF9
    1D2C0-1D2D3 1E4F0-1E4F9 1E5F1-1E5FA
"""
# Oniguruma's \s: White_Space (= Zs | Zl | Zp | \t-\r | U+0085).
SPACES = charsets.WHITESPACE

PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?[{l}]+| ?[{n}]+| ?[^{s}{l}{n}]+|[{s}]+(?![^{s}])|[{s}]+")


def _category_table(major: str, extra: str) -> str:
    """The code points of general category `major`* (e.g. "L") plus `extra`, as a range table."""
    points = [cp for cp in range(0x110000) if unicodedata.category(chr(cp))[0] == major]
    points += [c for a, b in charsets.ranges(extra) for c in range(a, b + 1)]
    out: list[list[int]] = []
    for cp in sorted(set(points)):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return " ".join(f"{a:X}-{b:X}" for a, b in out)


@functools.cache
def gpt2_regex() -> charsets.CharsetRegex:
    """GPT-2's pre-tokenization regex, built when the first ByteLevel is made (reading the
    Unicode tables takes ~0.3 s)."""
    return charsets.CharsetRegex(PATTERN, l=_category_table("L", NEW_LETTERS),
                                 n=_category_table("N", NEW_NUMBERS), s=SPACES)


class ByteLevel:
    """The ByteLevel pre-tokenizer: `ByteLevel(add_prefix_space)(text)` -> [(word, start, end)].

    `add_prefix_space` puts a space before a text that does not start with one, so that its
    first word is spelled like the others ("Hello" -> "ĠHello"); the added space maps to the
    first character. `trim_offsets` is only stored here (it belongs to the post-processor, see
    `process_offsets`); `use_regex=False` keeps the whole text as one word.
    """

    def __init__(self, add_prefix_space=True, trim_offsets=True, use_regex=True,
                 cache_size=1_000_000):
        self.add_prefix_space = add_prefix_space
        self.trim_offsets = trim_offsets
        self.use_regex = use_regex
        self._regex = gpt2_regex() if use_regex else None
        self._cache_size = cache_size
        self._mapped: dict[str, str] = {}  # raw word -> byte-level word
        self._char_index: dict[tuple[str, int], tuple[int, ...]] = {}

    @staticmethod
    def alphabet() -> list[str]:
        """The 256 byte characters (BpeTrainer's `initial_alphabet` for byte-level BPE)."""
        return sorted(BYTES_CHAR.values())

    def __call__(self, normalized: str) -> list[tuple[str, int, int]]:
        """The byte-level words of `normalized` with their (start, end) spans in it (a span of
        a word holding the added prefix space starts at 0, as the reference aligns it)."""
        prefixed = self.add_prefix_space and normalized and normalized[0] != " "
        text = " " + normalized if prefixed else normalized
        if not text:
            return []
        if self._regex:
            spans = [m.span() for m in self._regex(text).finditer(text)]
        else:
            spans = [(0, len(text))]
        words, mapped = [], self._mapped
        for s, e in spans:
            raw = text[s:e]
            word = mapped.get(raw)
            if word is None:
                word = raw.encode("utf-8").decode("latin-1").translate(BYTES_CHAR)
                if len(mapped) < self._cache_size:
                    mapped[raw] = word
            if prefixed:  # text[0] is the added space: it aligns with normalized[0]
                s, e = max(s - 1, 0), max(e - 1, 1)
            words.append((word, s, e))
        return words

    def piece_offsets(self, word: str, start: int, end: int, a: int, b: int) -> tuple[int, int]:
        """The span in `normalized` of the piece word[a:b] of a word spanning start:end: every
        character of the word is one UTF-8 byte, which maps back to the character it is part of
        (so two pieces of one multi-byte character both get that character's span)."""
        if len(word) == end - start:  # one byte per character, no added space
            return start + a, start + b
        index = self._char_index.get((word, end - start))
        if index is None:
            index = _char_index(word, end - start)
            if len(self._char_index) < self._cache_size:
                self._char_index[word, end - start] = index
        return start + index[a], start + index[b - 1] + 1

    def to_json(self) -> dict:
        return _json(self)

    @classmethod
    def from_json(cls, section: dict, source: str = "tokenizer.json, pre_tokenizer"):
        """ValueError naming `source` for a section that is not a valid ByteLevel one."""
        return cls(**_options(section, source))


def _char_index(word: str, n_chars: int) -> tuple[int, ...]:
    """For each byte character of `word`, the index of the text character it encodes; a
    leading added space (the word has one byte-start more than its span has characters) is
    given the index of the first character."""
    index, k = [], -1
    for c in word:
        k += c not in _CONTINUATION
        index.append(k)
    if k + 1 > n_chars:  # prefixed: shift the rest down by the added space
        index = [0] + [i - 1 for i in index[1:]]
    return tuple(index)


def process_offsets(tokens: list[str], offsets: list[tuple[int, int]],
                    add_prefix_space: bool) -> list[tuple[int, int]]:
    """trim_offsets of the ByteLevel and Roberta post-processors (`byte_level.rs`
    `process_offsets`): a token's span loses its leading and trailing spaces ("Ġ" or whitespace),
    except the one space of the first token that `add_prefix_space` added.

    Apply to each sequence's tokens and (character) offsets on their own, before special tokens
    are added (pairs: A and B separately; also to each overflowing window)."""
    out = []
    for i, (token, (start, end)) in enumerate(zip(tokens, offsets)):
        lead = _count_spaces(token)
        trail = _count_spaces(reversed(token))
        if lead:
            if (i == 0 or start == 0) and add_prefix_space and lead == 1:
                lead = 0  # the space we added has no width to trim
            start = min(start + lead, end)
        if trail and end >= trail:
            end = max(end - trail, start)
        out.append((start, end))
    return out


def _count_spaces(chars) -> int:
    n = 0
    for c in chars:
        if c != _SPACE and c not in _WHITESPACE:
            break
        n += 1
    return n


class ByteLevelDecoder:
    """Tokens -> text: each token's characters back to bytes (a token with a character outside
    the byte alphabet, e.g. an added token, keeps its own UTF-8), all joined, then decoded as
    UTF-8 with invalid bytes replaced by U+FFFD (Rust `String::from_utf8_lossy`)."""

    def __init__(self, add_prefix_space=True, trim_offsets=True, use_regex=True):
        self.add_prefix_space = add_prefix_space  # kept for the file; decoding ignores them
        self.trim_offsets = trim_offsets
        self.use_regex = use_regex

    def __call__(self, tokens: list[str]) -> str:
        out = bytearray()
        for token in tokens:
            try:
                out += bytes(CHAR_BYTES[c] for c in token)
            except KeyError:
                out += token.encode("utf-8")
        return out.decode("utf-8", errors="replace")

    def to_json(self) -> dict:
        return _json(self)

    @classmethod
    def from_json(cls, section: dict, source: str = "tokenizer.json, decoder"):
        return cls(**_options(section, source))


def _json(component) -> dict:
    """The section `tokenizers` writes for a ByteLevel pre-tokenizer, decoder or processor."""
    return {"type": "ByteLevel", "add_prefix_space": component.add_prefix_space,
            "trim_offsets": component.trim_offsets, "use_regex": component.use_regex}


def _options(section: dict, source: str) -> dict:
    """Constructor arguments from a ByteLevel section; ValueError naming `source` if bad.
    `add_prefix_space` and `trim_offsets` are required, `use_regex` defaults to true (serde)."""
    if not isinstance(section, dict) or section.get("type") != "ByteLevel":
        raise ValueError(f"{source}: expected a ByteLevel section, got {section!r:.80}")
    options = {}
    for key in ("add_prefix_space", "trim_offsets", "use_regex"):
        if key not in section and key != "use_regex":
            raise ValueError(f"{source}: missing field {key!r}")
        options[key] = section.get(key, True)
        if not isinstance(options[key], bool):
            raise ValueError(f"{source}.{key}: expected true or false, got {options[key]!r}")
    return options
