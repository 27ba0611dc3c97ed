"""tokenizer.json in and out (files.py): a WordPiece file that `tokenizers` writes gives our
tokenizer its ids and offsets, ours loads in `tokenizers` with the same ids; the simple
normalizers and pre-tokenizers against `tokenizers`' own; errors naming file and section."""

import json

import pytest

from minibert.tokenization import files, normalize, pretokenize
from minibert.tokenization.tokenizer import WordPieceTokenizer

TEXTS = ["Hello, world!", "", "Héllo İstanbul — naïve café, 東京 and 한국어 [MASK] too",
         "unaffable wordpiece tokenization ##x [CLS]x[SEP]", "  tabs\tand  spaces  "]


def same(ours, rust, texts, pairs=None):
    got = ours.encode_batch(texts, pairs)
    expected = rust.encode_batch(texts if pairs is None else list(zip(texts, pairs)))
    for text, a, b in zip(texts, got, expected):
        assert (a.ids, a.type_ids, a.offsets, a.tokens) == (b.ids, b.type_ids, b.offsets, b.tokens), \
            text


def test_wordpiece_round_trip_with_tokenizers(reference_vocab, tmp_path, corpora):
    from tokenizers import BertWordPieceTokenizer, Tokenizer as RustTokenizer

    vocab_file, lowercase = reference_vocab
    texts = corpora["squad/questions"][:300] + corpora["wikitext/wiki.test.raw"][:300] + TEXTS

    reference = BertWordPieceTokenizer(str(vocab_file), lowercase=lowercase)
    reference.save(str(tmp_path / "theirs.json"))
    ours = files.load(tmp_path / "theirs.json")
    same(ours, reference, texts)
    same(ours, reference, texts, texts[::-1])
    assert ours.pad_token == "[PAD]" and ours.mask_token == "[MASK]"  # by their usual names

    ours.save(tmp_path / "ours.json")
    again = RustTokenizer.from_file(str(tmp_path / "ours.json"))
    same(ours, again, texts, texts[::-1])
    assert json.loads((tmp_path / "ours.json").read_text()) == \
        json.loads((tmp_path / "theirs.json").read_text())

    preset = WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase)
    assert preset.to_json() == ours.to_json()


NORMALIZED = ["Héllo İstanbul ΣΑΣ naïve café", "e\u0301 a\u0308\u0323 ﬁ ① Å", "  padded  text ",
              "xx and xxx", "", "ǅ ß"]


def normalizer_pairs():
    from tokenizers import Regex, normalizers as rust

    return [
        (normalize.UnicodeNormalizer("NFC"), rust.NFC()),
        (normalize.UnicodeNormalizer("NFD"), rust.NFD()),
        (normalize.UnicodeNormalizer("NFKC"), rust.NFKC()),
        (normalize.UnicodeNormalizer("NFKD"), rust.NFKD()),
        (normalize.Lowercase(), rust.Lowercase()),
        (normalize.Sequence([normalize.UnicodeNormalizer("NFD"), normalize.StripAccents()]),
         rust.Sequence([rust.NFD(), rust.StripAccents()])),
        (normalize.Replace("x", "yz"), rust.Replace("x", "yz")),
        (normalize.Replace({"Regex": "x+"}, "_"), rust.Replace(Regex("x+"), "_")),
        (normalize.Strip(), rust.Strip()),
        (normalize.Strip(True, False), rust.Strip(left=True, right=False)),
        (normalize.Prepend("▁"), rust.Prepend("▁")),
        (normalize.BertNormalizer(), rust.BertNormalizer()),
    ]


def test_normalizers_like_tokenizers():
    for ours, rust in normalizer_pairs():
        section = json.loads(rust.__getstate__())
        assert ours.to_json() == section
        again = files._read(files.NORMALIZERS, section, "tokenizer.json, normalizer", "normalizer")
        for text in NORMALIZED:
            expected = rust.normalize_str(text)
            assert ours(text)[0] == expected == again(text)[0], (section, text)
            normalized, alignment = ours(text)
            assert alignment is None or len(alignment) == len(normalized)


