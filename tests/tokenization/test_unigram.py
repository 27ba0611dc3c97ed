"""The Unigram model (with the Metaspace pre-tokenizer) against `tokenizers`' Unigram: ids and
offsets on corpus lines and on generated Unicode text, with and without byte fallback; ties,
unknown characters, fuse_unk; tokenizer.json sections in and out."""

import json
import math
import re

import pytest
from hypothesis import given, settings, strategies as st

from minibert.tokenization.metaspace import Metaspace
from minibert.tokenization.unigram import Unigram, byte_piece
from tests.tokenization.conftest import DATA, WIKI, read_lines
from tests.tokenization.test_unicode import TRICKY_CHARS, text_strategy

BYTES = [byte_piece(b) for b in range(256)]


def encode(model, pre, text):
    """Our pipeline without a normalizer: (ids, offsets)."""
    ids, offsets = [], []
    for word, start, end in pre(text):
        for piece_id, a, b in model(word):
            ids.append(piece_id)
            offsets.append(pre.piece_offsets(word, start, end, a, b))
    return ids, offsets


def reference(vocab, unk_id, byte_fallback, pre=None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.Unigram(vocab, unk_id, byte_fallback))
    pre = pre or Metaspace()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        pre.replacement, prepend_scheme=pre.prepend_scheme, split=pre.split)
    tokenizer.decoder = decoders.Sequence([decoders.Replace("\u2581", " "),
                                           decoders.ByteFallback(), decoders.Fuse(),
                                           decoders.Strip(" ", 1, 0)])
    return tokenizer


def assert_same(model, tokenizer, texts, pre=None):
    pre = pre or Metaspace()
    bad = []
    for text, expected in zip(texts, tokenizer.encode_batch(texts, add_special_tokens=False)):
        if encode(model, pre, text) != (expected.ids, expected.offsets):
            bad.append((ascii(text[:80]), expected.tokens[:10]))
    assert not bad, f"{len(bad)} of {len(texts)} differ, first: {bad[:3]}"


@pytest.fixture(scope="module")
def corpus_lines():
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    return (read_lines(DATA / "tinyshakespeare" / "input.txt")
            + read_lines(WIKI / "wiki.test.raw")[:3000])


