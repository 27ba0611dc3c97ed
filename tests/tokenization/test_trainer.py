"""The from-scratch vocabulary trainer: the merge algorithm on a toy corpus, and a comparison
with the reference trainer (`tokenizers`' WordPieceTrainer) at the same vocabulary size:
vocabulary overlap, and tokens per word on held-out text within 5% of the reference's."""

from minibert.tokenization.normalize import BertNormalizer
from minibert.tokenization.pretokenize import pre_tokenize
from minibert.tokenization.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer
from minibert.tokenization.trainer import merge, train_vocab

TOY = ["hug hug hug hug hug hug hug hug hug hug", "pug pug pug pug pug", "pun pun pun pun pun pun",
       "bun bun bun bun", "hugs hugs hugs hugs hugs"]


def test_merge_replaces_left_to_right():
    assert merge([1, 1, 1, 2], (1, 1), 9) == [9, 1, 2]
    assert merge([1, 2, 1, 2], (1, 2), 9) == [9, 9]


def test_toy_corpus_merges():
    vocab = train_vocab(iter(TOY), 30, BertNormalizer(), 2, SPECIAL_TOKENS)
    assert list(vocab) == [
        *SPECIAL_TOKENS,
        "b", "g", "h", "n", "p", "s", "u",  # the alphabet, sorted
        "##u", "##n", "##g", "##s",  # non-initial characters, as they first occur
        "##ug",  # ##u ##g: 20 times (hug, pug, hugs)
        "hug",  # h ##ug: 15
        "##un",  # ##u ##n: 10
        "pun",  # p ##un: 6
        "pug",  # p ##ug: 5, tied with hug ##s: the pair of older units goes first
        "hugs",
        "bun",  # b ##un: 4; after it no pair occurs twice (min_frequency=2)
    ]
    assert list(vocab.values()) == list(range(len(vocab)))


def test_min_frequency_stops_merging():
    vocab = train_vocab(iter(TOY), 1000, BertNormalizer(), 100, SPECIAL_TOKENS)
    assert len(vocab) == 5 + 7 + 4  # no pair occurs 100 times


def test_files_and_iterators_give_the_same_vocab(tmp_path):
    path = tmp_path / "toy.txt"
    path.write_text("\n".join(TOY) + "\n", encoding="utf-8")
    from_file = WordPieceTokenizer.train(path, vocab_size=30, min_frequency=2)
    from_iterator = WordPieceTokenizer.train(iter(TOY), vocab_size=30, min_frequency=2)
    assert from_file.vocab == from_iterator.vocab
    assert from_file.encode("hugs puns").tokens == ["[CLS]", "hugs", "pun", "##s", "[SEP]"]


def fertility(encode_batch, normalizer, texts) -> float:
    words = sum(len(pre_tokenize(normalizer(t)[0])) for t in texts)
    return sum(encode_batch(texts)) / words


def test_against_the_reference_trainer(our_trained, corpora):
    """vocab 8000 on wiki.valid.raw; tokens per word on held-out wiki.test.raw."""
    from tokenizers import BertWordPieceTokenizer

    reference = BertWordPieceTokenizer(lowercase=True)
    reference.train_from_iterator(corpora["wikitext/wiki.valid.raw"], vocab_size=8000,
                                  show_progress=False)
    ours_vocab, reference_vocab = set(our_trained.vocab), set(reference.get_vocab())
    overlap = len(ours_vocab & reference_vocab) / len(reference_vocab)

    held_out = corpora["wikitext/wiki.test.raw"]
    normalizer = our_trained.normalizer
    ours = fertility(lambda ts: [len(our_trained.tokenize(t)) for t in ts], normalizer,
                     held_out)
    theirs = fertility(lambda ts: [len(e.ids) for e in reference.encode_batch(
        ts, add_special_tokens=False)], normalizer, held_out)
    print(f"\nvocab {len(ours_vocab)} vs {len(reference_vocab)}, overlap {overlap:.2%}; "
          f"tokens/word on wiki.test.raw: ours {ours:.4f}, reference {theirs:.4f}")
    assert len(ours_vocab) == len(reference_vocab) == 8000
    assert abs(ours - theirs) / theirs < 0.05
    assert overlap > 0.9


def test_iterator_of_batches_as_train_new_from_iterator_takes():
    batches = iter([TOY[:2], TOY[2:4], TOY[4:]])
    assert WordPieceTokenizer.train(batches, vocab_size=30).vocab == \
        WordPieceTokenizer.train(iter(TOY), vocab_size=30).vocab


def test_trainer_options_like_the_reference():
    """limit_alphabet, initial_alphabet, continuing_subword_prefix, min_frequency and
    special_tokens give the vocabulary `tokenizers`' WordPieceTrainer gives (as sets: the
    order of the continuation characters differs)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    for options in [dict(limit_alphabet=4), dict(initial_alphabet=["z", "q"]),
                    dict(continuing_subword_prefix="@@"), dict(min_frequency=5),
                    dict(special_tokens=["<pad>", "[UNK]"])]:
        reference = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        reference.normalizer = normalizers.BertNormalizer()
        reference.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        reference.train_from_iterator(TOY, trainers.WordPieceTrainer(
            vocab_size=30, show_progress=False, **options))
        ours = WordPieceTokenizer.train(iter(TOY), vocab_size=30, **options)
        specials = set(options.get("special_tokens", SPECIAL_TOKENS))
        assert set(ours.vocab) - specials == set(reference.get_vocab()) - specials, options
    prefixed = WordPieceTokenizer.train(iter(TOY), vocab_size=30, continuing_subword_prefix="@@")
    assert prefixed.tokenize("hugs puns") == ["hugs", "pun", "@@s"]
    assert prefixed.decode(prefixed.encode("hugs puns").ids, skip_special_tokens=True) == "hugs puns"
