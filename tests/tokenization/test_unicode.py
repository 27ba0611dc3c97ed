"""Unicode: every code point, and property-based (hypothesis) text mixing combining marks, CJK
and its extensions, emoji, control and zero-width characters, right-to-left scripts and very
long words, against the reference `tokenizers` -- normalized text, words and offsets."""

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from minibert.tokenization import charsets
from minibert.tokenization.normalize import BertNormalizer
from minibert.tokenization.pretokenize import pre_tokenize
from minibert.tokenization.tokenizer import WordPieceTokenizer

ALL_CHARS = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
SWITCHES = [dict(clean_text=c, handle_chinese_chars=h, strip_accents=s, lowercase=lc)
            for c, h, s, lc in itertools.product((True, False), (True, False),
                                                  (None, True, False), (True, False))]


# Each switch on its own, and BERT's uncased and cased settings.
ONE_BY_ONE = [dict(zip(("clean_text", "handle_chinese_chars", "strip_accents", "lowercase"),
                      map(bool, bits)))
              for bits in [(0, 0, 0, 0), (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1),
                           (0, 0, 1, 1), (1, 1, 1, 1), (1, 1, 0, 0)]]


@pytest.mark.parametrize("switches", ONE_BY_ONE, ids=lambda s: "-".join(
    f"{k[:5]}={v}" for k, v in s.items()))
def test_normalizer_on_every_code_point(switches):
    from tokenizers import normalizers

    reference = normalizers.BertNormalizer(**switches)
    ours = BertNormalizer(**switches)
    for i in range(0, len(ALL_CHARS), 1 << 14):
        text = "x".join(ALL_CHARS[i:i + (1 << 14)])  # "x" keeps marks from reordering across
        assert ours(text)[0] == reference.normalize_str(text), f"block from U+{i:04X}"


def test_pre_tokenizer_on_every_code_point():
    from tokenizers import pre_tokenizers

    reference = pre_tokenizers.BertPreTokenizer()
    for i in range(0, len(ALL_CHARS), 1 << 14):
        text = "x".join(ALL_CHARS[i:i + (1 << 14)])
        assert pre_tokenize(text) == [(w, a, b) for w, (a, b) in
                                      reference.pre_tokenize_str(text)], f"from U+{i:04X}"


def chars(table):
    return sorted(charsets.characters(table))


# Characters worth mixing: each group is drawn from as often as the rest of Unicode.
TRICKY = {
    "combining marks": chars("0300-036F 0483-0489 1AB0-1ABE 1DC0-1DFF 20D0-20F0 FE20-FE2F "
                             "1D165-1D169 1D16D-1D172 302A-302F 0F71-0F84 1E944-1E94A"),
    "accented and cased letters": chars("00C0-024F 0370-03FF 0400-04FF 1E00-1EFF 0130 1E9E "
                                        "2126 212A 212B 1C89 A7CB-A7DC 10D50-10D65 16EA0-16EB8"),
    "CJK and extensions": chars("4E00-4E2F 9FF0-9FFF 3400-340F F900-F90F FA60-FA6F 20000-2000F "
                                "2A700-2A70F 2B740-2B74F 2B820-2B82F 2B920-2B92F 2CEA0-2CEAF "
                                "2F800-2F80F 30000-3000F 3040-30FF AC00-AC2F 1100-1112"),
    "emoji": chars("1F600-1F64F 1F3FB-1F3FF 1F1E6-1F1FF 2600-26FF 200D FE0F 20E3"),
    "control and zero-width": chars("0000-001F 007F-00A0 00AD 061C 180E 200B-200F 2028-202F "
                                    "2060-206F FEFF FFF9-FFFD E000 F0000 110BD 13430-13438 "
                                    "0890-0891 08E2 E0001 E0020"),
    "whitespace": chars(charsets.WHITESPACE),
    "right-to-left": chars("0590-05FF 0600-06FF 0750-077F FB50-FB5F 166D 111C9 1734 11938"),
    "punctuation": chars("0021-002F 003A-0040 005B-0060 007B-007E 00A1-00BF 2010-2027 "
                         "3000-3003 FF01-FF0F 1F10D 1FEF 037E"),
}
TRICKY_CHARS = sorted({c for group in TRICKY.values() for c in group})

