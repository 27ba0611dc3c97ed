"""ALBERT end to end through a SentencePiece vocabulary: a Unigram `.model` trained with `sentencepiece`, read by
transformers' ALBERT tokenizer and saved as it saves it, a random-init `transformers` ALBERT beside it:
`minibert fill-mask` gives the `transformers` fill-mask pipeline's top 5 tokens, token strings, sequences and
scores."""

import pytest

from minibert.checkpoints.hf import from_pretrained
from minibert.cli import run
from minibert.tasks.pipelines import fill_mask
from minibert.tokenization import AutoTokenizer

SHAKESPEARE = "../shared/data/tinyshakespeare/input.txt"
TEXT = "The king of France is [MASK]."


@pytest.fixture(scope="module")
def albert_dir(tmp_path_factory):
    import sentencepiece as spm
    import torch
    import transformers

    path = tmp_path_factory.mktemp("albert")
    with open(SHAKESPEARE, encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines()[:4000] if line.strip()]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(path / "spiece"), vocab_size=600,
                                   model_type="unigram", pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
                                   control_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    tokenizer = transformers.AlbertTokenizer(vocab_file=str(path / "spiece.model"))
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = transformers.AlbertConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=48,
                                       intermediate_size=72, num_hidden_layers=3, num_attention_heads=4,
                                       max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    transformers.AlbertForMaskedLM(config).eval().save_pretrained(path)
    return path


def test_fill_mask_matches_the_transformers_pipeline(albert_dir, capsys):
    import transformers

    reference = transformers.pipeline("fill-mask", model=str(albert_dir), top_k=5)(TEXT)
    [ours] = fill_mask(from_pretrained(albert_dir), AutoTokenizer.from_pretrained(albert_dir), TEXT)
    assert [c["token"] for c in ours] == [r["token"] for r in reference]
    assert [c["token_str"] for c in ours] == [r["token_str"] for r in reference]
    assert [c["sequence"] for c in ours] == [r["sequence"] for r in reference]
    for c, r in zip(ours, reference):
        assert c["score"] == pytest.approx(r["score"], abs=1e-5)
    capsys.readouterr()
    assert run(["fill-mask", "--model", str(albert_dir), TEXT]) == 0
    printed = capsys.readouterr().out
    assert all(r["token_str"].strip() in printed for r in reference)
