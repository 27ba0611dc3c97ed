"""Reading SentencePiece `.model` files: a tiny model trained in the test with
`sentencepiece`, read by us, must give the ids of `SentencePieceProcessor` and of the
`tokenizers` pipeline that transformers' converter builds; bad files name themselves."""

import json
import re
import unicodedata

import pytest
from hypothesis import given, settings, strategies as st

from minibert.tokenization.errors import TokenizerFileError
from minibert.tokenization.metaspace import Metaspace, decode
from minibert.tokenization.sentencepiece import Precompiled, SentencePieceModel
from tests.tokenization.conftest import DATA, read_lines
from tests.tokenization.test_unicode import ALL_CHARS, text_strategy

spm = pytest.importorskip("sentencepiece")

SETTINGS = {
    "nmt_nfkc": dict(),
    "byte_fallback": dict(byte_fallback=True),
    "identity-no-prefix": dict(normalization_rule_name="identity", add_dummy_prefix=False,
                               remove_extra_whitespaces=False),
}


@pytest.fixture(scope="module")
def lines():
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    return read_lines(DATA / "tinyshakespeare" / "input.txt")


@pytest.fixture(scope="module", params=SETTINGS)
def model_file(request, lines, tmp_path_factory):
    directory = tmp_path_factory.mktemp("spm")
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(lines[:8000]) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(directory / "sp"),
                                   vocab_size=600, model_type="unigram", minloglevel=2,
                                   user_defined_symbols=[], **SETTINGS[request.param])
    return directory / "sp.model"


def our_ids(sp: SentencePieceModel, text: str, precompiled) -> list[int]:
    """Our model behind the normalizer the file asks for (the whitespace rules written out
    here; the core's normalizers run them from tokenizer.json)."""
    if precompiled:
        text = precompiled(text)[0]
    if sp.remove_extra_whitespaces:
        text = re.sub(" {2,}", " ", text.strip(" "))
    if sp.escape_whitespaces:
        text = text.replace(" ", "\u2581")
    if sp.add_dummy_prefix and sp.legacy:
        text = re.sub("\\A\u2581", "\u2581\u2581", text)
    pre = sp.pre_tokenizer()
    words = pre(text) if pre else [(text, 0, len(text))] if text else []
    return [i for word, _, _ in words for i, _, _ in sp.model(word)]


def test_ids_match_sentencepiece_and_tokenizers(model_file, lines):
    from tokenizers import Tokenizer

    sp = SentencePieceModel(model_file)
    processor = spm.SentencePieceProcessor(model_file=str(model_file))
    tokenizer = Tokenizer.from_str(json.dumps(sp.to_json()))
    texts = lines[8000:12000] + ["  Hello   world  ", "caf\u00e9 \U0001F600 x", "", " ",
                                 "\tTab\u3000and \ufb01 e\u0301 \u2460\x01", "\u2581x \u2581"]
    expected = processor.encode(texts)
    assert [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)] == expected
    precompiled = Precompiled(sp.precompiled_charsmap) if sp.precompiled_charsmap else None
    bad = [(t, processor.encode(t, out_type=str)) for t, ids in zip(texts, expected)
           if our_ids(sp, t, precompiled) != ids]
    assert not bad, f"{len(bad)} differ, first: {bad[:3]}"
    for ids in expected[:1000]:  # SentencePiece writes unk as " \u2047 "
        tokens = [sp.model.pieces[i][0] for i in ids]
        ours = decode(sp.decoder(), tokens)
        assert ours == tokenizer.decode(ids)
        assert ours == processor.decode(ids) or sp.model.unk_id in ids


