"""The tokenizer's API: post-processing (special tokens, type ids, truncation, padding), batch
arrays, decode, files (vocab.txt, save/from_pretrained loadable by transformers), the optional
`tokenizers` backend and bad input -- against `tokenizers` and `transformers` where they apply."""

import itertools

import numpy as np
import pytest

from minibert.tokenization.tokenizer import WordPieceTokenizer
from minibert.tokenization.wordpiece import WordPiece, decode

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TEXTS = ["Hello, world!", "", "The quick brown fox jumps over the lazy dog.",
         "Héllo İstanbul — naïve café, 東京 and 한국어 [MASK] too", "a" * 150, "   ",
         "unaffable wordpiece tokenization ##x ## [CLS]x[SEP]"]


@pytest.fixture(scope="module")
def pair(reference_vocab):
    from tokenizers import BertWordPieceTokenizer

    vocab_file, lowercase = reference_vocab
    return (WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase),
            BertWordPieceTokenizer(str(vocab_file), lowercase=lowercase))


def fields(e):
    return e.ids, e.type_ids, e.offsets, e.attention_mask, e.tokens


def test_greedy_longest_match_first():
    vocab = {t: i for i, t in enumerate(SPECIAL + ["un", "##aff", "##able", "una", "##ff"])}
    model = WordPiece(vocab)
    # Longest first: "una" beats "un", even though un ##aff ##able would also work.
    assert model("unaffable") == ((8, 0, 3), (9, 3, 5), (7, 5, 9))
    assert model("unable") == ((1, 0, 6),)  # una, then no "##b...": the whole word is [UNK]
    assert decode(["un", "##aff", "##able", ",", "it", "said", "."]) == "unaffable, it said."


def test_special_tokens_and_type_ids(pair):
    ours, reference = pair
    for a, b in itertools.product(TEXTS, [None, *TEXTS]):
        assert fields(ours.encode(a, b)) == fields(reference.encode(a, b)), (a, b)
    e = ours.encode("", None)
    assert e.tokens == ["[CLS]", "[SEP]"] and e.offsets == [(0, 0), (0, 0)]
    e = ours.encode("a", "b")
    assert e.tokens == ["[CLS]", "a", "[SEP]", "b", "[SEP]"]
    assert e.type_ids == [0, 0, 0, 1, 1] and e.attention_mask == [1] * 5


def test_encoding_offsets_kept_flat(pair):
    """Encoding keeps its offsets flat and makes the tuples when read: padding, windows,
    assignment and dataclasses.replace see the same offsets as the reference's."""
    import dataclasses

    ours, reference = pair
    text = "Hello, world! The quick brown fox."
    e, expected = ours.encode(text), reference.encode(text)
    assert e.offsets == expected.offsets and e.offsets is e.offsets  # (made once)
    reference.enable_truncation(6, stride=2)
    reference.enable_padding(length=8)
    e = ours.encode(text, truncation=True, max_length=6, stride=2)
    ours.pad_encodings([e], "max_length", 8)  # (and its overflowing windows)
    expected = reference.encode(text)
    reference.no_truncation()
    reference.no_padding()
    assert [x.offsets for x in [e, *e.overflowing]] == \
        [x.offsets for x in [expected, *expected.overflowing]]
    moved = dataclasses.replace(e, offsets=[(s + 1, t + 1) for s, t in e.offsets])
    assert moved.offsets == [(s + 1, t + 1) for s, t in expected.offsets] and moved != e
    e.offsets = moved.offsets
    assert e == moved


def test_truncation_strategies(pair):
    ours, reference = pair
    words = "the cat sat on a mat and it was very happy today indeed".split()
    for n_a, n_b, strategy in itertools.product(
            range(7), [None, *range(7)], ["longest_first", "only_first", "only_second"]):
        a, b = " ".join(words[:n_a]), None if n_b is None else " ".join(words[n_a:n_a + n_b])
        n_special = 2 if b is None else 3
        for max_length in range(n_special, 14):
            reference.enable_truncation(max_length, strategy=strategy)
            try:
                expected = fields(reference.encode(a, b))
            except Exception:
                with pytest.raises(ValueError, match="too short|needs a pair"):
                    ours.encode(a, b, max_length=max_length, truncation=strategy)
                continue
            got = ours.encode(a, b, max_length=max_length, truncation=strategy)
            assert fields(got) == expected, (a, b, strategy, max_length)
    reference.no_truncation()


def test_padding_like_tokenizers(pair):
    ours, reference = pair
    reference.enable_padding(pad_id=ours.pad_token_id, pad_token="[PAD]")
    expected = [fields(e) for e in reference.encode_batch(TEXTS)]
    assert [fields(e) for e in ours.encode_batch(TEXTS, padding=True)] == expected
    reference.enable_padding(pad_id=ours.pad_token_id, pad_token="[PAD]", length=40)
    reference.enable_truncation(40)
    expected = [fields(e) for e in reference.encode_batch(list(zip(TEXTS, TEXTS[::-1])))]
    got = ours.encode_batch(TEXTS, TEXTS[::-1], max_length=40, truncation=True,
                            padding="max_length")
    assert [fields(e) for e in got] == expected
    reference.no_padding()
    reference.no_truncation()


