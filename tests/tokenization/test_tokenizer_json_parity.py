"""Issue 16's target, end to end through tokenizer.json: for each model (WordPiece behind BERT's
template; byte-level BPE as RoBERTa and ModernBERT set it up; Unigram as ALBERT, with and
without byte fallback) a reference is built and trained with `tokenizers`, saved as
transformers 5 saves it (tokenizer.json + tokenizer_config.json), and read back by
`minibert.AutoTokenizer.from_pretrained`. Ids, type ids, offsets, special tokens mask and word
ids must equal `tokenizers`' Encoding on every corpus line, alone and in pairs, with truncation
windows, and on generated Unicode text; transformers' `__call__` on some; what minibert saves
must load in `tokenizers` with the same ids; decoding must agree."""

import json

import pytest
from hypothesis import given, settings, strategies as st

import minibert
from tests.tokenization.conftest import DATA, WIKI, read_lines
from tests.tokenization.test_unicode import text_strategy

NAMES = ["bert", "roberta", "modernbert", "albert", "albert-byte-fallback"]


@pytest.fixture(scope="module")
def lines() -> list[str]:
    """Every line of Shakespeare and the first 3000 of WikiText's test split."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    return read_lines(DATA / "tinyshakespeare" / "input.txt") + \
        read_lines(WIKI / "wiki.test.raw")[:3000]


def bert(training):
    """BERT: BertNormalizer, BertPreTokenizer, WordPiece, [CLS] $A [SEP] $B:1 [SEP]:1."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer

    rust = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    rust.normalizer = normalizers.BertNormalizer(lowercase=True)
    rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    rust.decoder = decoders.WordPiece()
    rust.train_from_iterator(training, WordPieceTrainer(
        vocab_size=3000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False))
    rust.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", rust.token_to_id("[CLS]")), ("[SEP]", rust.token_to_id("[SEP]"))])
    return rust, dict(unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                      mask_token="[MASK]")


