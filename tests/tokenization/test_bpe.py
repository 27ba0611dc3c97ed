"""The BPE model with the byte-level pre-tokenizer against `tokenizers` (models.BPE +
pre_tokenizers.ByteLevel + decoders.ByteLevel, trained in the test by its BpeTrainer): ids and
offsets on every line of the corpora and on generated Unicode text, with and without a prefix
space; the merge order on random merge tables; the model options; decoding; JSON; errors."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from minibert.tokenization.bpe import BPE
from minibert.tokenization.byte_level import ByteLevel, ByteLevelDecoder
from tests.tokenization.test_unicode import text_strategy


def encode(pre, model, text):
    """ids, offsets and tokens of `text` (no special tokens, no trimming)."""
    ids, offsets = [], []
    for word, start, end in pre(text):
        for i, a, b in model(word):
            ids.append(i)
            offsets.append(pre.piece_offsets(word, start, end, a, b))
    return ids, offsets


@pytest.fixture(scope="session")
def reference_json(corpora) -> dict:
    """A byte-level BPE tokenizer.json trained by `tokenizers` (vocab 2000) on Shakespeare and
    WikiText valid."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(corpora["tinyshakespeare"] + corpora["wikitext/wiki.valid.raw"],
                                  trainer)
    return json.loads(tokenizer.to_str())


@pytest.fixture(scope="session", params=[True, False], ids=["prefix-space", "no-prefix-space"])
def pipelines(request, reference_json):
    """(ours: (pre, model, decoder), reference Tokenizer) with add_prefix_space on or off."""
    from tokenizers import Tokenizer

    saved = dict(reference_json)
    saved["pre_tokenizer"] = dict(saved["pre_tokenizer"], add_prefix_space=request.param)
    ours = (ByteLevel.from_json(saved["pre_tokenizer"]), BPE.from_json(saved["model"]),
            ByteLevelDecoder.from_json(saved["decoder"]))
    return ours, Tokenizer.from_str(json.dumps(saved))


def assert_same(pipelines, texts):
    (pre, model, decoder), reference = pipelines
    expected = reference.encode_batch(texts, add_special_tokens=False)
    bad = [(i, texts[i][:60]) for i, e in enumerate(expected)
           if encode(pre, model, texts[i]) != (e.ids, e.offsets)]
    assert not bad, f"{len(bad)} of {len(texts)} differ, first ones: {bad[:3]}"


def test_shakespeare_and_wikitext(pipelines, corpora):
    assert_same(pipelines, corpora["tinyshakespeare"] + corpora["wikitext/wiki.test.raw"][:3000])


@pytest.mark.slow
def test_every_line_of_every_corpus(pipelines, corpora):
    for texts in corpora.values():
        assert_same(pipelines, texts)


@settings(max_examples=300, deadline=None)
@given(text=text_strategy)
def test_random_unicode_text(pipelines, text):
    (pre, model, decoder), reference = pipelines
    e = reference.encode(text, add_special_tokens=False)
    assert encode(pre, model, text) == (e.ids, e.offsets), (ascii(text), e.tokens)
    tokens = [model.ids_to_tokens[i] for i in e.ids]
    assert decoder(tokens) == reference.decode(e.ids)


def test_decode_round_trip(pipelines, corpora):
    """Byte-level BPE loses nothing: decoding the tokens gives the text back (without the
    prefix space)."""
    (pre, model, decoder), _ = pipelines
    for text in corpora["tinyshakespeare"][:2000] + corpora["squad/questions"][:2000]:
        tokens = [model.ids_to_tokens[i] for i, _ in zip(*encode(pre, model, text))]
        decoded = decoder(tokens)
        assert decoded == (" " + text if pre.add_prefix_space and text[:1] not in ("", " ")
                           else text)


def test_json_round_trip(reference_json, corpora):
    """Our sections are the reference's, and `tokenizers` loads them into the same tokenizer."""
    from tokenizers import Tokenizer

    model = BPE.from_json(reference_json["model"])
    pre = ByteLevel.from_json(reference_json["pre_tokenizer"])
    assert model.to_json() == reference_json["model"]
    rebuilt = dict(reference_json, model=model.to_json(), pre_tokenizer=pre.to_json(),
                   decoder=ByteLevelDecoder.from_json(reference_json["decoder"]).to_json())
    reloaded = Tokenizer.from_str(json.dumps(rebuilt))
    texts = corpora["squad/questions"][:3000]
    assert [e.ids for e in reloaded.encode_batch(texts, add_special_tokens=False)] == \
        [encode(pre, model, t)[0] for t in texts]
    legacy = dict(reference_json["model"], merges=[" ".join(m) for m in model.to_json()["merges"]])
    assert BPE.from_json(legacy).merges == model.merges


def test_vocab_json_and_merges_txt(reference_json, tmp_path):
    from tokenizers import models

    model = BPE.from_json(reference_json["model"])
    reference = models.BPE(reference_json["model"]["vocab"],
                           [tuple(m) for m in reference_json["model"]["merges"]])
    vocab_file, merges_file = reference.save(str(tmp_path))
    assert "#version" in open(merges_file, encoding="utf-8").readline()
    assert BPE.from_files(vocab_file, merges_file).merges == model.merges


def test_is_word_start():
    model = BPE({"Ġthe": 0, "the": 1}, [])
    assert model.is_word_start("Ġthe") and not model.is_word_start("the")


