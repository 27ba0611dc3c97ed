"""Stage 1 of BERT's tokenizer: normalization (Devlin et al. 2019, §3 and appendix A.2 / the
released `tokenization.py`, `BasicTokenizer`).

Four switches, applied in this order to every character:

1. `clean_text`: drop NUL, U+FFFD and control characters; map every whitespace to " ".
2. `handle_chinese_chars`: put spaces around CJK ideographs, so each becomes a word.
3. `strip_accents`: NFD-decompose, then drop the non-spacing marks (é -> e + ◌́ -> e).
4. `lowercase`.

BERT's uncased vocabularies use all four; cased ones skip 3 and 4 (`strip_accents` follows
`lowercase` unless given).

Offsets must point into the *original* text, so normalization also returns an alignment: for
each normalized character, the index of the original character it came from. Most characters
map to themselves (lower-cased) and are processed in bulk with `str.lower`; only the "special"
ones (dropped, CJK, decomposed, marks, ...) go through `_normalize_run` one by one.

The simple normalizers other tokenizer.json files name (NFC/NFD/NFKC/NFKD, Lowercase,
StripAccents, Replace, Strip, Prepend, Sequence; tokenizers' `normalizers` module) follow.
"""

import functools
import re
import unicodedata

from minibert.tokenization import charsets

_DROPPED = re.compile(f"[{charsets.regex_class(charsets.DROPPED)}]")
_CJK = re.compile(f"[{charsets.regex_class(charsets.CJK)}]")
_WHITESPACE = charsets.characters(charsets.WHITESPACE)
_TO_SPACE = dict.fromkeys(map(ord, _WHITESPACE), " ")
_MARKS = charsets.characters(charsets.NONSPACING_MARK)
_NFD_EXCLUDED = charsets.characters(charsets.NFD_EXCLUDED)
_NEW_COMBINING = charsets.characters(charsets.NEW_COMBINING)
# Lower-casing that expands (İ -> i + ◌̇), is contextual in Python (final Σ -> ς; Rust maps
# each character on its own) or that Python's tables lack.
_LOWER_SPECIAL = "0130 03A3 " + " ".join(f"{c:04X}" for c in charsets.NEW_LOWERCASE)


def _lower(c: str) -> str:
    return chr(charsets.NEW_LOWERCASE[ord(c)]) if ord(c) in charsets.NEW_LOWERCASE else c.lower()


def _decompose(c: str) -> str:
    return c if c in _NFD_EXCLUDED else unicodedata.normalize("NFD", c)


def _combining(c: str) -> int:
    return 0 if c in _NEW_COMBINING else unicodedata.combining(c)


@functools.cache
def _decomposed_or_combining() -> str:
    """Table (as in charsets.py) of the characters that NFD changes or may reorder (those of
    canonical combining class > 0). None above U+2FFFF, so the scan stops there."""
    chars = (chr(c) for c in range(0x30000) if not 0xD800 <= c < 0xE000)
    return " ".join(
        f"{ord(c):04X}" for c in chars if _decompose(c) != c or unicodedata.combining(c))


