"""The shared tokenizer API (base.py) against transformers' BertTokenizerFast on the same vocab.txt:
every `__call__` option, the BatchEncoding alignment methods, conversions, decode, added tokens,
never_split / do_basic_tokenize, the too-long warning and missing special tokens."""

import itertools
import logging

import numpy as np
import pytest

from minibert.tokenization.base import AddedToken
from minibert.tokenization.tokenizer import WordPieceTokenizer

TEXTS = ["Hello, world!", "The quick brown fox jumps over the lazy dog.",
         "Héllo İstanbul — naïve café, 東京 [MASK] too", "unaffable wordpiece tokenization ##x",
         "a", "Some more words here to make a longer text, with punctuation; and so on."]
PAIRS = TEXTS[::-1]


@pytest.fixture(scope="module")
def both(reference_vocab):
    from transformers import BertTokenizerFast

    vocab_file, lowercase = reference_vocab
    return (WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase),
            BertTokenizerFast(str(vocab_file), do_lower_case=lowercase))


def plain(value):
    """Nested lists (of tuples or lists) and arrays alike, for comparison."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value.tolist() if hasattr(value, "tolist") else value


def assert_same_call(ours, hf, *args, **kwargs):
    got, expected = ours(*args, **kwargs), hf(*args, **kwargs)
    assert set(got) == set(expected), (kwargs, set(got), set(expected))
    for name in expected:
        assert plain(got[name]) == plain(expected[name]), (name, args, kwargs)
    return got, expected


CALLS = [
    {},
    {"padding": True},
    {"padding": "longest", "pad_to_multiple_of": 8},
    {"padding": "max_length", "max_length": 40, "truncation": True},
    {"padding": True, "padding_side": "left"},
    {"truncation": True, "max_length": 9},
    {"max_length": 9},  # transformers truncates when max_length comes without padding
    {"truncation": "only_second", "max_length": 30},
    {"return_special_tokens_mask": True, "return_offsets_mapping": True, "return_length": True},
    {"add_special_tokens": False, "padding": True},
    {"truncation": True, "max_length": 12, "stride": 3, "return_overflowing_tokens": True,
     "padding": True},
    {"truncation": "only_second", "max_length": 40, "stride": 4, "return_overflowing_tokens": True,
     "return_offsets_mapping": True},
    {"return_tensors": "np", "padding": True},
    {"return_token_type_ids": False, "return_attention_mask": False},
]


@pytest.mark.parametrize("kwargs", CALLS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_call_like_transformers(both, kwargs):
    ours, hf = both
    pairs_ok = kwargs.get("truncation") != "only_second"
    if pairs_ok:
        assert_same_call(ours, hf, TEXTS, **kwargs)
        assert_same_call(ours, hf, TEXTS[2], **kwargs)  # one text, not batched
    long_pairs = [t + " " + t for t in PAIRS]
    assert_same_call(ours, hf, TEXTS, long_pairs, **kwargs)
    assert_same_call(ours, hf, TEXTS[0], long_pairs[0], **kwargs)
    assert_same_call(ours, hf, list(zip(TEXTS, long_pairs)), **kwargs)  # (text, pair) tuples


def test_truncation_side_and_longest_first_overflow(both):
    ours, hf = both
    for side in ("left", "right"):
        ours.truncation_side = hf.truncation_side = side
        try:
            for pairs in (None, PAIRS):
                assert_same_call(ours, hf, TEXTS, pairs, truncation=True, max_length=11,
                                 stride=2, return_overflowing_tokens=True)
        finally:
            ours.truncation_side = hf.truncation_side = "right"


def test_split_into_words(both):
    ours, hf = both
    words = [t.split() for t in TEXTS]
    assert_same_call(ours, hf, words, is_split_into_words=True, return_offsets_mapping=True)
    assert_same_call(ours, hf, words[1], is_split_into_words=True)
    assert_same_call(ours, hf, words, [p.split() for p in PAIRS], is_split_into_words=True,
                     padding=True)
    got, expected = ours(words, is_split_into_words=True), hf(words, is_split_into_words=True)
    for i in range(len(words)):
        assert got.word_ids(i) == expected.word_ids(i)


def test_alignment_methods(both):
    ours, hf = both
    got, expected = ours(TEXTS, PAIRS, return_offsets_mapping=True), hf(TEXTS, PAIRS)
    for i, (text, pair) in enumerate(zip(TEXTS, PAIRS)):
        assert got.word_ids(i) == expected.word_ids(i)
        assert got.sequence_ids(i) == expected.sequence_ids(i)
        assert got.tokens(i) == expected.tokens(i)
        for sequence, s in ((0, text), (1, pair)):
            for c in range(len(s) + 1):
                assert got.char_to_token(i, c, sequence_index=sequence) == \
                    expected.char_to_token(i, c, sequence_index=sequence), (i, c, sequence)
    single, reference = ours(TEXTS[0]), hf(TEXTS[0])
    assert [single.char_to_token(c) for c in range(14)] == \
        [reference.char_to_token(c) for c in range(14)]
    assert single.input_ids == reference.input_ids  # attribute access


def test_tokenize_convert_and_sizes(both):
    ours, hf = both
    for text in TEXTS:
        tokens = ours.tokenize(text)
        assert tokens == hf.tokenize(text)
        assert ours.convert_tokens_to_ids(tokens) == hf.convert_tokens_to_ids(tokens)
        ids = ours.convert_tokens_to_ids(tokens)
        assert ours.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)
    assert ours.convert_tokens_to_ids("no-such-token") == hf.convert_tokens_to_ids("no-such-token")
    assert ours.vocab_size == hf.vocab_size and len(ours) == len(hf)
    for role in ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token", "bos_token",
                 "eos_token"):
        assert getattr(ours, role) == getattr(hf, role), role
        assert getattr(ours, role + "_id") == getattr(hf, role + "_id"), role
    assert sorted(ours.all_special_tokens) == sorted(hf.all_special_tokens)
    assert sorted(ours.all_special_ids) == sorted(hf.all_special_ids)


def test_template_helpers(both):
    """transformers 4's names (5 dropped them from fast tokenizers): the template on ids."""
    ours, hf = both
    for text, pair in [("hello there", None), ("hello there", "a b"), ("x", "y")]:
        a = hf.encode(text, add_special_tokens=False)
        b = None if pair is None else hf.encode(pair, add_special_tokens=False)
        expected = hf(text, pair, return_special_tokens_mask=True)
        assert ours.build_inputs_with_special_tokens(a, b) == expected["input_ids"]
        assert ours.create_token_type_ids_from_sequences(a, b) == expected["token_type_ids"]
        assert ours.get_special_tokens_mask(a, b) == expected["special_tokens_mask"]
        assert ours.num_special_tokens_to_add(b is not None) == hf.num_special_tokens_to_add(b is not None)
        inputs = ours.prepare_for_model(a, b)
        assert inputs["input_ids"] == expected["input_ids"]
        assert inputs.sequence_ids() == expected.sequence_ids()
    assert ours.get_special_tokens_mask(expected["input_ids"], already_has_special_tokens=True) == \
        expected["special_tokens_mask"]