# Random merge tables: the order in which merges apply (rank, then position; stale entries
# skipped), with merges that make an existing token again and ranks out of creation order.
@st.composite
def merge_tables(draw):
    tokens = ["a", "b", "c"]
    merges = []
    for _ in range(draw(st.integers(0, 12))):
        a, b = draw(st.sampled_from(tokens)), draw(st.sampled_from(tokens))
        merges.append((a, b))
        if a + b not in tokens:
            tokens.append(a + b)
    merges = draw(st.permutations(merges))
    return {t: i for i, t in enumerate(tokens)}, merges


@settings(max_examples=400, deadline=None)
@given(table=merge_tables(), words=st.lists(st.text("abc", min_size=1, max_size=12), max_size=5))
def test_merge_order_on_random_tables(table, words):
    from tokenizers import models

    vocab, merges = table
    reference = models.BPE(vocab, merges)
    ours = BPE(vocab, merges)
    for word in words:
        assert ours(word) == tuple((t.id, *t.offsets) for t in reference.tokenize(word)), word


OPTIONS = [dict(unk_token="<unk>"), dict(unk_token="<unk>", fuse_unk=True), dict(),
           dict(continuing_subword_prefix="##"), dict(end_of_word_suffix="</w>"),
           dict(ignore_merges=True), dict(byte_fallback=True),
           dict(continuing_subword_prefix="", end_of_word_suffix=""),  # as OLMo-style files
           dict(byte_fallback=True, unk_token="<unk>", fuse_unk=True)]
BYTES = ["<0x64>", "<0xC3>", "<0xA9>", "<0xE2>"]  # d, é; € (E2 82 AC) lacks two


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.items())))
@settings(max_examples=100, deadline=None)
@given(words=st.lists(st.text("abcdé€", min_size=1, max_size=10), max_size=5), data=st.data())
def test_options_as_the_reference(options, words, data):
    """"d", "é", "€" are not in the vocabulary: unk, fused unk, or dropped without an unk
    token; byte tokens for "d" and "é" (not "€") with byte fallback."""
    from tokenizers import models

    prefix, suffix = options.get("continuing_subword_prefix", ""), options.get(
        "end_of_word_suffix", "")
    tokens = ["<unk>", "a", "b", "c"] + [prefix + c for c in "abc" if prefix] + [
        c + suffix for c in "abc" if suffix] + BYTES * options.get("byte_fallback", False)
    merges = []
    for _ in range(data.draw(st.integers(0, 10))):
        a = data.draw(st.sampled_from(tokens[1:]))
        b = data.draw(st.sampled_from([t for t in tokens[1:] if t.startswith(prefix)]))
        merges.append((a, b))
        tokens.append(a + b[len(prefix):])
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    reference = models.BPE(vocab, merges, **options)
    ours = BPE(vocab, merges, **options)
    for word in words:
        char = [k for k, c in enumerate(word) for _ in c.encode()]  # the reference's are bytes
        expected = tuple((t.id, char[t.offsets[0]], char[t.offsets[1] - 1] + 1)
                         for t in reference.tokenize(word))
        assert ours(word) == expected, word


VOCAB = {"a": 0, "b": 1, "ab": 2}


@pytest.mark.parametrize("change, message", [
    (dict(merges=["a b", "a  b"]), r"model.merges\[1\]: expected 'a b' or \[a, b\]"),
    (dict(merges=[["a"]]), r"model.merges\[0\]: expected 'a b'"),
    (dict(merges=[["a", "c"]]), r"model.merges\[0\]: 'a' 'c': 'c' is not in the vocab"),
    (dict(merges=[["b", "a"]]), r"'ba' is not in the vocab"),
    (dict(vocab={"a": 0, "b": 0}), "id 0 is given to both 'a' and 'b'"),
    (dict(vocab={"a": "0"}), r"model.vocab\['a'\]: expected a non-negative integer id"),
    (dict(type="WordPiece"), "model.type: expected 'BPE'"),
    (dict(unk_token="<unk>"), "unk_token '<unk>' is not in the vocab"),
    (dict(dropout=0.1), "dropout is not supported"),
])
def test_json_errors_name_file_and_section(change, message):
    section = {"type": "BPE", "vocab": VOCAB, "merges": ["a b"]} | change
    with pytest.raises(ValueError, match=message) as error:
        BPE.from_json(section, "ckpt/tokenizer.json")
    assert str(error.value).startswith("ckpt/tokenizer.json, model")


def test_file_errors_name_file_and_line(tmp_path):
    vocab, merges = tmp_path / "vocab.json", tmp_path / "merges.txt"
    vocab.write_text(json.dumps(VOCAB), encoding="utf-8")
    merges.write_text("#version: 0.2\na b\nab\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges.txt, line 3: expected 'a b'"):
        BPE.from_files(vocab, merges)
    merges.write_text("#version: 0.2\na b\nb a\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges.txt, line 3: 'b' 'a': 'ba' is not in the vocab"):
        BPE.from_files(vocab, merges)
    merges.write_text("#version: 0.2\r\na b\r\n", encoding="utf-8")
    assert BPE.from_files(vocab, merges).merges == {(0, 1): (0, 2)}
    vocab.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="vocab.json: not a JSON vocabulary"):
        BPE.from_files(vocab, merges)