any_char = st.characters(codec="utf-8")  # no lone surrogates: they are not text
text_strategy = st.one_of(
    st.text(st.sampled_from(TRICKY_CHARS) | st.sampled_from("abc ##.") | any_char, max_size=40),
    *[st.text(st.sampled_from(group) | st.sampled_from("ab "), max_size=30)
      for group in TRICKY.values()],
    st.text(st.sampled_from("ab\u0301"), min_size=95, max_size=130),  # near the 100-char limit
    st.text(any_char, max_size=60),
)


@pytest.fixture(scope="session")
def unicode_vocab(reference_vocab, tmp_path_factory):
    """The corpus vocabulary plus every tricky character, normalized every way, alone and with
    "##", so that offsets of single-character pieces get tested (not just [UNK])."""
    vocab_file, lowercase = reference_vocab
    tokens = vocab_file.read_text(encoding="utf-8").splitlines()
    extra = set()
    for switches in SWITCHES:
        normalized = BertNormalizer(**switches)("".join(TRICKY_CHARS))[0]
        extra |= {t for c in normalized if not c.isspace() for t in (c, "##" + c)}
    extra -= set(tokens)
    path = tmp_path_factory.mktemp("unicode") / "vocab.txt"
    path.write_text("\n".join(tokens + sorted(extra)) + "\n", encoding="utf-8")
    return path, lowercase


@pytest.fixture(scope="session")
def tokenizer_pairs(unicode_vocab):
    """(ours, reference) for the default switches and a few others."""
    from tokenizers import BertWordPieceTokenizer

    path, lowercase = unicode_vocab
    pairs = []
    for switches in ({}, {"strip_accents": not lowercase}, {"clean_text": False},
                     {"handle_chinese_chars": False}):
        ours = WordPieceTokenizer.from_file(path, lowercase=lowercase, **switches)
        reference = BertWordPieceTokenizer(str(path), lowercase=lowercase, **switches)
        pairs.append((ours, reference))
    return pairs


@settings(max_examples=200, deadline=None)
@given(text=text_strategy, pair=st.none() | text_strategy)
def test_random_unicode_text(tokenizer_pairs, text, pair):
    for ours, reference in tokenizer_pairs:
        a, b = ours.encode(text, pair), reference.encode(text, pair)
        assert (a.ids, a.type_ids, a.offsets) == (b.ids, b.type_ids, b.offsets), \
            (ascii(text), ascii(pair), a.tokens, b.tokens)
        assert ours.decode(a.ids, skip_special_tokens=True) == reference.decode(b.ids)


def test_canonical_reordering_of_every_combining_mark():
    """NFD sorts runs of combining marks by class; the reference's (Unicode 9.0) classes."""
    import unicodedata

    from tokenizers import normalizers

    from minibert.tokenization.normalize import _nfd

    reference = normalizers.NFD()
    marks = [c for c in ALL_CHARS if unicodedata.combining(c)]
    for mark in marks:  # next to a class-1 mark (U+0334) and a class-230 one (U+0301)
        for text in ("a" + mark + "\u0334", "a\u0301" + mark, "a\u0334" + mark + "\u0301"):
            ours = "".join(_nfd(list(text), list(range(len(text))))[0])
            assert ours == reference.normalize_str(text), ascii(text)


# ---- the simple normalizers: offsets where characters compose, expand, vanish or are inserted --

COMPOSING = ("e\u0301\u0323\u0302\u0307\u0331\u0344\u0f73\u0958\u212b\u1e0b\u1ec7\u00e9 "
             "\ufb01\u00b2\uff76\u3300\u2126\u1100\u1161\u11a8\uac00\u0130\u03a3\u1e9e\u0903"
             "\u20dd\u4e00abc\u3000\x1c\t")