def test_decode_like_transformers(both, corpora):
    ours, hf = both
    texts = TEXTS + corpora["sst2/dev.tsv"][:200]
    ids = hf(texts)["input_ids"]
    for skip, clean in itertools.product((False, True), (None, False, True)):
        assert ours.batch_decode(ids, skip_special_tokens=skip,
                                 clean_up_tokenization_spaces=clean) == \
            hf.batch_decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean), \
            (skip, clean)
    assert ours.decode(ids[0][1]) == hf.decode(ids[0][1])  # one id


def test_added_tokens_like_tokenizers(reference_vocab):
    """add_tokens / add_special_tokens with tokenizers' AddedToken flags, in the middle of text."""
    from tokenizers import AddedToken as RustAddedToken
    from transformers import BertTokenizerFast

    vocab_file, lowercase = reference_vocab
    ours = WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase)
    hf = BertTokenizerFast(str(vocab_file), do_lower_case=lowercase)
    flags = [dict(content="NewWord"), dict(content="zz", single_word=True),
             dict(content="<l>", lstrip=True), dict(content="<r>", rstrip=True),
             dict(content="Cased", normalized=False), dict(content="hello")]
    assert ours.add_tokens([AddedToken(**f) for f in flags]) == \
        hf.add_tokens([RustAddedToken(**f) for f in flags])
    assert ours.add_special_tokens({"additional_special_tokens": ["<extra>"]}) == \
        hf.add_special_tokens({"additional_special_tokens": ["<extra>"]})
    texts = ["a NewWord here, newword there", "zz xzz zzx zz.", "left   <l> and <r>   right",
             "Cased cased CASED", "<extra>hello<extra> NewWordNewWord", "hello world"]
    assert len(ours) == len(hf)
    assert_same_call(ours, hf, texts, return_offsets_mapping=True, return_special_tokens_mask=True)
    got, expected = ours(texts), hf(texts)
    for i in range(len(texts)):
        assert got.word_ids(i) == expected.word_ids(i)
    ids = expected["input_ids"]
    assert ours.batch_decode(ids, skip_special_tokens=True) == \
        hf.batch_decode(ids, skip_special_tokens=True)
    assert ours.batch_decode(ids) == hf.batch_decode(ids)


