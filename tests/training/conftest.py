from pathlib import Path

import pytest

WIKI = Path(__file__).parents[3] / "shared" / "data" / "wikitext-2-raw" / "wiki.valid.raw"


@pytest.fixture(scope="session")
def corpus_and_vocab(tmp_path_factory):
    """The first 120 kB of WikiText-2 (valid) as a corpus file, and an 800-piece vocabulary trained on it."""
    from minibert.tokenization.tokenizer import WordPieceTokenizer

    folder = tmp_path_factory.mktemp("corpus")
    text = WIKI.read_text(encoding="utf-8")[:120_000]
    (folder / "wiki.txt").write_text(text, encoding="utf-8")
    WordPieceTokenizer.train(iter(text.splitlines()), vocab_size=800).save_pretrained(folder / "tokenizer")
    return folder / "wiki.txt", folder / "tokenizer"


@pytest.fixture(scope="session")
def bpe_prepared(corpus_and_vocab, tmp_path_factory):
    """The corpus of `corpus_and_vocab` prepared with a 500-entry byte-level BPE vocabulary trained on it (RoBERTa's
    layout, `minibert prepare --tokenizer bpe`)."""
    from minibert.training.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("bpe-prepared")
    prepare(PrepareConfig(corpus=[str(corpus_and_vocab[0])], output=str(out), tokenizer="bpe", vocab_size=500,
                          workers=1, progress=False))
    return out


def write_prepared(directory, documents, vocab_size=600):
    """A prepared corpus (the shard format of training/prepare.py) holding `documents`, each a list of sentences of
    token ids, split into two shards and an empty one between them (a unit can hold no document); no tokenizer (the
    manifest's hash is a placeholder)."""
    import json

    import numpy as np

    from minibert.training.prepare import FORMAT, write_shard

    shards, half = [], (len(documents) + 1) // 2
    (directory / "shards").mkdir(parents=True)
    for index, part in enumerate((documents[:half], [], documents[half:])):
        sentences = [s for d in part for s in d]
        name = f"shard-{index:05d}"
        record = {"name": name, "documents": len(part), "sentences": len(sentences),
                  "tokens": sum(map(len, sentences))}
        write_shard(directory / "shards" / name, np.array([t for s in sentences for t in s], np.uint16),
                    np.cumsum([len(s) for s in sentences]).astype(np.int64),
                    np.stack([np.cumsum([len(d) for d in part]),
                              np.cumsum([sum(map(len, d)) for d in part])], axis=1).astype(np.int64), record)
        shards.append(record)
    manifest = {"format": FORMAT, "id_dtype": "uint16", "tokenizer_sha256": "-", "vocab_size": vocab_size,
                "documents": len(documents), "shards": shards}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def toy_tokenizer():
    """A WordPiece tokenizer of 600 ids: [PAD] [UNK] [CLS] [SEP] [MASK] (0-4), then "##x<i>" for i % 3 == 0
    (continuation pieces) and "x<i>" otherwise."""
    from minibert.tokenization.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer

    pieces = [f"##x{i}" if i % 3 == 0 else f"x{i}" for i in range(len(SPECIAL_TOKENS), 600)]
    return WordPieceTokenizer({t: i for i, t in enumerate([*SPECIAL_TOKENS, *pieces])})
