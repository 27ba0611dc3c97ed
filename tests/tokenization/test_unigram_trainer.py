"""The Unigram trainer against `tokenizers`' UnigramTrainer on the same words and settings:
vocabulary overlap (target >= 95%) and fertility on held-out text (target within 2%)."""

import json
import math

import pytest

from minibert.tokenization.metaspace import Metaspace
from minibert.tokenization.unigram_trainer import UnigramTrainer, digamma, seed_pieces
from tests.tokenization.conftest import DATA, WIKI, read_lines


def reference_train(texts, **options):
    """`tokenizers`' trainer, saved and reloaded: [(piece, score)], unk_id."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.train_from_iterator(texts, trainers.UnigramTrainer(show_progress=False, **options))
    section = json.loads(tokenizer.to_str())["model"]
    return [tuple(entry) for entry in section["vocab"]], section["unk_id"]


def fertility(vocab, unk_id, texts):
    """Tokens per whitespace-separated word, encoded by `tokenizers`' Unigram."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.Unigram(vocab, unk_id, False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    return sum(len(e.ids) for e in encodings) / sum(len(t.split()) for t in texts)


CASES = {
    "wikitext-1500": ("wiki", dict(vocab_size=1500, special_tokens=["<pad>", "<unk>"],
                                   unk_token="<unk>")),
    "shakespeare-options": ("shakespeare", dict(vocab_size=1000, unk_token="<unk>",
                                                max_piece_length=8, shrinking_factor=0.6,
                                                n_sub_iterations=1,
                                                initial_alphabet=["\u00e9", "\u00df"])),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_overlap_and_fertility(case):
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    corpus, options = CASES[case]
    if corpus == "wiki":
        texts, held_out = read_lines(WIKI / "wiki.valid.raw")[:2000], \
            read_lines(WIKI / "wiki.test.raw")[:2000]
    else:
        lines = read_lines(DATA / "tinyshakespeare" / "input.txt")
        texts, held_out = lines[:15000], lines[30000:]
    reference, reference_unk = reference_train(texts, **options)
    ours = UnigramTrainer(**options).train(texts)
    assert len(ours.pieces) == len(reference) == options["vocab_size"]
    assert ours.unk_id == reference_unk
    assert [p for p, _ in ours.pieces[:3]] == [p for p, _ in reference[:3]]
    overlap = len({p for p, _ in ours.pieces} & {p for p, _ in reference}) / len(reference)
    ratio = fertility(ours.pieces, ours.unk_id, held_out) / fertility(reference, reference_unk,
                                                                       held_out)
    print(f"{case}: overlap {overlap:.4f}, fertility ratio {ratio:.4f}")
    assert overlap >= 0.95
    assert abs(ratio - 1) <= 0.02


def test_seeds_as_the_reference():
    """trainer.rs test_unigram_chars: characters by count (ties: larger character first),
    then suffix-tree substrings by occurrences x length."""
    seeds = seed_pieces({"\u2581This\u2581is\u2581a": 1}, 16, 1_000_000)
    assert seed_pieces({"This is a": 1, "\u3053\u3093\u306b\u3061\u306f\u53cb\u9054": 1}, 16,
                       1_000_000) == [
        (p, pytest.approx(s, abs=1e-12)) for p, s in zip(
            ["s", "i", " ", "\u9054", "\u53cb", "\u3093", "\u306f", "\u306b", "\u3061",
             "\u3053", "h", "a", "T", "is ", "s "],
            [-2.5649493574615367] * 3 + [-3.258096538021482] * 10
            + [-1.4663370687934272, -1.8718021769015916])]
    assert ("\u2581is", 3) not in seeds and "is" not in dict(seeds)  # "is" never branches


def test_digamma():
    assert digamma(1.0) == pytest.approx(-0.5772156649015329, abs=1e-10)
    assert digamma(0.5) == pytest.approx(-1.9635100260214235, abs=1e-10)
    assert digamma(1000.0) == pytest.approx(math.log(1000.0) - 1 / 2000 - 1 / 12e6, abs=1e-12)


def test_special_tokens_and_unk():
    texts = ["the cat sat on the mat", "the dog sat on the log"] * 20
    model = UnigramTrainer(vocab_size=30, unk_token="<unk>", special_tokens=["<s>"]).train(texts)
    assert [p for p, _ in model.pieces[:2]] == ["<unk>", "<s>"] and model.unk_id == 0
    reference, _ = reference_train(texts, vocab_size=30, unk_token="<unk>",
                                   special_tokens=["<s>"])
    # EM drops every piece longer than a character here: 15 pieces, as the reference.
    assert len(model.pieces) == len(reference) == 15
    assert {p for p, _ in model.pieces} == {p for p, _ in reference}
    assert UnigramTrainer(vocab_size=30).train(texts).unk_id is None


def test_batches_files_and_counts(tmp_path):
    texts = ["low lower lowest", "new newer newest"] * 5
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    trainer = UnigramTrainer(vocab_size=25, unk_token="<unk>")
    pieces = trainer.train(texts).pieces
    assert trainer.train([texts[:4], texts[4:]]).pieces == pieces
    assert trainer.train_files(path).pieces == trainer.train_files([str(path)]).pieces \
        == trainer.train([line + "\n" for line in texts]).pieces
    counts = {}
    for text in texts:
        for word, _, _ in Metaspace()(text):
            counts[word] = counts.get(word, 0) + 1
    assert trainer.train_from_counts(counts).pieces == pieces


def test_vocab_too_small():
    with pytest.raises(ValueError, match="cannot hold the 7 characters"):
        UnigramTrainer(vocab_size=5).train(["abc def"])
    with pytest.raises(ValueError, match="no words"):
        UnigramTrainer().train(["", ""])
