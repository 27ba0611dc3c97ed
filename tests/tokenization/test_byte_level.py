"""The byte-level pre-tokenizer and decoder against `tokenizers`: the byte table, GPT-2's regex
on every code point, offsets trimming (the ByteLevel post-processor), decoding of arbitrary
bytes, and the JSON sections."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from minibert.tokenization.byte_level import (
    BYTES_CHAR, NEW_LETTERS, NEW_NUMBERS, SPACES, ByteLevel, ByteLevelDecoder, bytes_to_unicode,
    process_offsets)
from minibert.tokenization.charsets import characters

ALL_CHARS = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
SURROGATES = characters("D800-DFFF")


def test_bytes_to_unicode_is_gpt2s():
    from transformers.convert_slow_tokenizer import bytes_to_unicode as reference

    assert bytes_to_unicode() == reference()
    assert BYTES_CHAR[ord(" ")] == "Ġ" and BYTES_CHAR[ord("\n")] == "Ċ"
    assert set(ByteLevel.alphabet()) == set(reference().values())


def assert_classes(chars):
    """Each character next to a letter, a digit, a symbol and a space: the words tell its class
    (\\p{L}, \\p{N}, \\s or other), which must be the reference's (Oniguruma, Unicode 16)."""
    from tokenizers import pre_tokenizers

    reference = pre_tokenizers.ByteLevel(add_prefix_space=False)
    ours = ByteLevel(add_prefix_space=False)
    for glue in "x1. ":
        for i in range(0, len(chars), 1 << 16):
            text = glue.join(chars[i:i + (1 << 16)])
            expected = [(w, a, b) for w, (a, b) in reference.pre_tokenize_str(text)]
            assert ours(text) == expected, (glue, f"block from U+{ord(chars[i]):04X}")


@pytest.mark.slow
def test_every_code_point():
    assert_classes(ALL_CHARS)


def test_characters_newer_than_pythons_unicode():
    """The letters and digits Python 3.11 does not know yet, and whitespace, with neighbours."""
    chars = sorted(characters(NEW_LETTERS + NEW_NUMBERS + SPACES))
    assert_classes(sorted({chr(ord(c) + d) for c in chars for d in (-1, 0, 1)} - SURROGATES))


@pytest.mark.parametrize("use_regex", [True, False])
@settings(max_examples=100, deadline=None)
@given(text=st.text(st.sampled_from("ab1 \n\t'é€😀") | st.characters(codec="utf-8"),
                    max_size=30))
def test_words_and_spans(use_regex, text):
    from tokenizers import pre_tokenizers

    for add_prefix_space in (True, False):
        reference = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space,
                                             use_regex=use_regex)
        ours = ByteLevel(add_prefix_space=add_prefix_space, use_regex=use_regex)
        assert ours(text) == [(w, a, b) for w, (a, b) in reference.pre_tokenize_str(text)]


def test_contractions_and_prefix_space():
    words = [w for w, _, _ in ByteLevel(add_prefix_space=True)("I'm  here\n")]
    assert words == ["ĠI", "'m", "Ġ", "Ġhere", "Ċ"]
    assert ByteLevel(add_prefix_space=True)("Hello") == [("ĠHello", 0, 5)]
    assert ByteLevel(add_prefix_space=True)(" Hello") == [("ĠHello", 0, 6)]
    assert ByteLevel(add_prefix_space=True)("") == []


def test_piece_offsets_of_a_split_character():
    """Both byte pieces of "é" (C3 A9) span the character; the added space spans "é" too."""
    pre = ByteLevel(add_prefix_space=True)
    [(word, start, end)] = pre("é")
    assert (word, start, end) == ("ĠÃ©", 0, 1)
    assert [pre.piece_offsets(word, start, end, a, a + 1) for a in range(3)] == [(0, 1)] * 3