def _canonical_order(chars: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """NFD's canonical ordering: stable-sort each run of combining characters by class."""
    out, run = [], []
    for item in chars + [("", False)]:
        if item[0] and _combining(item[0]):
            run.append(item)
            continue
        out += sorted(run, key=lambda item: _combining(item[0])) + ([item] if item[0] else [])
        run = []
    return out


def _nfd(chars: list[str], alignment: list[int]) -> tuple[list[str], list[int]]:
    """NFD, with the alignment the reference computes.

    Each character decomposes into a first character, which takes the place (and origin) of
    the original, and "inserted" ones, which share the origin of the last original character
    consumed. Canonical ordering then moves characters together with their inserted flag, and
    the origins are handed out in the new order."""
    decomposed = [(d, k > 0) for c in chars for k, d in enumerate(_decompose(c))]
    out_chars, out_alignment, consumed = [], [], iter(alignment)
    for c, inserted in _canonical_order(decomposed):
        if not inserted:
            origin = next(consumed)
        out_chars.append(c)
        out_alignment.append(origin)
    return out_chars, out_alignment


class BertNormalizer:
    """BERT's normalizer; `normalizer(text)` returns `(normalized, alignment)`.

    `alignment[i]` is the index in `text` of the character that produced `normalized[i]`, or
    the whole alignment is None when it is the identity (the common, fast case).
    """

    def __init__(self, clean_text=True, handle_chinese_chars=True, strip_accents=None,
                 lowercase=True):
        self.clean_text = clean_text
        self.handle_chinese_chars = handle_chinese_chars
        self.strip_accents_option = strip_accents  # None: follow lowercase (kept for to_json)
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.lowercase = lowercase
        special = [charsets.DROPPED if clean_text else "",
                   charsets.CJK if handle_chinese_chars else "",
                   charsets.NONSPACING_MARK if self.strip_accents else "",
                   _decomposed_or_combining() if self.strip_accents else "",
                   _LOWER_SPECIAL if lowercase else ""]
        special = " ".join(special).strip()
        self._special = charsets.CharsetRegex("[{s}]+", s=special) if special else None

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        runs = list(self._special(text).finditer(text)) if self._special else []
        if not runs:
            return self._normalize_plain(text), None
        parts, alignment, done = [], [], 0
        for run in runs:
            start, end = run.span()
            parts.append(self._normalize_plain(text[done:start]))
            alignment += range(done, start)
            normalized, run_alignment = self._normalize_run(run.group(), start)
            parts.append(normalized)
            alignment += run_alignment
            done = end
        parts.append(self._normalize_plain(text[done:]))
        alignment += range(done, len(text))
        return "".join(parts), alignment

    def _normalize_plain(self, text: str) -> str:
        """Characters that stay one character: whitespace -> " ", and lower-casing."""
        if self.clean_text:
            text = text.translate(_TO_SPACE)
        return text.lower() if self.lowercase else text

    def _normalize_run(self, run: str, offset: int) -> tuple[str, list[int]]:
        """The four stages, character by character, keeping each one's origin."""
        chars, alignment = [], []
        for i, c in enumerate(run, offset):
            if self.clean_text:
                if _DROPPED.match(c):
                    continue
                if c in _WHITESPACE:
                    c = " "
            if self.handle_chinese_chars and _CJK.match(c):
                c = f" {c} "
            chars += c
            alignment += [i] * len(c)
        if self.strip_accents:
            chars, alignment = _nfd(chars, alignment)
            kept = [k for k, c in enumerate(chars) if c not in _MARKS]
            chars, alignment = [chars[k] for k in kept], [alignment[k] for k in kept]
        if self.lowercase:
            lowered = [_lower(c) for c in chars]
            alignment = [a for c, a in zip(lowered, alignment) for _ in c]
            chars = lowered
        return "".join(chars), alignment

    def to_json(self) -> dict:
        return {"type": "BertNormalizer", "clean_text": self.clean_text,
                "handle_chinese_chars": self.handle_chinese_chars,
                "strip_accents": self.strip_accents_option, "lowercase": self.lowercase}

    @classmethod
    def from_json(cls, section: dict) -> "BertNormalizer":
        return cls(section.get("clean_text", True), section.get("handle_chinese_chars", True),
                   section.get("strip_accents"), section.get("lowercase", True))


# ---- the simple normalizers of tokenizer.json files (tokenizers' `normalizers` module) -------
#
# Each maps `text -> (normalized, alignment | None)` like BertNormalizer. A normalized
# character that stands for several original ones (NFC's é from e + ◌́) points at the first.


def _per_cluster(text: str, transform) -> tuple[str, list[int] | None]:
    """Apply `transform` to each character together with the combining marks after it, and
    align each output character with the cluster's characters in order (the extra ones with
    its last)."""
    out, alignment, start = [], [], 0
    for end in range(1, len(text) + 1):
        if end < len(text) and unicodedata.combining(text[end]):
            continue
        cluster = transform(text[start:end])
        out.append(cluster)
        alignment += [start + min(k, end - start - 1) for k in range(len(cluster))]
        start = end
    return "".join(out), alignment


class UnicodeNormalizer:
    """NFC, NFD, NFKC or NFKD (tokenizer.json types of the same names)."""

    def __init__(self, form: str):
        self.form = form

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        if unicodedata.is_normalized(self.form, text):
            return text, None
        return _per_cluster(text, lambda s: unicodedata.normalize(self.form, s))

    def to_json(self) -> dict:
        return {"type": self.form}


class Lowercase:
    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        if text.isascii():
            return text.lower(), None
        out, alignment = [], []  # per character, as Rust lower-cases (no final-sigma rule)
        for i, c in enumerate(text):
            out.append(_lower(c))
            alignment += [i] * len(out[-1])
        return "".join(out), alignment

    def to_json(self) -> dict:
        return {"type": "Lowercase"}


class StripAccents:
    """Drop the non-spacing marks (Mn); used after NFD/NFKD, as in tokenizers."""

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        kept = [i for i, c in enumerate(text) if c not in _MARKS]
        if len(kept) == len(text):
            return text, None
        return "".join(text[i] for i in kept), kept

    def to_json(self) -> dict:
        return {"type": "StripAccents"}


class Replace:
    """Replace each match of `pattern` ({"String": s} or {"Regex": r}) by `content`."""

    def __init__(self, pattern: dict | str, content: str):
        self.pattern = {"String": pattern} if isinstance(pattern, str) else dict(pattern)
        regex = self.pattern.get("Regex")
        self._regex = re.compile(regex if regex is not None else re.escape(self.pattern["String"]))
        self.content = content

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        out, alignment, done = [], [], 0
        for m in self._regex.finditer(text):
            out.append(text[done:m.start()])
            alignment += range(done, m.start())
            out.append(self.content)  # the new characters stand for the match, in order
            alignment += [m.start() + min(k, max(m.end() - m.start() - 1, 0))
                          for k in range(len(self.content))]
            done = m.end()
        if not out:
            return text, None
        out.append(text[done:])
        alignment += range(done, len(text))
        return "".join(out), alignment

    def to_json(self) -> dict:
        return {"type": "Replace", "pattern": self.pattern, "content": self.content}


class Strip:
    def __init__(self, strip_left=True, strip_right=True):
        self.strip_left, self.strip_right = strip_left, strip_right

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        start = len(text) - len(text.lstrip()) if self.strip_left else 0
        end = len(text.rstrip()) if self.strip_right else len(text)
        end = max(start, end)
        return text[start:end], (None if start == 0 else list(range(start, end)))

    def to_json(self) -> dict:
        return {"type": "Strip", "strip_left": self.strip_left, "strip_right": self.strip_right}


class Prepend:
    """Put `prepend` before a non-empty text (SentencePiece-style "▁")."""

    def __init__(self, prepend: str):
        self.prepend = prepend

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        if not text:
            return text, None
        return self.prepend + text, [0] * len(self.prepend) + list(range(len(text)))

    def to_json(self) -> dict:
        return {"type": "Prepend", "prepend": self.prepend}


class Sequence:
    """Normalizers applied in order; the alignments compose."""

    def __init__(self, normalizers: list):
        self.normalizers = list(normalizers)

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        alignment = None
        for normalizer in self.normalizers:
            text, step = normalizer(text)
            if step is not None:
                alignment = step if alignment is None else [alignment[i] for i in step]
        return text, alignment

    def to_json(self) -> dict:
        return {"type": "Sequence", "normalizers": [n.to_json() for n in self.normalizers]}