def test_same_sections_as_transformers_converter(model_file):
    """transformers' own .model -> tokenizers conversion builds the same pipeline."""
    from sentencepiece import sentencepiece_model_pb2
    from transformers.convert_slow_tokenizer import SpmConverter

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    reference = SpmConverter.build_tokenizer_from_spm_proto(
        proto, [(p.piece, p.score) for p in proto.pieces])
    theirs = json.loads(reference.to_str())
    ours = SentencePieceModel(model_file).to_json()
    for section in ("normalizer", "decoder", "model"):
        assert ours[section] == theirs[section], section
    if ours["pre_tokenizer"]:  # theirs wraps it in a Sequence
        assert theirs["pre_tokenizer"]["pretokenizers"] == [ours["pre_tokenizer"]]


def test_albert_tokenizer_from_an_albert_style_file(lines, tmp_path):
    """An ALBERT-style spiece.model (<pad> <unk> [CLS] [SEP] [MASK]) read by transformers'
    AlbertTokenizerFast (offline) and by us: the same model section, and the same ids behind
    ALBERT's normalizer (``/'' -> ", NFKD, no accents, lower case; the precompiled rules are
    NFKC, a no-op on these lines) and its whitespace split."""
    from transformers import AlbertTokenizerFast

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines[:8000]) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "spiece"),
                                   vocab_size=600, model_type="unigram", minloglevel=2,
                                   pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
                                   control_symbols=["[CLS]", "[SEP]", "[MASK]"])
    albert = AlbertTokenizerFast.from_pretrained(str(tmp_path))
    sp = SentencePieceModel(tmp_path / "spiece.model")
    assert json.loads(albert.backend_tokenizer.to_str())["model"] == sp.model.to_json()
    texts = lines[8000:11000] + ["``Quoted'' Caf\u00e9  R\u00e9sum\u00e9"]
    pre = Metaspace()
    for text, expected in zip(texts, albert(texts, add_special_tokens=False)["input_ids"]):
        text = text.replace("``", '"').replace("\'\'", '"')
        text = "".join(c for c in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(c)).lower()
        ids = [i for word in text.split() for w, _, _ in pre(word) for i, _, _ in sp.model(w)]
        assert ids == expected, text


def test_special_pieces_are_added_tokens(model_file):
    sp = SentencePieceModel(model_file)
    added = {t["content"]: (t["id"], t["special"]) for t in sp.added_tokens()}
    assert added == {"<s>": (1, True), "</s>": (2, True)}
    assert sp.model.unk_id == 0 and sp.model.pieces[0][0] == "<unk>"
    if sp.byte_fallback:
        assert sp.model.byte_fallback and "<0xE2>" in sp.model.vocab


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.999])
def test_truncated_file_names_itself(model_file, tmp_path, cut):
    """Read directly or found by AutoTokenizer: one TokenizerFileError naming the file."""
    from minibert.tokenization import AutoTokenizer

    data = model_file.read_bytes()
    bad = tmp_path / "spiece.model"
    bad.write_bytes(data[:int(len(data) * cut)])
    for read in (SentencePieceModel, lambda path: AutoTokenizer.from_pretrained(path.parent)):
        with pytest.raises(TokenizerFileError, match="^" + re.escape(f"{bad}: not a")):
            read(bad)


def test_default_pipeline_through_tokenizer_json(model_file, lines):
    """from_file (AutoTokenizer's way for a directory with only a .model): the document that
    encodes like SentencePieceProcessor, run by our stages (Precompiled, the Oniguruma
    "\\A +| +\\z" rule, Metaspace, Unigram): ids and offsets of `tokenizers` on it."""
    from tokenizers import Tokenizer

    from minibert.tokenization.sentencepiece import from_file

    ours = from_file(model_file)
    reference = Tokenizer.from_str(json.dumps(SentencePieceModel(model_file).to_json()))
    texts = lines[8000:9000] + ["  Hello   world  ", "caf\u00e9 \U0001F600 x", "", " ",
                                "\tTab\u3000and \ufb01 e\u0301 \u2460\x01", "\u2581x \u2581"]
    for got, expected in zip(ours.encode_batch(texts, texts[::-1]),
                             reference.encode_batch(list(zip(texts, texts[::-1])))):
        assert (got.ids, got.offsets) == (expected.ids, expected.offsets)