def trimmed_reference(add_prefix_space):
    """A byte-level tokenizer whose vocabulary is the 256 bytes, spaces merged in runs, with the
    ByteLevel post-processor trimming offsets."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    merges = [("Ġ", "Ġ"), ("ĠĠ", "ĠĠ"), ("Ġ", "a"), ("a", "Ġ"), ("Ġa", "Ġ")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tokenizer = Tokenizer(models.BPE(vocab, merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space,
                                                       use_regex=False)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=True,
                                                    add_prefix_space=add_prefix_space)
    untrimmed = Tokenizer.from_str(tokenizer.to_str())
    untrimmed.post_processor = None
    return tokenizer, untrimmed


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from("a  \n\té"), max_size=20))
def test_process_offsets_is_the_post_processors_trimming(text):
    for add_prefix_space in (True, False):
        trimmed, untrimmed = trimmed_reference(add_prefix_space)
        raw = untrimmed.encode(text)
        expected = trimmed.encode(text)
        assert process_offsets(raw.tokens, raw.offsets, add_prefix_space) == expected.offsets, \
            (ascii(text), raw.tokens)


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.sampled_from("a  \n\té"), max_size=12),
       pair=st.text(st.sampled_from("a  \n\té"), max_size=12))
def test_process_offsets_per_sequence_is_robertas_trimming(text, pair):
    """RobertaProcessing trims A and B each on its own, before adding <s> </s> </s> </s>."""
    from tokenizers import processors

    for add_prefix_space in (True, False):
        roberta, untrimmed = trimmed_reference(add_prefix_space)
        roberta.add_special_tokens(["<s>", "</s>"])
        roberta.post_processor = processors.RobertaProcessing(
            ("</s>", roberta.token_to_id("</s>")), ("<s>", roberta.token_to_id("<s>")),
            trim_offsets=True, add_prefix_space=add_prefix_space)
        expected = roberta.encode(text, pair)
        ours = []
        for sequence in (text, pair):
            raw = untrimmed.encode(sequence)
            ours.append(process_offsets(raw.tokens, raw.offsets, add_prefix_space))
        a, b = ours
        assert expected.offsets == [(0, 0), *a, (0, 0), (0, 0), *b, (0, 0)], \
            (ascii(text), ascii(pair))


any_bytes = st.binary(max_size=12).map(lambda b: "".join(BYTES_CHAR[x] for x in b))


@settings(max_examples=300, deadline=None)
@given(tokens=st.lists(any_bytes | st.sampled_from(["<s>", "€uro", "ĠĠ", "Ġ€"]), max_size=8))
def test_decoder_replaces_invalid_utf8_as_the_reference(tokens):
    """Invalid UTF-8 (split characters, stray continuation bytes) becomes U+FFFD exactly as
    Rust's from_utf8_lossy does; tokens outside the byte alphabet are kept as they are."""
    from tokenizers import decoders

    assert ByteLevelDecoder()(tokens) == decoders.ByteLevel().decode(tokens)


def test_json_sections_are_the_references():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    for add_prefix_space, trim_offsets, use_regex in [(True, True, True), (False, False, False),
                                                      (False, True, True)]:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
            add_prefix_space=add_prefix_space, trim_offsets=trim_offsets, use_regex=use_regex)
        tokenizer.decoder = decoders.ByteLevel()
        saved = json.loads(tokenizer.to_str())
        pre = ByteLevel.from_json(saved["pre_tokenizer"])
        assert pre.to_json() == saved["pre_tokenizer"]
        assert list(json.dumps(pre.to_json())) == list(json.dumps(saved["pre_tokenizer"]))
        assert ByteLevelDecoder.from_json(saved["decoder"]).to_json() == saved["decoder"]


@pytest.mark.parametrize("section, message", [
    ({"type": "Metaspace"}, "expected a ByteLevel section"),
    ({"type": "ByteLevel", "trim_offsets": True}, "missing field 'add_prefix_space'"),
    ({"type": "ByteLevel", "add_prefix_space": 1, "trim_offsets": True}, "add_prefix_space"),
])
def test_json_errors_name_the_section(section, message):
    with pytest.raises(ValueError, match=message) as error:
        ByteLevel.from_json(section, "dir/tokenizer.json, pre_tokenizer")
    assert "dir/tokenizer.json, pre_tokenizer" in str(error.value)
    assert ByteLevel.from_json({"type": "ByteLevel", "add_prefix_space": False,
                                "trim_offsets": True}).use_regex  # serde default
