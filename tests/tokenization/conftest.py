"""Shared fixtures for the tokenizer tests: the corpora of ../shared/data and vocabularies
trained on them (with the reference trainer, cased and uncased, and with ours)."""

import json
import os
import zipfile
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
WIKI = DATA / "wikitext-2-raw"
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def read_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # gutenberg/chesterton-ball.txt is Latin-1
        text = raw.decode("latin-1")
    return text.splitlines()


@pytest.fixture(scope="session")
def corpora() -> dict[str, list[str]]:
    """Every line of every corpus: name -> texts."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    out = {f"wikitext/{p.name}": read_lines(p) for p in sorted(WIKI.glob("*.raw"))}
    out |= {f"gutenberg/{p.name}": read_lines(p) for p in sorted(DATA.glob("gutenberg/*.txt"))}
    out["tinyshakespeare"] = read_lines(DATA / "tinyshakespeare" / "input.txt")
    for name in ("train_full.tsv", "dev.tsv"):
        rows = read_lines(DATA / "SST-2" / name)
        assert rows[0] == "sentence\tlabel"
        out[f"sst2/{name}"] = [row.split("\t")[0] for row in rows[1:]]
    with zipfile.ZipFile(DATA / "squad_v1.1" / "dev-v1.1.json.zip") as z:
        squad = json.loads(z.read("dev-v1.1.json"))
    paragraphs = [p for article in squad["data"] for p in article["paragraphs"]]
    out["squad/contexts"] = [p["context"] for p in paragraphs]
    out["squad/questions"] = [q["question"] for p in paragraphs for q in p["qas"]]
    return out


def train_reference_vocab(directory: Path, lowercase: bool, files, vocab_size=30522) -> Path:
    from tokenizers import BertWordPieceTokenizer

    reference = BertWordPieceTokenizer(lowercase=lowercase)
    reference.train([str(f) for f in files], vocab_size=vocab_size, show_progress=False)
    return Path(reference.save_model(str(directory), "uncased" if lowercase else "cased")[0])


@pytest.fixture(scope="session", params=[True, False], ids=["uncased", "cased"])
def reference_vocab(request, tmp_path_factory) -> tuple[Path, bool]:
    """(vocab.txt, lowercase): trained by `tokenizers` on WikiText, Shakespeare and Gutenberg."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    files = [WIKI / "wiki.valid.raw", DATA / "tinyshakespeare" / "input.txt",
             DATA / "gutenberg" / "austen-emma.txt", DATA / "gutenberg" / "melville-moby_dick.txt"]
    return train_reference_vocab(tmp_path_factory.mktemp("vocab"), request.param, files), \
        request.param


@pytest.fixture(scope="session")
def our_trained():
    """Our trainer, uncased, vocab 8000 on wiki.valid.raw."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    from minibert.tokenization.tokenizer import WordPieceTokenizer

    return WordPieceTokenizer.train(WIKI / "wiki.valid.raw", vocab_size=8000, lowercase=True)


@pytest.fixture(scope="session")
def our_vocab_file(our_trained, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("ours")
    our_trained.save_pretrained(directory)
    return directory / "vocab.txt"