@pytest.mark.parametrize("padding,truncation,max_length", [
    (True, True, 128), (True, False, None), ("max_length", True, 16), (True, "only_first", 24),
    ("longest", "longest_first", 8)])
def test_batch_arrays_like_transformers(reference_vocab, tmp_path, padding, truncation,
                                        max_length):
    from transformers import BertTokenizerFast

    vocab_file, lowercase = reference_vocab
    ours = WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase)
    hf = BertTokenizerFast(str(vocab_file), do_lower_case=lowercase)
    texts = [t for t in TEXTS if t.strip()]
    for pairs in (None, texts[::-1]):
        got = ours(texts, pairs, max_length=max_length, padding=padding, truncation=truncation,
                   return_tensors="np")
        expected = hf(texts, pairs, max_length=max_length, padding=padding,
                      truncation=truncation, return_tensors="np")
        assert set(got) == {"input_ids", "token_type_ids", "attention_mask"}
        for name, array in got.items():
            assert array.dtype == np.int32
            np.testing.assert_array_equal(array, expected[name], err_msg=name)


def test_single_text_call_like_transformers(pair):
    ours, _ = pair
    assert ours("a b", return_tensors="np")["input_ids"].shape == (1, 4)
    assert len(ours("a b")["input_ids"]) == 4  # one text, no tensors: not batched
    assert [len(row) for row in ours(["a b", "a"])["input_ids"]] == [4, 3]  # ragged lists
    with pytest.raises(ValueError, match="padding"):
        ours(["a b", "a"], return_tensors="np")


def test_decode(pair, corpora):
    ours, reference = pair
    texts = corpora["wikitext/wiki.test.raw"][:400] + corpora["sst2/dev.tsv"] + TEXTS
    for text in texts:
        ids = ours.encode(text).ids
        assert ours.decode(ids, skip_special_tokens=True) == reference.decode(ids), text
        assert ours.decode(ids, skip_special_tokens=False) == \
            reference.decode(ids, skip_special_tokens=False), text


def test_save_pretrained_loads_in_transformers(pair, tmp_path, corpora):
    from transformers import BertTokenizerFast

    ours, _ = pair
    ours.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}
    hf = BertTokenizerFast.from_pretrained(str(tmp_path))
    again = WordPieceTokenizer.from_pretrained(tmp_path)
    assert again.vocab == ours.vocab
    texts = corpora["squad/questions"][:500] + TEXTS
    expected = hf(texts)["input_ids"]
    for text, ids in zip(texts, expected):
        assert ours.encode(text).ids == ids == again.encode(text).ids, text


def test_tokenizers_backend_matches_on_edge_cases(pair):
    ours, _ = pair
    n = ours.normalizer
    rust = WordPieceTokenizer(ours.vocab, lowercase=n.lowercase, backend="tokenizers")
    for a, b in itertools.product(TEXTS, [None, *TEXTS]):
        assert fields(ours.encode(a, b)) == fields(rust.encode(a, b))


# ---- bad input -------------------------------------------------------------------------------

def test_non_string_input_names_the_type(pair):
    ours, _ = pair
    with pytest.raises(TypeError, match="int"):
        ours.encode(123)
    with pytest.raises(TypeError, match="NoneType"):
        ours.encode_batch(["ok", None])
    with pytest.raises(TypeError, match="bytes"):
        ours([b"bytes"])
    with pytest.raises(TypeError, match="list"):
        ours.encode("ok", ["not", "a", "str"])


def test_vocab_without_special_tokens_fails_only_where_needed(tmp_path):
    """transformers and tokenizers accept such a vocabulary; what needs a missing token fails."""
    path = tmp_path / "vocab.txt"
    path.write_text("[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    ours = WordPieceTokenizer.from_file(path)
    assert ours.pad_token is None and ours.pad_token_id is None and ours.mask_token is None
    assert ours.encode("hello").tokens == ["[CLS]", "hello", "[SEP]"]
    assert ours(["hello", "hello hello"])["input_ids"] == [[1, 3, 2], [1, 3, 3, 2]]
    with pytest.raises(ValueError, match="no pad_token, which padding needs"):
        ours(["hello", "hello hello"], padding=True)
    path.write_text("[PAD]\n[UNK]\nhello\n", encoding="utf-8")
    ours = WordPieceTokenizer.from_file(path)
    assert ours.encode("hello", add_special_tokens=False).ids == [2]
    with pytest.raises(ValueError, match=r"needs \[CLS\] and \[SEP\]"):
        ours.encode("hello")


def test_vocab_not_utf8_names_path_and_line(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes("\n".join(SPECIAL).encode() + b"\ncaf\xe9\n")
    with pytest.raises(ValueError, match=f"{path}, line 6"):
        WordPieceTokenizer.from_file(path)


def test_max_length_smaller_than_special_tokens(pair):
    ours, _ = pair
    with pytest.raises(ValueError, match="max_length=1 leaves no room for the 2 special"):
        ours.encode("hello", max_length=1, truncation=True)
    with pytest.raises(ValueError, match="max_length=2 leaves no room for the 3 special"):
        ours.encode("hello", "world", max_length=2, truncation=True)
