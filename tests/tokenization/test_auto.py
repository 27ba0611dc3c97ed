"""AutoTokenizer (auto.py): which files make which tokenizer, against transformers on the same
directories: one transformers 5 saved (tokenizer.json + tokenizer_config.json only), ours,
a bare vocab.txt, RoBERTa's vocab.json + merges.txt; and the errors."""

import json
import re

import pytest

import minibert
from minibert.tokenization import AutoTokenizer, Tokenizer, WordPieceTokenizer
from minibert.tokenization.errors import TokenizerFileError
from minibert.tokenization.normalize import Lowercase, Sequence, UnicodeNormalizer
from minibert.tokenization.pretokenize import Whitespace
from minibert.tokenization.template import TemplateProcessing
from minibert.tokenization.wordpiece import WordPiece, WordPieceDecoder

TEXTS = ["Hello, world!", "The quick brown fox jumps over the lazy dog.", "naïve café [MASK] 東京",
         "unaffable tokenization"]


def assert_same_ids(ours, hf, texts):
    assert ours(texts)["input_ids"] == hf(texts)["input_ids"]
    assert ours(texts, texts[::-1])["token_type_ids"] == hf(texts, texts[::-1])["token_type_ids"]


def test_a_transformers_5_bert_directory(reference_vocab, tmp_path, corpora):
    from transformers import AutoTokenizer as HfAutoTokenizer, BertTokenizerFast

    vocab_file, lowercase = reference_vocab
    BertTokenizerFast(str(vocab_file), do_lower_case=lowercase).save_pretrained(tmp_path)
    assert not (tmp_path / "vocab.txt").exists()
    hf = HfAutoTokenizer.from_pretrained(str(tmp_path))
    texts = corpora["squad/questions"][:300] + TEXTS
    for ours in (AutoTokenizer.from_pretrained(tmp_path), minibert.AutoTokenizer.from_pretrained(tmp_path),
                 WordPieceTokenizer.from_pretrained(tmp_path)):
        assert isinstance(ours, WordPieceTokenizer)
        assert ours.model_max_length == 1 << 31  # transformers' "no limit", clipped
        assert_same_ids(ours, hf, texts)


def test_added_tokens_of_a_transformers_5_directory(reference_vocab, tmp_path):
    from transformers import BertTokenizerFast

    vocab_file, lowercase = reference_vocab
    hf = BertTokenizerFast(str(vocab_file), do_lower_case=lowercase)
    hf.add_tokens(["NewTok"])
    hf.add_special_tokens({"additional_special_tokens": ["<x>"]})
    hf.save_pretrained(tmp_path)
    ours = AutoTokenizer.from_pretrained(tmp_path)
    assert len(ours) == len(hf)
    assert_same_ids(ours, hf, TEXTS + ["hello NewTok<x>newtok world"])


def test_our_directory_loads_in_transformers(reference_vocab, tmp_path):
    from transformers import AutoTokenizer as HfAutoTokenizer

    vocab_file, lowercase = reference_vocab
    WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase).save_pretrained(tmp_path)
    hf = HfAutoTokenizer.from_pretrained(str(tmp_path))
    assert_same_ids(AutoTokenizer.from_pretrained(tmp_path), hf, TEXTS)
    (tmp_path / "tokenizer.json").unlink()  # vocab.txt alone
    assert_same_ids(AutoTokenizer.from_pretrained(tmp_path), hf, TEXTS)


def test_a_generic_pipeline_saves_and_loads_both_ways(tmp_path):
    from transformers import AutoTokenizer as HfAutoTokenizer

    vocab = {t: i for i, t in enumerate(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "hello", "world", "##s",
                                         ",", "!", "fi", "##ne"])}
    ours = Tokenizer(WordPiece(vocab), normalizer=Sequence([UnicodeNormalizer("NFKC"), Lowercase()]),
                     pre_tokenizer=Whitespace(), decoder=WordPieceDecoder(),
                     post_processor=TemplateProcessing("[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       {"[CLS]": [1], "[SEP]": [2]}),
                     unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]")
    ours.save_pretrained(tmp_path)
    hf = HfAutoTokenizer.from_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(tmp_path)
    texts = ["Hello, Worlds!", "ﬁne HELLO", "unknown"]
    for tokenizer in (ours, again):
        assert_same_ids(tokenizer, hf, texts)
        assert tokenizer(texts, padding=True)["input_ids"] == hf(texts, padding=True)["input_ids"]
    assert again.pad_token == "[PAD]" and again.mask_token is None
    assert again.batch_decode(hf(texts)["input_ids"]) == hf.batch_decode(hf(texts)["input_ids"])


def test_roberta_vocab_json_and_merges(tmp_path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    lines = ["The quick brown fox jumps over the lazy dog.", "Hello, world! How are you today?",
             "naïve café and 東京", "tokenization is fun"] * 30
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(lines, vocab_size=400,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    trainer.save_model(str(tmp_path))
    hf = RobertaTokenizer.from_pretrained(str(tmp_path))
    ours = AutoTokenizer.from_pretrained(tmp_path)
    texts = lines[:4] + ["Fill the <mask> here.", "  spaces  "]
    assert ours(texts, return_offsets_mapping=True) == {
        k: v for k, v in hf(texts, return_offsets_mapping=True).items()}
    assert ours(texts, texts[::-1])["input_ids"] == hf(texts, texts[::-1])["input_ids"]
    assert ours.batch_decode(hf(texts)["input_ids"], skip_special_tokens=True) == \
        hf.batch_decode(hf(texts)["input_ids"], skip_special_tokens=True)


def test_tokenizer_config_roles_and_options(reference_vocab, tmp_path):
    vocab_file, lowercase = reference_vocab
    WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config |= {"mask_token": {"content": "[MASK]", "lstrip": False}, "model_max_length": 1e30}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    ours = AutoTokenizer.from_pretrained(tmp_path, model_max_length=64)
    assert ours.mask_token == "[MASK]" and ours.model_max_length == 64


@pytest.mark.parametrize("merges, message", [
    ("#version: 0.2\na b\na b c\n", "line 3: expected 'a b' or [a, b], got 'a b c'"),
    ("a b\nab\n", "line 2: expected 'a b' or [a, b], got 'ab'"),
    ("a x\n", "line 1: 'a' 'x': 'x' is not in the vocab"),
])
def test_bad_merges_txt(tmp_path, merges, message):
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 1, "ab": 2}))
    (tmp_path / "merges.txt").write_text(merges)
    with pytest.raises(TokenizerFileError, match="^" + re.escape(f"{tmp_path / 'merges.txt'}, "
                                                                 f"{message}")):
        AutoTokenizer.from_pretrained(tmp_path)


def test_bad_tokenizer_json(tmp_path):
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "WordLevel"}}))
    with pytest.raises(TokenizerFileError, match="^" + re.escape(
            f"{tmp_path / 'tokenizer.json'}, model.type: unknown model 'WordLevel'")):
        AutoTokenizer.from_pretrained(tmp_path)


def test_no_tokenizer_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} has no tokenizer"):
        AutoTokenizer.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match="from_pretrained"):
        AutoTokenizer()