def simple_normalizers():
    """name -> (ours, reference) for each normalizer of tokenizers' `normalizers` module that
    tokenizer.json files name, and a SentencePiece-like Sequence of them."""
    from tokenizers import Regex, normalizers as hf

    from minibert.tokenization import normalize as ours

    return {
        **{form: (ours.UnicodeNormalizer(form), getattr(hf, form)())
           for form in ("NFC", "NFD", "NFKC", "NFKD")},
        "Lowercase": (ours.Lowercase(), hf.Lowercase()),
        "StripAccents": (ours.StripAccents(), hf.StripAccents()),
        "Replace": (ours.Replace("ab", "xyz"), hf.Replace("ab", "xyz")),
        "Replace removing": (ours.Replace("bc", ""), hf.Replace("bc", "")),
        "Replace regex": (ours.Replace({"Regex": " +"}, "\u2581"),
                          hf.Replace(Regex(" +"), "\u2581")),
        "Prepend": (ours.Prepend("\u2581"), hf.Prepend("\u2581")),
        "Strip": (ours.Strip(), hf.Strip()),
        "Sequence": (ours.Sequence([ours.UnicodeNormalizer("NFKD"), ours.StripAccents(),
                                    ours.Lowercase(), ours.Replace(" ", "\u2581"),
                                    ours.Prepend("\u2581"), ours.UnicodeNormalizer("NFC")]),
                     hf.Sequence([hf.NFKD(), hf.StripAccents(), hf.Lowercase(),
                                  hf.Replace(" ", "\u2581"), hf.Prepend("\u2581"), hf.NFC()])),
        "BertNormalizer": (BertNormalizer(), hf.BertNormalizer()),
    }


def one_piece_per_character(ours_normalizer, reference_normalizer, text):
    """Both tokenizers with a WordPiece model whose vocabulary holds every character of the
    normalized text (and "##" + it), no pre-tokenizer: one piece per normalized character, so
    that the offsets show the alignment of each; and "ab" / "##fi" for pieces of two."""
    from tokenizers import Tokenizer as Reference, models

    from minibert.tokenization.base import Tokenizer
    from minibert.tokenization.wordpiece import WordPiece

    normalized = ours_normalizer(text)[0]
    tokens = ["[UNK]", "ab", "##fi"] + sorted({t for c in normalized for t in (c, "##" + c)})
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    reference = Reference(models.WordPiece(vocab, unk_token="[UNK]",
                                           max_input_chars_per_word=1000))
    reference.normalizer = reference_normalizer
    ours = Tokenizer(WordPiece(vocab, max_input_chars_per_word=1000), normalizer=ours_normalizer)
    return ours, reference


@pytest.mark.parametrize("name", ["NFC", "NFD", "NFKC", "NFKD", "StripAccents"])
def test_simple_normalizer_on_every_code_point(name):
    """The reference's Unicode tables, older than Python's, where they differ."""
    ours, reference = simple_normalizers()[name]
    for i in range(0, len(ALL_CHARS), 1 << 14):
        text = "x".join(ALL_CHARS[i:i + (1 << 14)])
        assert ours(text)[0] == reference.normalize_str(text), f"block from U+{i:04X}"


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.sampled_from(COMPOSING) | st.sampled_from(TRICKY_CHARS) | any_char,
                    max_size=25))
def test_simple_normalizer_offsets(text):
    for name, (ours_normalizer, reference_normalizer) in simple_normalizers().items():
        assert ours_normalizer(text)[0] == reference_normalizer.normalize_str(text), name
        ours, reference = one_piece_per_character(ours_normalizer, reference_normalizer, text)
        a, b = ours.encode(text, add_special_tokens=False), reference.encode(text)
        assert (a.ids, a.offsets) == (b.ids, b.offsets), (name, ascii(text), a.tokens)


@pytest.mark.parametrize("text", ["xe\u0301y", "e\u0301\u0301", "a\u0331\u0301", "\u1e0b\u0323",
                                  "a\ufb01b", "\ufb01\u0301", "x\u3300", "a\u0130b", "cabd",
                                  "\u00b2\uff76", "\u212b\u0301", "\u0f73"])
def test_simple_normalizer_offsets_examples(text):
    """NFC's é from e + U+0301 has the offsets of the e alone, as in tokenizers (whose
    alignment copies one character's range, never joins two); ﬁ's f and i each have ﬁ's."""
    for name, (ours_normalizer, reference_normalizer) in simple_normalizers().items():
        ours, reference = one_piece_per_character(ours_normalizer, reference_normalizer, text)
        a, b = ours.encode(text, add_special_tokens=False), reference.encode(text)
        assert (a.ids, a.offsets) == (b.ids, b.offsets), (name, ascii(text), a.tokens)
