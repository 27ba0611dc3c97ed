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
