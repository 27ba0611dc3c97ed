"""Every line of every corpus in ../shared/data: ids, type ids and offsets identical to
`tokenizers.BertWordPieceTokenizer` (cased and uncased, single texts and pairs) and to
`transformers.BertTokenizerFast`, with vocabularies trained by the reference (and, on three
corpora, by us)."""

import pytest

from minibert.tokenization.tokenizer import WordPieceTokenizer, no_cyclic_gc


def assert_same(ours, reference, texts):
    with no_cyclic_gc():
        bad = [
            (i, texts[i][:80], a.tokens[:12], b.tokens[:12])
            for i, (a, b) in enumerate(zip(ours, reference))
            if (a.ids, a.type_ids, a.offsets, a.attention_mask)
            != (b.ids, b.type_ids, b.offsets, b.attention_mask)
        ]
    assert len(ours) == len(reference) == len(texts)
    assert not bad, f"{len(bad)} differ, first ones: {bad[:3]}"


@pytest.mark.slow
def test_every_line(corpora, reference_vocab):
    """Singles against both references; pairs (lines 0+1, 2+3, ...) against `tokenizers`, and
    the first 1000 pairs of each corpus through transformers' own __call__."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    vocab_file, lowercase = reference_vocab
    ours = WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase)
    reference = BertWordPieceTokenizer(str(vocab_file), lowercase=lowercase)
    hf = BertTokenizerFast(str(vocab_file), do_lower_case=lowercase)
    for name, texts in corpora.items():
        encodings = ours.encode_batch(texts)
        assert_same(encodings, reference.encode_batch(texts), texts)
        # transformers' pipeline (the Rust tokenizer it assembles), without its Python layer.
        assert_same(encodings, hf.backend_tokenizer.encode_batch(texts), texts)

        firsts, seconds = texts[0:-1:2], texts[1::2]
        encodings = ours.encode_batch(firsts, seconds)
        assert_same(encodings, reference.encode_batch(list(zip(firsts, seconds))), firsts)
        expected = hf(firsts[:1000], seconds[:1000], return_offsets_mapping=True)
        for i, e in enumerate(encodings[:1000]):
            assert e.ids == expected["input_ids"][i], (name, i)
            assert e.type_ids == expected["token_type_ids"][i], (name, i)
            assert e.offsets == list(map(tuple, expected["offset_mapping"][i])), (name, i)


def test_every_line_with_our_trained_vocab(corpora, our_vocab_file):
    from tokenizers import BertWordPieceTokenizer

    reference = BertWordPieceTokenizer(str(our_vocab_file), lowercase=True)
    ours = WordPieceTokenizer.from_file(our_vocab_file, lowercase=True)
    for name in ("wikitext/wiki.test.raw", "sst2/train_full.tsv", "squad/contexts"):
        texts = corpora[name]
        assert_same(ours.encode_batch(texts), reference.encode_batch(texts), texts)


def test_tokenizers_backend_is_identical(corpora, reference_vocab):
    vocab_file, lowercase = reference_vocab
    ours = WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase)
    rust = WordPieceTokenizer.from_file(vocab_file, lowercase=lowercase, backend="tokenizers")
    for name in ("wikitext/wiki.test.raw", "squad/questions", "sst2/dev.tsv"):
        texts = corpora[name]
        assert_same(ours.encode_batch(texts, texts[::-1], max_length=64, truncation=True,
                                      padding=True),
                    rust.encode_batch(texts, texts[::-1], max_length=64, truncation=True,
                                      padding=True), texts)


@pytest.mark.slow
def test_simple_normalizers_on_every_non_ascii_line(corpora, reference_vocab):
    """NFC/NFD/NFKC/NFKD, Lowercase, StripAccents, Replace, Prepend, Strip, Sequence: ids and
    offsets like `tokenizers` (a WordPiece model, BERT's pre-tokenizer) on every line of the
    corpora with a non-ASCII character (the others are left alone by all but Lowercase)."""
    from tokenizers import Tokenizer as Reference, models, pre_tokenizers

    from minibert.tokenization.base import Tokenizer
    from minibert.tokenization.pretokenize import BertPreTokenizer
    from minibert.tokenization.tokenizer import read_vocab
    from minibert.tokenization.wordpiece import WordPiece
    from tests.tokenization.test_unicode import simple_normalizers

    vocab = read_vocab(reference_vocab[0])
    texts = [t for lines in corpora.values() for t in lines if not t.isascii()]
    for name, (normalizer, reference_normalizer) in simple_normalizers().items():
        ours = Tokenizer(WordPiece(vocab), normalizer=normalizer, pre_tokenizer=BertPreTokenizer())
        reference = Reference(models.WordPiece(vocab, unk_token="[UNK]"))
        reference.normalizer = reference_normalizer
        reference.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        expected = reference.encode_batch(texts)
        with no_cyclic_gc():
            bad = [(i, texts[i][:60]) for i, (a, b) in
                   enumerate(zip(ours.encode_batch(texts, add_special_tokens=False), expected))
                   if (a.ids, a.offsets) != (b.ids, b.offsets)]
        assert not bad, f"{name}: {len(bad)} of {len(texts)} lines differ: {bad[:3]}"
