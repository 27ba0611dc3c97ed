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
each normalized character, the index of the original character it came from (-1: inserted
before the first one, the empty span (0, 0)). This is all of tokenizers' alignment (its
NormalizedString keeps an original (start, end) range per normalized byte, but `transform`, which
every normalizer goes through, only ever copies one character's range or (0, 0) at the start;
`_transform` below): NFC's "é" from "e" + U+0301 has the offsets of the "e" alone there. Most
characters map to themselves (lower-cased) and are processed in bulk with `str.lower`; only the
"special" ones (dropped, CJK, decomposed, marks, ...) go through `_normalize_run` one by one.

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
_SPACES = "".join(sorted(_WHITESPACE))  # Rust's char::is_whitespace (str.strip's has \x1c-\x1f)
_MARKS = charsets.characters(charsets.NONSPACING_MARK)
_NFD_EXCLUDED = charsets.characters(charsets.NFD_EXCLUDED)
_NEW_COMBINING = charsets.characters(charsets.NEW_COMBINING)
# Combining marks (M*) in Python's Unicode tables but not yet in the reference's, and two it
# still has as marks (U+1CF2-1CF3, letters since Unicode 12.1).
_NEW_MARKS = charsets.characters(
    "07FD 0898-089F 08CA-08D3 09FE 0AFA-0AFF 0B55 0C04 0C3C 0D00 0D3B-0D3C 0D81 0EBA 1715 180F "
    "1ABF-1ACE 1CF7 1DF6-1DFA A82C A8FF 10D24-10D27 10EAB-10EAC 10F46-10F50 10F82-10F85 11070 "
    "11073-11074 110C2 11145-11146 111C9 111CE-111CF 1133B 1145E 1182C-1183A 11930-11935 "
    "11937-11938 1193B-1193E 11940 11942-11943 119D1-119D7 119DA-119E0 119E4 11A01-11A0A "
    "11A33-11A39 11A3B-11A3E 11A47 11A51-11A5B 11A8A-11A99 11D31-11D36 11D3A 11D3C-11D3D "
    "11D3F-11D45 11D47 11D8A-11D8E 11D90-11D91 11D93-11D97 11EF3-11EF6 16F4F 16F7F-16F87 16FE4 "
    "16FF0-16FF1 1CF00-1CF2D 1CF30-1CF46 1E130-1E136 1E2AE 1E2EC-1E2EF")
_OLD_MARKS = charsets.characters("1CF2-1CF3")
# Compatibility decompositions newer than the reference's Unicode tables (it leaves these alone).
_NFKD_EXCLUDED = _NFD_EXCLUDED | charsets.characters(
    "32FF A7F2-A7F4 AB69 10781-10785 10787-107B0 107B2-107BA 1F16C 1FBF0-1FBF9")
# Lower-casing that expands (İ -> i + ◌̇), is contextual in Python (final Σ -> ς; Rust maps
# each character on its own) or that Python's tables lack.
_LOWER_SPECIAL = "0130 03A3 " + " ".join(f"{c:04X}" for c in charsets.NEW_LOWERCASE)


def _lower(c: str) -> str:
    return chr(charsets.NEW_LOWERCASE[ord(c)]) if ord(c) in charsets.NEW_LOWERCASE else c.lower()


def _decompose(c: str) -> str:
    return c if c in _NFD_EXCLUDED else unicodedata.normalize("NFD", c)


def _is_combining_mark(c: str) -> bool:
    """General category Mn, Mc or Me, in the reference's Unicode tables."""
    return c in _OLD_MARKS or unicodedata.category(c)[0] == "M" and c not in _NEW_MARKS


def _decompose_compatibility(c: str) -> str:
    return c if c in _NFKD_EXCLUDED else unicodedata.normalize("NFKD", c)


def _combining(c: str) -> int:
    return 0 if c in _NEW_COMBINING else unicodedata.combining(c)


@functools.cache
def _decomposed_or_combining() -> str:
    """Table (as in charsets.py) of the characters that NFD changes or may reorder (those of
    canonical combining class > 0). None above U+2FFFF, so the scan stops there."""
    chars = (chr(c) for c in range(0x30000) if not 0xD800 <= c < 0xE000)
    return " ".join(
        f"{ord(c):04X}" for c in chars if _decompose(c) != c or unicodedata.combining(c))


