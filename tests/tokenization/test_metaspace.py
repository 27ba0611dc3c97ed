"""The Metaspace pre-tokenizer and the SentencePiece-style decoders against `tokenizers`: words
and offsets for every prepend_scheme and split, decode chains on random tokens, JSON."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from minibert.tokenization.metaspace import (ByteFallback, Fuse, Metaspace, MetaspaceDecoder,
                                             Replace, Sequence, Strip, decode,
                                             decoder_from_json)
from tests.tokenization.test_unicode import text_strategy

SETTINGS = [dict(prepend_scheme=p, split=s) for p in ("always", "first", "never")
            for s in (True, False)]
spacey_text = st.text(st.sampled_from(" \u2581ab\u00e9\t\n\u00a0\U0001F600"), max_size=20)


def reference_pre(settings):
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Metaspace(**settings)


@settings(max_examples=200, deadline=None)
@given(text=text_strategy | spacey_text)
def test_words_and_spans(text):
    for s in SETTINGS:
        ours = [(w, (a, b)) for w, a, b in Metaspace(**s)(text)]
        assert ours == reference_pre(s).pre_tokenize_str(text), (s, ascii(text))


@settings(max_examples=200, deadline=None)
@given(text=spacey_text | text_strategy)
def test_piece_offsets_of_every_character(text):
    """Each character of each word as its own piece (a vocabulary of all characters): offsets
    of a prepended "▁", of replaced spaces and of ordinary characters."""
    from tokenizers import Tokenizer, models

    chars = sorted(set(text + "\u2581"))
    vocab = [("<unk>", 0.0)] + [(c, -1.0) for c in chars]
    ids = {c: i for i, (c, _) in enumerate(vocab)}
    for s in SETTINGS:
        pre = Metaspace(**s)
        tokenizer = Tokenizer(models.Unigram(vocab, 0, False))
        tokenizer.pre_tokenizer = reference_pre(s)
        expected = tokenizer.encode(text, add_special_tokens=False)
        ours = [(ids[c], pre.piece_offsets(w, a, b, i, i + 1))
                for w, a, b in pre(text) for i, c in enumerate(w)]
        assert ours == list(zip(expected.ids, expected.offsets)), (s, ascii(text))


def test_prepend_first_only_at_the_start():
    pre = Metaspace(prepend_scheme="first")
    assert pre("a b") == [("\u2581a", 0, 1), ("\u2581b", 1, 3)]
    assert pre("a b", at_start=False) == [("a", 0, 1), ("\u2581b", 1, 3)]
    assert Metaspace()("a", at_start=False) == [("\u2581a", 0, 1)]


def test_bad_settings():
    with pytest.raises(ValueError, match="prepend_scheme"):
        Metaspace(prepend_scheme="sometimes")
    with pytest.raises(ValueError, match="add_prefix_space"):
        Metaspace.from_json({"type": "Metaspace", "replacement": "\u2581",
                             "add_prefix_space": False, "prepend_scheme": "always"})


def test_json_matches_tokenizers():
    from tokenizers import Tokenizer, models

    for s in SETTINGS:
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = reference_pre(s)
        saved = json.loads(tokenizer.to_str())["pre_tokenizer"]
        assert Metaspace(**s).to_json() == saved
        assert Metaspace.from_json(saved).to_json() == saved
    old = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": False}
    assert Metaspace.from_json(old).prepend_scheme == "never"
    assert Metaspace.from_json({"type": "Metaspace", "replacement": "_"}).to_json() == \
        {"type": "Metaspace", "replacement": "_", "prepend_scheme": "always", "split": True}


def decoder_pairs():
    from tokenizers import decoders

    return [
        (MetaspaceDecoder(), decoders.Metaspace()),
        (MetaspaceDecoder(prepend_scheme="never"), decoders.Metaspace(prepend_scheme="never")),
        (Replace("\u2581", " "), decoders.Replace("\u2581", " ")),
        (ByteFallback(), decoders.ByteFallback()),
        (Fuse(), decoders.Fuse()),
        (Strip(" ", 1, 0), decoders.Strip(" ", 1, 0)),
        (Strip("\u2581", 2, 0), decoders.Strip("\u2581", 2, 0)),
        (Strip("x", 0, 1), decoders.Strip("x", 0, 1)),  # the reference panics if cuts cross
        (Sequence([Replace("\u2581", " "), ByteFallback(), Fuse(), Strip(" ", 1, 0)]),
         decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                            decoders.Fuse(), decoders.Strip(" ", 1, 0)])),
    ]


tokens_strategy = st.lists(
    st.sampled_from(["<0xE2>", "<0x82>", "<0xAC>", "<0x41>", "<0xFF>", "<0x+A>", "<0xa9>",
                     "<0x4>", "<0xGG>", "\u2581", "\u2581a", " ", "  b ", "a\u2581b", "x"])
    | st.text(st.sampled_from(" \u2581ab"), min_size=1, max_size=4), max_size=12)


@settings(max_examples=300, deadline=None)
@given(tokens=tokens_strategy)
def test_decoders_match(tokens):
    for ours, theirs in decoder_pairs():
        assert decode(ours, tokens) == theirs.decode(tokens), (ours.to_json(), tokens)


def test_decoder_json_matches_tokenizers():
    from tokenizers import Tokenizer, models

    for ours, theirs in decoder_pairs():
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.decoder = theirs
        saved = json.loads(tokenizer.to_str())["decoder"]
        assert ours.to_json() == saved
        assert decoder_from_json(saved).to_json() == saved