@pytest.fixture(scope="module")
def trained_vocab():
    """A vocabulary trained by `tokenizers` on wiki.valid.raw, as saved and reloaded (ties in
    Viterbi depend on the scores as saved)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=4000, special_tokens=["<unk>"],
                                      unk_token="<unk>", show_progress=False)
    tokenizer.train_from_iterator(read_lines(WIKI / "wiki.valid.raw"), trainer)
    section = json.loads(Tokenizer.from_str(tokenizer.to_str()).to_str())["model"]
    return [tuple(entry) for entry in section["vocab"]], section["unk_id"]


def with_bytes(vocab):
    """Non-ASCII characters out, the 256 byte pieces in: byte fallback gets exercised."""
    low = min(score for _, score in vocab)
    kept = [(p, s) for p, s in vocab if p.isascii() or len(p) > 1 or p == "\u2581"]
    return kept + [(b, low - 1.0) for b in BYTES]


@pytest.mark.slow
@pytest.mark.parametrize("byte_fallback", [False, True], ids=["plain", "byte_fallback"])
def test_corpus_lines(trained_vocab, corpus_lines, byte_fallback):
    vocab, unk_id = trained_vocab
    if byte_fallback:
        vocab = with_bytes(vocab)
    assert_same(Unigram(vocab, unk_id, byte_fallback), reference(vocab, unk_id, byte_fallback),
                corpus_lines)


@pytest.fixture(scope="module")
def unicode_models(trained_vocab):
    """(ours, reference) pairs: the corpus vocabulary plus some tricky characters as pieces,
    with and without byte fallback, and two prepend schemes."""
    vocab, unk_id = trained_vocab
    have = {p for p, _ in vocab}
    extra = [(c, -12.0 - i % 7) for i, c in enumerate(TRICKY_CHARS[::3]) if c not in have]
    pairs = []
    for v, fallback, pre in [(vocab + extra, False, Metaspace()),
                             (with_bytes(vocab) + extra, True, Metaspace()),
                             (with_bytes(vocab), True, Metaspace(prepend_scheme="never")),
                             (vocab, False, Metaspace(split=False))]:
        pairs.append((Unigram(v, unk_id, fallback), reference(v, unk_id, fallback, pre), pre))
    return pairs


@settings(max_examples=300, deadline=None)
@given(text=text_strategy | st.text(st.sampled_from(" \u2581abé\u00a0x"), max_size=20))
def test_random_unicode_text(unicode_models, text):
    for ours, tokenizer, pre in unicode_models:
        expected = tokenizer.encode(text, add_special_tokens=False)
        assert encode(ours, pre, text) == (expected.ids, expected.offsets), \
            (ascii(text), expected.tokens)


def test_ties_keep_the_earliest_start():
    """Equal-scoring paths: best[e] only changes on a strictly greater score, so the path
    whose last piece starts earliest wins."""
    vocab = [("<unk>", 0.0), ("a", -1.0), ("b", -1.0), ("ab", -2.0), ("c", -1.0), ("bc", -2.0),
             ("abc", -3.0), ("\u2581", -1.0)]
    ours = Unigram(vocab, 0)
    tokenizer = reference(vocab, 0, False)
    assert_same(ours, tokenizer, ["abc", "ab c", "abcabc", "cab", "bca"])
    assert ours("abc") == ((6, 0, 3),)


def test_unknown_characters_fuse_and_fall_back_to_bytes():
    vocab = [("<unk>", 0.0), ("\u2581", -2.0), ("a", -1.0), ("xy", -3.0)] + \
        [(b, -5.0) for b in BYTES]
    plain = Unigram(vocab[:4], 0)
    assert plain("\u2581\u00e9\u00e8a") == ((1, 0, 1), (0, 1, 3), (2, 3, 4))  # one fused unk
    fallback = Unigram(vocab, 0, byte_fallback=True)
    assert fallback("\u00e9a") == ((vocab.index(("<0xC3>", -5.0)), 0, 1),
                                   (vocab.index(("<0xA9>", -5.0)), 0, 1), (2, 1, 2))
    texts = ["\u00e9\u00e8a x xy yx xyx \u00e9xy", "\U0001F600 a", "<unk>a<unk>"]
    assert_same(plain, reference(vocab[:4], 0, False), texts)
    assert_same(fallback, reference(vocab, 0, True), texts)
    # A fused unknown text that happens to be a piece gets that piece's id (as the reference).
    assert_same(Unigram(vocab[:4] + [("\u00e9\u00e8", -1.0)], 0),
                reference(vocab[:4] + [("\u00e9\u00e8", -1.0)], 0, False), ["a\u00e9\u00e8"])


def test_no_unk_id():
    ours = Unigram([("a", -1.0), ("\u2581", -1.0)])
    assert ours("\u2581a") == ((1, 0, 1), (0, 1, 2))
    with pytest.raises(ValueError, match="no unk_id"):
        ours("b")


def test_word_start_and_vocab():
    ours = Unigram([("<unk>", 0.0), ("\u2581the", -1.0), ("re", -2.0)], 0)
    assert ours.vocab == {"<unk>": 0, "\u2581the": 1, "re": 2}
    assert ours.is_word_start("\u2581the") and not ours.is_word_start("re")


def test_json_round_trip_through_tokenizers(trained_vocab, corpus_lines):
    """A tokenizer.json assembled from our sections loads in `tokenizers`, gives the same ids,
    and saves the same sections back; decoding matches."""
    from tokenizers import Tokenizer

    from minibert.tokenization.metaspace import (ByteFallback, Fuse, Replace, Sequence,
                                                 Strip, decode, decoder_from_json)

    vocab, unk_id = trained_vocab
    ours = Unigram(with_bytes(vocab), unk_id, byte_fallback=True)
    pre = Metaspace()
    decoder = Sequence([Replace("\u2581", " "), ByteFallback(), Fuse(), Strip(" ", 1, 0)])
    document = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
                "normalizer": None, "pre_tokenizer": pre.to_json(), "post_processor": None,
                "decoder": decoder.to_json(), "model": ours.to_json()}
    tokenizer = Tokenizer.from_str(json.dumps(document))
    texts = corpus_lines[:2000] + ["caf\u00e9 \U0001F600 \u4e00x"]
    assert_same(ours, tokenizer, texts)
    saved = json.loads(tokenizer.to_str())
    assert saved["model"] == ours.to_json()
    assert Unigram.from_json(saved["model"]).pieces == ours.pieces
    assert saved["pre_tokenizer"] == pre.to_json()
    again = decoder_from_json(saved["decoder"])
    for text in texts[:500]:
        ids, _ = encode(ours, pre, text)
        tokens = [ours.pieces[i][0] for i in ids]
        assert decode(again, tokens) == tokenizer.decode(ids), ascii(text)


@pytest.mark.parametrize("section, message", [
    ({"vocab": [["a", float("nan")]]}, r"vocab\[0\]: piece 'a' has a non-finite score"),
    ({"vocab": [["a", -1.0], ["b", float("-inf")]]}, r"vocab\[1\].*non-finite"),
    ({"vocab": [["a", -1.0], ["b"]]}, r"vocab\[1\]: expected \[piece, score\]"),
    ({"vocab": [["a", "x"]]}, r"vocab\[0\]: expected \[piece, score\]"),
    ({"vocab": {"a": 1}}, r"model.vocab: expected a list"),
    ({"vocab": [["a", -1.0]], "unk_id": 3}, r"model.unk_id: 3 is not an id"),
    ({"vocab": [["a", -1.0]], "unk_id": -1}, r"model.unk_id: -1"),
    ({"vocab": [["a", -1.0]], "byte_fallback": "yes"}, r"byte_fallback"),
])
def test_bad_sections_name_file_and_key(section, message):
    with pytest.raises(ValueError, match=r"^my/tokenizer\.json, model") as error:
        Unigram.from_json(section, "my/tokenizer.json")
    assert re.search(message, str(error.value))


def test_unk_score_is_min_minus_ten():
    ours = Unigram([("<unk>", 0.0), ("a", -3.5)], 0)
    assert math.isclose(ours.unk_score, -13.5)