def test_pre_tokenizers_like_tokenizers():
    from tokenizers import pre_tokenizers as rust

    texts = ["Hello, world! It's 3.14 -- ok?", "  spaced\tout\nlines ", "a+b=c", ""]
    pairs = [(pretokenize.Whitespace(), rust.Whitespace()),
             (pretokenize.WhitespaceSplit(), rust.WhitespaceSplit()),
             (pretokenize.BertPreTokenizer(), rust.BertPreTokenizer()),
             (pretokenize.Punctuation(), rust.Punctuation()),
             (pretokenize.Sequence([pretokenize.WhitespaceSplit(), pretokenize.BertPreTokenizer()]),
              rust.Sequence([rust.WhitespaceSplit(), rust.BertPreTokenizer()]))]
    for ours, reference in pairs:
        section = json.loads(reference.__getstate__())
        assert ours.to_json() == section
        files._read(files.PRE_TOKENIZERS, section, "tokenizer.json, pre_tokenizer", "pre-tokenizer")
        for text in texts:
            assert ours(text) == [(w, a, b) for w, (a, b) in reference.pre_tokenize_str(text)], text


def test_other_wordpiece_pipelines_load_and_match(tmp_path):
    """A WordPiece model behind other stages (NFKC + Lowercase, Whitespace, a template)."""
    from tokenizers import Tokenizer as RustTokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(["[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", ",",
                                         "!", "fi", "##ne", "cafe", "café"])}
    rust = RustTokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    rust.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    rust.pre_tokenizer = pre_tokenizers.Whitespace()
    rust.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    rust.add_special_tokens(["[CLS]", "[SEP]"])
    rust.save(str(tmp_path / "tokenizer.json"))
    ours = files.load(tmp_path / "tokenizer.json")
    texts = ["Hello, Worlds!", "ﬁne CAFÉ café", "HELLO[SEP]world", "unknown words"]
    same(ours, rust, texts)
    same(ours, rust, texts, texts[::-1])


# ---- bad files -----------------------------------------------------------------------------

def write(tmp_path, data) -> str:
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(path)