def test_too_long_warning(both, caplog):
    ours, _ = both
    ours._warned_too_long = False
    with caplog.at_level(logging.WARNING, logger="minibert.tokenization.base"):
        ours("word " * 600)
        ours("word " * 600)
        ours("word " * 600, truncation=True)
    warnings = [r for r in caplog.records if "Token indices sequence length is longer" in r.message]
    assert len(warnings) == 1 and "(602 > 512)" in warnings[0].message


def test_ragged_tensors_and_bad_options(both):
    ours, _ = both
    with pytest.raises(ValueError, match="padding=True"):
        ours(TEXTS, return_tensors="np")
    with pytest.raises(ValueError, match="return_tensors"):
        ours(TEXTS, padding=True, return_tensors="pt")
    with pytest.raises(ValueError, match="padding must be"):
        ours(TEXTS, padding="sideways")
    with pytest.raises(ValueError, match="stride=5 must be less than"):
        ours("a b c d e f g h", truncation=True, max_length=6, stride=5)
    jax_batch = ours(TEXTS, padding=True, return_tensors="jax")
    assert jax_batch["input_ids"].shape == (len(TEXTS), len(ours(TEXTS, padding=True)["input_ids"][0]))


def test_never_split_and_no_basic_tokenize(reference_vocab):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab_file, lowercase = reference_vocab
    ours = WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase, do_basic_tokenize=False)
    rust = Tokenizer(models.WordPiece(dict(ours.vocab), unk_token="[UNK]"))
    rust.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    for text in TEXTS:
        e, r = ours.encode(text, add_special_tokens=False), rust.encode(text)
        assert (e.ids, e.offsets) == (r.ids, r.offsets), text

    ours = WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase, never_split=["[FOO]"])
    tokens = ours.tokenize("a [FOO] b[FOO]")
    assert tokens[1] == "[FOO]" and tokens[-1] == "[FOO]"


def test_tokenizers_backend_gives_the_same_call(both):
    ours, _ = both
    rust = WordPieceTokenizer(dict(ours.vocab), lowercase=ours.normalizer.lowercase,
                              backend="tokenizers")
    for kwargs in CALLS[:6] + CALLS[8:11]:
        got, expected = ours(TEXTS, PAIRS, **kwargs), rust(TEXTS, PAIRS, **kwargs)
        assert {k: plain(v) for k, v in got.items()} == {k: plain(v) for k, v in expected.items()}
        assert [got.word_ids(i) for i in range(len(TEXTS))] == \
            [expected.word_ids(i) for i in range(len(TEXTS))]


def test_word_starts(both):
    ours, _ = both
    ids = ours("unaffable tokenization, [MASK] ok")["input_ids"]
    starts = ours.word_starts(np.array([ids, ids]))
    tokens = ours.convert_ids_to_tokens(ids)
    assert starts.shape == (2, len(ids))
    assert starts[0].tolist() == [not t.startswith("##") for t in tokens]