def byte_level_bpe(training, modern: bool):
    """RoBERTa: ByteLevel(add_prefix_space=True), <s> A </s></s> B </s>, <mask> taking the space
    before it. ModernBERT: NFC, ByteLevel(add_prefix_space=False), [CLS] $A [SEP], [MASK] with
    lstrip (tests/tasks/test_fill_mask_bpe.py)."""
    from tokenizers import (AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers,
                            processors)
    from tokenizers.trainers import BpeTrainer

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"] if modern else \
        ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    rust = Tokenizer(models.BPE())
    if modern:
        rust.normalizer = normalizers.NFC()
    rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=not modern)
    rust.decoder = decoders.ByteLevel()
    rust.train_from_iterator(training, BpeTrainer(
        vocab_size=2000, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    mask = specials[-1]
    rust.add_special_tokens([AddedToken(mask, lstrip=True, special=True)])
    if modern:
        cls, sep = "[CLS]", "[SEP]"
        rust.post_processor = processors.TemplateProcessing(
            single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0",
            special_tokens=[(t, rust.token_to_id(t)) for t in (cls, sep)])
        roles = dict(unk_token="[UNK]", pad_token="[PAD]")
    else:
        cls, sep = "<s>", "</s>"
        rust.post_processor = processors.RobertaProcessing(
            (sep, rust.token_to_id(sep)), (cls, rust.token_to_id(cls)), trim_offsets=True,
            add_prefix_space=True)
        roles = dict(unk_token="<unk>", pad_token="<pad>", bos_token=cls, eos_token=sep)
    return rust, roles | dict(cls_token=cls, sep_token=sep, mask_token=mask)


def albert(training, byte_fallback: bool):
    """ALBERT: ``/'' -> ", NFKD, no accents, lower case; WhitespaceSplit + Metaspace; Unigram;
    BERT's template. With byte fallback: the 256 <0xXX> pieces added to the trained model."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import UnigramTrainer

    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    rust = Tokenizer(models.Unigram())
    rust.normalizer = normalizers.Sequence([
        normalizers.Replace("``", '"'), normalizers.Replace("''", '"'), normalizers.NFKD(),
        normalizers.StripAccents(), normalizers.Lowercase()])
    rust.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                  pre_tokenizers.Metaspace()])
    rust.decoder = decoders.Metaspace()
    rust.train_from_iterator(training, UnigramTrainer(
        vocab_size=2000, special_tokens=specials, unk_token="<unk>", show_progress=False))
    if byte_fallback:
        model = json.loads(rust.to_str())["model"]
        pieces = [tuple(p) for p in model["vocab"]]
        pieces += [(f"<0x{b:02X}>", -20.0) for b in range(256)]
        rust.model = models.Unigram(pieces, model["unk_id"], byte_fallback=True)
        rust.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace()])
    rust.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", rust.token_to_id("[CLS]")), ("[SEP]", rust.token_to_id("[SEP]"))])
    return rust, dict(unk_token="<unk>", pad_token="<pad>", cls_token="[CLS]", sep_token="[SEP]",
                      mask_token="[MASK]")


BUILDERS = {"bert": bert, "roberta": lambda t: byte_level_bpe(t, False),
            "modernbert": lambda t: byte_level_bpe(t, True), "albert": lambda t: albert(t, False),
            "albert-byte-fallback": lambda t: albert(t, True)}


@pytest.fixture(scope="module", params=NAMES)
def saved(request, lines, tmp_path_factory):
    """(name, directory as transformers 5 saves it, the `tokenizers` reference read from it,
    minibert's tokenizer from AutoTokenizer)."""
    import transformers
    from tokenizers import Tokenizer

    training = lines[:12000:2]  # half the lines the others are tested on are unseen
    rust, roles = BUILDERS[request.param](training)
    directory = tmp_path_factory.mktemp(request.param)
    transformers.PreTrainedTokenizerFast(tokenizer_object=rust, **roles).save_pretrained(directory)
    assert sorted(p.name for p in directory.iterdir()) == ["tokenizer.json",
                                                           "tokenizer_config.json"]
    reference = Tokenizer.from_file(str(directory / "tokenizer.json"))
    return request.param, directory, reference, minibert.AutoTokenizer.from_pretrained(directory)


def fields(e):
    return e.ids, e.type_ids, e.offsets, e.special_tokens_mask, e.word_ids


def differences(ours, reference, texts, pairs=None, **options):
    """[(text, pair, ours, expected)] where the encodings (and their windows) differ."""
    got = ours.encode_batch(texts, pairs, **options)
    expected = reference.encode_batch(texts if pairs is None else list(zip(texts, pairs)))
    out = []
    for i, (a, b) in enumerate(zip(got, expected)):
        ours_all = [fields(e) for e in [a, *a.overflowing]]
        theirs_all = [fields(e) for e in [b, *b.overflowing]]
        if ours_all != theirs_all:
            out.append((texts[i], None if pairs is None else pairs[i], ours_all, theirs_all))
    return out


def assert_same(ours, reference, texts, pairs=None, **options):
    bad = differences(ours, reference, texts, pairs, **options)
    assert not bad, f"{len(bad)} of {len(texts)} differ; first: {bad[0]}"


def test_corpus_lines_singles_and_pairs(saved, lines):
    """Every Shakespeare line once, in pairs of consecutive lines; WikiText's first 3000 in
    pairs and alone. (Every line of every corpus alone and with the next:
    test_every_corpus_line.)"""
    name, _, reference, ours = saved
    shakespeare, wiki = lines[:-3000], lines[-3000:]
    assert_same(ours, reference, shakespeare[0::2], shakespeare[1::2])
    assert_same(ours, reference, wiki[0::2], wiki[1::2])
    assert_same(ours, reference, wiki)


def test_truncation_windows(saved, lines):
    """Long texts cut into windows with a stride, alone and with a short or a long partner."""
    from tokenizers import Tokenizer

    name, directory, _, ours = saved
    long = [" ".join(lines[i:i + 6]) for i in range(100, 400, 6)]
    short = [line[:12] for line in lines[1000:1050]]
    for max_length, stride, strategy, texts, pairs in (
            (24, 4, "longest_first", long, long[::-1]), (40, 0, "longest_first", long, None),
            (40, 6, "only_first", long, short), (40, 2, "only_first", long, None),
            (32, 8, "only_second", short, long)):
        reference = Tokenizer.from_file(str(directory / "tokenizer.json"))
        reference.enable_truncation(max_length, stride=stride, strategy=strategy)
        assert_same(ours, reference, texts, pairs, max_length=max_length,
                    truncation=strategy, stride=stride)


def test_transformers_call(saved, lines):
    """transformers' own AutoTokenizer on the same directory: the arrays, word ids."""
    from transformers import AutoTokenizer as HfAutoTokenizer

    name, directory, _, ours = saved
    hf = HfAutoTokenizer.from_pretrained(str(directory))
    texts = lines[2000:2300] + ["The capital of France is [MASK].", "Fill the <mask> here."]
    pairs = texts[1:] + ["x"]
    options = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    for pair in (None, pairs):
        got, expected = ours(texts, pair, **options), hf(texts, pair, **options)
        assert got == dict(expected)
        assert [got.word_ids(i) for i in range(len(texts))] == \
            [expected.word_ids(i) for i in range(len(texts))]
    padded = dict(padding=True, truncation=True, max_length=32, return_tensors="np")
    got, expected = ours(texts, pairs, **padded), hf(texts, pairs, **padded)
    assert got.keys() == expected.keys()
    assert all((got[k] == expected[k]).all() for k in got)


def test_saved_by_minibert_loads_in_tokenizers(saved, lines, tmp_path):
    from tokenizers import Tokenizer

    name, _, reference, ours = saved
    ours.save_pretrained(tmp_path)
    again = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    texts = lines[:3000]
    assert [e.ids for e in again.encode_batch(list(zip(texts, texts[::-1])))] == \
        [e.ids for e in reference.encode_batch(list(zip(texts, texts[::-1])))]
    assert [e.ids for e in minibert.AutoTokenizer.from_pretrained(tmp_path).encode_batch(texts)] \
        == [e.ids for e in reference.encode_batch(texts)]


def test_decode(saved, lines):
    name, _, reference, ours = saved
    texts = lines[5000:6000] + ["naïve café, 東京 \U0001F600 [MASK] <mask>"]
    for encoding in reference.encode_batch(list(zip(texts, texts[1:] + ["x"]))):
        for skip in (True, False):
            assert ours.decode(encoding.ids, skip_special_tokens=skip,
                               clean_up_tokenization_spaces=False) == \
                reference.decode(encoding.ids, skip_special_tokens=skip), encoding.ids


@settings(max_examples=100, deadline=None)
@given(text=text_strategy, pair=st.none() | text_strategy)
def test_random_unicode_text(saved, text, pair):
    name, _, reference, ours = saved
    a, b = ours.encode(text, pair), reference.encode(text, pair)
    assert fields(a) == fields(b), (name, ascii(text), ascii(pair))
    assert ours.decode(a.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False) == \
        reference.decode(b.ids, skip_special_tokens=True)


@pytest.mark.slow
def test_every_corpus_line(saved, corpora):
    name, _, reference, ours = saved
    texts = [t for corpus in corpora.values() for t in corpus]
    assert_same(ours, reference, texts)
    assert_same(ours, reference, texts[:-1], texts[1:])
