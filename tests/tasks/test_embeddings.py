"""Sentence embeddings against sentence-transformers itself: tiny random BERTs saved with its own classes
(Transformer + Pooling [+ Normalize]) for each pooling mode, and the published all-MiniLM-L6-v2 (slow)."""

import json
from pathlib import Path

import numpy as np
import pytest

from minibert.tasks import embeddings
from minibert.tokenization.tokenizer import WordPieceTokenizer

PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "##s",
          ".", ",", "far", "away", "big", "red"]
SENTENCES = ["the cat sat on the mat.", "a dog ran far, far away", "cats", "the big red dog sat on a big red mat.",
             "", "dogs ran"]


def save_sentence_transformer(tmp_path, pooling: str, *, normalize: bool, max_seq_length: int = 9) -> Path:
    """A random BERT with sentence-transformers' modules, saved by sentence-transformers (6: tokenizer.json, no
    vocab.txt)."""
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    base = tmp_path / "bert"
    WordPieceTokenizer({t: i for i, t in enumerate(PIECES)}).save_pretrained(base)
    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig(vocab_size=len(PIECES), hidden_size=24, num_hidden_layers=2,
                                                   num_attention_heads=4, intermediate_size=40)).save_pretrained(base)
    transformer = models.Transformer(str(base), max_seq_length=max_seq_length)
    modules = [transformer, models.Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling)]
    out = tmp_path / f"st-{pooling}"
    SentenceTransformer(modules=modules + ([models.Normalize()] if normalize else []), device="cpu").save(str(out))
    return out


@pytest.mark.parametrize("pooling, normalize", [("mean", True), ("cls", False), ("max", False), ("mean", False)])
def test_vectors_equal_sentence_transformers(tmp_path, pooling, normalize):
    from sentence_transformers import SentenceTransformer

    path = save_sentence_transformer(tmp_path, pooling, normalize=normalize)
    theirs = SentenceTransformer(str(path), device="cpu").encode(SENTENCES, batch_size=4)
    ours = embeddings.encode(path, SENTENCES, batch_size=4)
    assert ours.shape == theirs.shape == (len(SENTENCES), 24) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    encoder = embeddings.SentenceEncoder.from_pretrained(path)
    assert encoder.max_seq_length == 9                # "the big red dog …" is cut to 9 tokens, as theirs
    np.testing.assert_allclose(encoder.encode(SENTENCES[0]), theirs[0], atol=1e-5)
    unit = encoder.encode(SENTENCES, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)


def test_pooling_configs_of_either_format():
    old_format = {"word_embedding_dimension": 4, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
                  "pooling_mode_max_tokens": True}
    assert embeddings.pooling_modes(old_format) == ("max", "mean")
    assert embeddings.pooling_modes({"embedding_dimension": 4, "pooling_mode": "cls"}) == ("cls",)
    with pytest.raises(ValueError, match="not weightedmean"):
        embeddings.pooling_modes({"pooling_mode_weightedmean_tokens": True})
    hidden = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    pooled = embeddings.pool(hidden, np.array([[1, 1, 0]]), ("cls", "max", "mean"))
    np.testing.assert_array_equal(pooled, [[0, 1, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5]])


def test_other_modules_are_named(tmp_path):
    path = save_sentence_transformer(tmp_path, "mean", normalize=False)
    modules = json.loads((path / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match="sentence_transformers.models.Dense"):
        embeddings.SentenceEncoder.from_pretrained(path)


@pytest.mark.slow
def test_all_minilm_l6_v2_gives_sentence_transformers_vectors(minilm):
    from sentence_transformers import SentenceTransformer

    texts = ["A man is eating food.", "A man is riding a horse.", "The new movie is awesome!",
             "Une phrase en français, avec des accents.", "word " * 300]       # the last one is cut at 256 tokens
    theirs = SentenceTransformer(str(minilm), device="cpu").encode(texts)
    ours = embeddings.encode(minilm, texts)
    assert ours.shape == (5, 384)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    similar = ours @ ours.T
    assert similar[0, 1] > similar[0, 2]