def test_garbage_and_empty_files(tmp_path):
    for name, data in [("garbage.model", b"\xff\xfe not a protobuf \x00\x01" * 10),
                       ("empty.model", b""), ("text.model", b"<unk>\t0\n\xe2\x96\x81the\t-1\n")]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=re.escape(str(path))):
            SentencePieceModel(path)


def test_bpe_and_bad_scores_are_refused(tmp_path, lines):
    from sentencepiece import sentencepiece_model_pb2

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines[:3000]) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "bpe"),
                                   vocab_size=300, model_type="bpe", minloglevel=2)
    with pytest.raises(ValueError, match="model_type is BPE"):
        SentencePieceModel(tmp_path / "bpe.model")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "uni"),
                                   vocab_size=300, model_type="unigram", minloglevel=2)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString((tmp_path / "uni.model").read_bytes())
    proto.pieces[7].score = float("nan")
    (tmp_path / "nan.model").write_bytes(proto.SerializeToString())
    with pytest.raises(TokenizerFileError, match=r"nan.model: pieces\[7\] .* non-finite score"):
        SentencePieceModel(tmp_path / "nan.model")


@pytest.fixture(scope="module", params=["nmt_nfkc", "nfkc_cf"])
def charsmap_model(request, lines, tmp_path_factory):
    directory = tmp_path_factory.mktemp("charsmap")
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(lines[:3000]) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(directory / "sp"),
                                   vocab_size=400, model_type="unigram", minloglevel=2,
                                   byte_fallback=True, normalization_rule_name=request.param)
    return SentencePieceModel(directory / "sp.model")


@pytest.mark.slow
def test_precompiled_on_every_code_point(charsmap_model):
    from tokenizers import normalizers

    charsmap = charsmap_model.precompiled_charsmap
    ours, reference = Precompiled(charsmap), normalizers.Precompiled(charsmap)
    for i in range(0, len(ALL_CHARS), 1 << 14):
        text = "x".join(ALL_CHARS[i:i + (1 << 14)])
        assert ours(text)[0] == reference.normalize_str(text), f"block from U+{i:04X}"


def original_offsets(alignment, s, e):
    return (s, e) if alignment is None else (alignment[s], alignment[e - 1] + 1)


@settings(max_examples=200, deadline=None)
@given(text=text_strategy | st.text(st.sampled_from("e\u0301\ufb01\u2460 \x01\u3000\uff76a"),
                                    max_size=20))
def test_precompiled_offsets_through_a_tokenizer(charsmap_model, text):
    """Precompiled -> Metaspace -> Unigram (byte fallback): ids and offsets as `tokenizers`."""
    from tokenizers import Tokenizer

    document = charsmap_model.to_json()
    document["normalizer"] = Precompiled(charsmap_model.precompiled_charsmap).to_json()
    document["pre_tokenizer"] = Metaspace().to_json()
    document["added_tokens"] = []
    expected = Tokenizer.from_str(json.dumps(document)).encode(text, add_special_tokens=False)
    normalized, alignment = Precompiled.from_json(document["normalizer"])(text)
    pre, model = Metaspace(), charsmap_model.model
    pieces = [(i, original_offsets(alignment, *pre.piece_offsets(w, s, e, a, b)))
              for w, s, e in pre(normalized) for i, a, b in model(w)]
    assert pieces == list(zip(expected.ids, expected.offsets)), ascii(text)


def test_bad_charsmap():
    with pytest.raises(ValueError, match="precompiled_charsmap"):
        Precompiled(b"\xff\xff\x00\x00abc")