def bert_json():
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"])}
    return {"version": "1.0", "added_tokens": [], "normalizer": {"type": "BertNormalizer"},
            "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": None, "decoder": None,
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": vocab}}


BPE_MODEL = {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
UNIGRAM_MODEL = {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]}


@pytest.mark.parametrize("change,message", [
    (lambda d: d["model"].update(type="Foo"),
     "tokenizer.json, model.type: unknown model 'Foo' (known: BPE, Unigram, WordPiece)"),
    (lambda d: d.update(normalizer={"type": "Nope"}),
     "tokenizer.json, normalizer.type: unknown normalizer 'Nope' (known: BertNormalizer, "),
    (lambda d: d.update(normalizer={"type": "Sequence", "normalizers": [{"type": "NFC"}, 3]}),
     "tokenizer.json, normalizer.normalizers[1]: expected an object"),
    (lambda d: d.update(pre_tokenizer={"type": "Split"}),
     "tokenizer.json, pre_tokenizer.type: unknown pre-tokenizer 'Split'"),
    (lambda d: d.update(decoder={"type": "CTC"}), "tokenizer.json, decoder.type: unknown decoder 'CTC'"),
    (lambda d: d.update(post_processor={"type": "Bogus"}),
     "tokenizer.json, post_processor.type: unknown post-processor 'Bogus'"),
    (lambda d: d.update(added_tokens=[{"content": "x"}]), "tokenizer.json, added_tokens[0]: KeyError"),
    (lambda d: d["model"].update(vocab=["a", "b"]), "tokenizer.json, model.vocab: expected an object"),
    (lambda d: d.pop("model"), "tokenizer.json: expected an object with a \"model\" section"),
    (lambda d: d.update(model=BPE_MODEL | {"merges": ["a b", "a b c"]}),
     "tokenizer.json, model.merges[1]: expected 'a b' or [a, b], got 'a b c'"),
    (lambda d: d.update(model=BPE_MODEL | {"merges": [["a", "b"], ["a"]]}),
     "tokenizer.json, model.merges[1]: expected 'a b' or [a, b], got ['a']"),
    (lambda d: d.update(model=BPE_MODEL | {"merges": [["a", "x"]]}),
     "tokenizer.json, model.merges[0]: 'a' 'x': 'x' is not in the vocab"),
    (lambda d: d.update(model=UNIGRAM_MODEL | {"vocab": [["<unk>", 0.0], ["a", float("inf")]]}),
     "tokenizer.json, model.vocab[1]: piece 'a' has a non-finite score inf"),
    (lambda d: d.update(model=UNIGRAM_MODEL | {"vocab": [["<unk>", float("nan")]]}),
     "tokenizer.json, model.vocab[0]: piece '<unk>' has a non-finite score nan"),
    (lambda d: d.update(pre_tokenizer={"type": "ByteLevel", "trim_offsets": True}),
     "tokenizer.json, pre_tokenizer: missing field 'add_prefix_space'"),
    (lambda d: d.update(decoder={"type": "Sequence", "decoders": [
        {"type": "Metaspace", "prepend_scheme": "sometimes"}]}),
     "tokenizer.json, decoder.decoders[0] (Metaspace): ValueError: prepend_scheme must be one of"),
    (lambda d: d.update(normalizer={"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"Regex": "\\p{L}+"}, "content": ""}]}),
     "tokenizer.json, normalizer.normalizers[0].pattern.Regex: \\p in '\\\\p{L}+' is not "
     "supported"),
    (lambda d: d.update(post_processor={"type": "TemplateProcessing", "single": "[X] $A",
                                        "special_tokens": {}}),
     "tokenizer.json, post_processor: ValueError: template special token '[X]' has no id"),
])
def test_errors_name_file_and_section(tmp_path, change, message):
    """One TokenizerFileError (a ValueError), naming the file and the section once."""
    data = bert_json()
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(files.TokenizerFileError) as error:
        files.load(path)
    assert str(error.value).startswith(path + message[len("tokenizer.json"):]), str(error.value)
    assert str(error.value).count(path) == 1
    assert issubclass(files.TokenizerFileError, ValueError)


def test_oniguruma_patterns_of_replace_sections():
    """Replace regexes are Oniguruma's: \\z, \\Z, \\s, \\h, ^ $, \\x{..}, (?<name>) mean there
    what they mean in `tokenizers` (the .model pipeline's "\\A +| +\\z" among them), and the
    file's own pattern is written back."""
    from tokenizers import Regex, normalizers as rust

    cases = [(r"\A +| +\z", "  a b  \n  "), (r"\A +| +\z", "  a b  "), (r" +\Z", "a  \n"),
             (r"\s{2,}|[\n\r\t]", "a \x1c\x1c  \t\u3000\u3000b\x85"), (r"[\s]", "\x1c \x85"),
             (r"^b|a$", "a\nb"), (r"\h+", "0fgG"), (r"(?<x>a)\x{2581}", "a\u2581b"),
             (r"[]a]+", "a]b"), (r"[^]a]+", "a]bc"), (r"\A\u2581", "\u2581\u2581x"),
             (r"[\]x]", "a]x")]
    for pattern, text in cases:
        section = {"type": "Replace", "pattern": {"Regex": pattern}, "content": "#"}
        ours = files._read(files.NORMALIZERS, section, "tokenizer.json, normalizer", "normalizer")
        assert ours(text)[0] == rust.Replace(Regex(pattern), "#").normalize_str(text), pattern
        assert ours.to_json() == section
        decoder = files._read(files.DECODERS, section, "tokenizer.json, decoder", "decoder")
        assert decoder([text]) == [rust.Replace(Regex(pattern), "#").normalize_str(text)], pattern
        assert decoder.to_json() == section
    for pattern in [r"\w+", r"[[:alpha:]]", r"[a-z&&[^b]]", r"\p{L}", r"\bx", "("]:
        with pytest.raises(files.TokenizerFileError, match="tokenizer.json, normalizer"):
            files._read(files.NORMALIZERS, {"type": "Replace", "pattern": {"Regex": pattern},
                                            "content": ""}, "tokenizer.json, normalizer",
                        "normalizer")


def test_not_json(tmp_path):
    path = write(tmp_path, "{not json")
    with pytest.raises(files.TokenizerFileError, match=f"{path}: not JSON"):
        files.load(path)


def test_replace_alignment_like_tokenizers():
    """DeBERTa-v3's whitespace rule: "a  b" -> "a b"; tokenizers gives the kept space the
    offsets of the last space it replaces: "▁b" is (2, 4), not (1, 4)."""
    from tokenizers import Regex, Tokenizer as RustTokenizer, models, normalizers, pre_tokenizers

    rust = RustTokenizer(models.Unigram([("<unk>", 0.0), ("▁a", -1.0), ("▁b", -1.0)], 0))
    rust.normalizer = normalizers.Replace(Regex(r"\s{2,}|[\n\r\t]"), " ")
    rust.pre_tokenizer = pre_tokenizers.Metaspace()
    ours = files.from_dict(json.loads(rust.to_str()))
    for text in ["a  b", "a\tb", "  a   b  "]:
        assert ours.encode(text).offsets == rust.encode(text).offsets, text