def _transform(edits: list[tuple[str, int]]) -> list[int]:
    """tokenizers' `NormalizedString::transform`: the alignment of characters given as edits
    (char, change) of an input. Change 0 takes the next input character's place, -k also removes
    the k after it, +1 is inserted and shares the place of the character before it (-1 at the
    start)."""
    alignment, position = [], 0
    for _, change in edits:
        if change > 0:
            alignment.append(position - 1)
        else:
            alignment.append(position)
            position += 1 - change
    return alignment


def _canonical_order(edits: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """NFD's canonical ordering: stable-sort each run of combining characters by class; each
    edit moves with its character."""
    out, run = [], []
    for item in edits + [("", 0)]:
        if item[0] and _combining(item[0]):
            run.append(item)
            continue
        out += sorted(run, key=lambda item: _combining(item[0])) + ([item] if item[0] else [])
        run = []
    return out


def _decomposed(text, decompose=_decompose) -> list[tuple[str, int]]:
    """NFD (NFKD with `decompose` compatibility decomposition) as edits of `text`: each
    character's first one in its place, the others inserted; then canonical ordering."""
    return _canonical_order([(d, int(k > 0)) for c in text for k, d in enumerate(decompose(c))])


@functools.cache
def _compose(starter: str, c: str) -> str | None:
    """The primary composite of `starter` + `c`, or None."""
    composed = unicodedata.normalize("NFC", starter + c)
    return composed if len(composed) == 1 else None


def _composed(edits: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Canonical composition (The Unicode Standard §3.11, D115-D117) of decomposed edits: a
    character not blocked from the last starter (no character between, or the last one between
    of a lower, non-zero class) and composing with it is absorbed; the composite's change is the
    starter's plus the absorbed one's, minus the one character that is gone."""
    out, starter, last_class = [], None, 0
    for c, change in edits:
        klass = _combining(c)
        if starter is not None and (len(out) - 1 == starter or 0 < last_class < klass):
            composite = _compose(out[starter][0], c)
            if composite is not None:
                out[starter] = (composite, out[starter][1] + change - 1)
                continue
        if klass == 0:
            starter = len(out)
        out.append((c, change))
        last_class = klass
    return out


def _nfd(chars: list[str], alignment: list[int]) -> tuple[list[str], list[int]]:
    """NFD of `chars`, whose origins are `alignment`, with the reference's alignment."""
    edits = _decomposed(chars)
    return [c for c, _ in edits], [alignment[i] for i in _transform(edits)]


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
# Each maps `text -> (normalized, alignment | None)` like BertNormalizer, with the alignment
# tokenizers' NormalizedString gives (its normalizer.rs `transform`, `filter`, `replace`).


class UnicodeNormalizer:
    """NFC, NFD, NFKC or NFKD (tokenizer.json types of the same names): decomposition and
    canonical ordering (+ canonical composition for NFC/NFKC) as edits, aligned as the
    reference's unicode-normalization-alignments crate's (char, change) pairs are."""

    def __init__(self, form: str):
        self.form = form
        self._decompose = _decompose_compatibility if form in ("NFKC", "NFKD") else _decompose

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        if unicodedata.is_normalized(self.form, text):
            return text, None
        edits = _decomposed(text, self._decompose)
        if self.form in ("NFC", "NFKC"):
            edits = _composed(edits)
        return "".join(c for c, _ in edits), _transform(edits)

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
    """Drop the combining marks (Mn, Mc, Me: tokenizers' `is_combining_mark`); used after
    NFD/NFKD. The kept characters keep their places (NormalizedString::filter)."""

    def __call__(self, text: str) -> tuple[str, list[int] | None]:
        kept = [i for i, c in enumerate(text) if not _is_combining_mark(c)]
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
            out.append(self.content)  # inserted after the match, which is removed: each new
            alignment += [m.end() - 1] * len(self.content)  # character at its last character
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
        start = len(text) - len(text.lstrip(_SPACES)) if self.strip_left else 0
        end = len(text.rstrip(_SPACES)) if self.strip_right else len(text)
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
            if step is not None:  # (-1, before the first character, stays -1)
                alignment = step if alignment is None else \
                    [alignment[i] if i >= 0 else -1 for i in step]
        return text, alignment

    def to_json(self) -> dict:
        return {"type": "Sequence", "normalizers": [n.to_json() for n in self.normalizers]}