def test_from_file_through_the_tokenizer_api(lines, tmp_path):
    """sentencepiece.from_file (what AutoTokenizer calls for a .model): BERT's template from
    the [CLS]/[SEP] control pieces, ids and offsets as `tokenizers` on the same document."""
    from tokenizers import Tokenizer

    from minibert.tokenization.sentencepiece import from_file

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines[:5000]) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "spm"), vocab_size=500,
        model_type="unigram", minloglevel=2, pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
        control_symbols=["[CLS]", "[SEP]", "[MASK]"], byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False)
    ours = from_file(tmp_path / "spm.model")
    reference = Tokenizer.from_str(json.dumps(SentencePieceModel(tmp_path / "spm.model")
                                              .to_json()))
    texts = lines[5000:5500] + ["  caf\u00e9  \U0001F600 [CLS] x", "a [MASK] b", "\u2581x"]
    for text, pair in zip(texts, texts[1:] + [None]):  # (encode: "" is a pair, unlike __call__)
        got, expected = ours.encode(text, pair), reference.encode(text, pair)
        assert (got.ids, got.offsets, got.type_ids) == \
            (expected.ids, expected.offsets, expected.type_ids), text


DEBERTA_PIECES = dict(pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]",
                      eos_piece="[SEP]", unk_piece="[UNK]")
ALBERT_PIECES = dict(pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]"])
MASK_LSTRIP = {"content": "[MASK]", "lstrip": True, "rstrip": False, "normalized": False,
               "special": True, "single_word": False, "__type": "AddedToken"}


@pytest.mark.parametrize("tokenizer_class, config, options", [
    ("AlbertTokenizer", {}, ALBERT_PIECES | dict(control_symbols=["[CLS]", "[SEP]", "[MASK]"])),
    ("AlbertTokenizer", {"do_lower_case": False, "keep_accents": True},
     ALBERT_PIECES | dict(control_symbols=["[CLS]", "[SEP]", "[MASK]"], byte_fallback=True)),
    ("AlbertTokenizer", {"mask_token": MASK_LSTRIP}, ALBERT_PIECES),  # [MASK] appended
    ("DebertaV2Tokenizer", {}, DEBERTA_PIECES | dict(control_symbols=["[MASK]"],
                                                     byte_fallback=True)),
    ("DebertaV2Tokenizer", {"do_lower_case": True, "add_prefix_space": False},
     DEBERTA_PIECES | dict(control_symbols=["[MASK]"])),
    ("DebertaV2Tokenizer", {}, DEBERTA_PIECES),  # DeBERTa-v3's spm.model: [MASK] appended
    ("DebertaV2Tokenizer", {"mask_token": "<mask>", "pad_token": "<pad>"}, DEBERTA_PIECES),
    ("DebertaV2Tokenizer", {}, {}),  # <unk> <s> </s>: all five of the class's tokens appended
])
def test_transformers_class_pipelines(lines, tmp_path, tokenizer_class, config, options):
    """A directory with only the .model and tokenizer_config.json (DeBERTa-v3's layout):
    transformers' AutoTokenizer builds, for the class, exactly our document, the special
    tokens it appends after the vocabulary included; and AutoTokenizer gives its ids, type ids,
    offsets and roles."""
    from transformers import AutoTokenizer as HfAutoTokenizer

    from minibert.tokenization import AutoTokenizer

    name = "spiece" if tokenizer_class == "AlbertTokenizer" else "spm"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines[:3000]) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / name),
                                   vocab_size=400, model_type="unigram", minloglevel=2,
                                   **options)
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": tokenizer_class} | config), encoding="utf-8")
    hf = HfAutoTokenizer.from_pretrained(str(tmp_path))
    theirs = json.loads(hf.backend_tokenizer.to_str())
    ours = SentencePieceModel(tmp_path / f"{name}.model").to_json(tokenizer_class, **config)
    assert ours == theirs
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert tokenizer.special_tokens_map == hf.special_tokens_map
    assert len(tokenizer) == len(hf) and tokenizer.vocab_size == hf.vocab_size
    texts = lines[3000:3050] + ["Hello [MASK] world [MASK]x <unk> [UNK] <mask> [CLS]",
                                "  two  spaces\tand \u00e9 caf\u00e9 \U0001F600 "]
    for pair in (None, texts[::-1]):
        assert tokenizer(texts, pair, return_offsets_mapping=True) == \
            dict(hf(texts, pair, return_offsets_mapping=True))
