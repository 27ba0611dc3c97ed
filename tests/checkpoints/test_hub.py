"""Hub names resolve through huggingface_hub's cache, offline included; tested on a cache directory laid out as
huggingface_hub lays it out (models--org--name/{blobs, refs/main, snapshots/<sha>}), never on the network."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minibert
from minibert.checkpoints.hub import resolve
from minibert.tokenization.tokenizer import WordPieceTokenizer
from tests.conftest import save_reference

CONFIG = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
              max_position_embeddings=20)
REPO, SHA = "minibert-tests/tiny-bert", "0123456789abcdef0123456789abcdef01234567"


def hub_cache(root: Path, repo_id: str, source: Path) -> Path:
    """Put the files of `source` in a huggingface_hub cache at `root` as the snapshot of `repo_id` at main."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / SHA).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    for file in source.iterdir():
        content = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        (repo / "snapshots" / SHA / file.name).symlink_to(os.path.relpath(blob, repo / "snapshots" / SHA))
    return repo / "snapshots" / SHA


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    source = tmp_path_factory.mktemp("source")
    save_reference("BertForMaskedLM", "BertConfig", source, **CONFIG)
    (source / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]) + "\n")
    root = tmp_path_factory.mktemp("hub")
    hub_cache(root, REPO, source)
    return root, source


def test_a_hub_name_loads_from_the_cache_without_the_network(cache):
    root, source = cache
    assert resolve(REPO, cache_dir=root, local_files_only=True) == root / f"models--{REPO.replace('/', '--')}" / \
        "snapshots" / SHA
    model = minibert.from_pretrained(REPO, cache_dir=root, local_files_only=True)
    reference = minibert.from_pretrained(source)
    np.testing.assert_array_equal(np.asarray(model.bert.embeddings.word_embeddings.weight[...]),
                                  np.asarray(reference.bert.embeddings.word_embeddings.weight[...]))
    assert type(minibert.AutoModel.from_pretrained(REPO, cache_dir=root, local_files_only=True)) is minibert.BertModel


def test_offline_environment_reads_the_cache_for_models_and_tokenizers(cache):
    """HF_HUB_OFFLINE=1 and HF_HUB_CACHE, as a user sets them (read when huggingface_hub is imported)."""
    root, _ = cache
    script = ("import minibert; "
              f"m = minibert.from_pretrained({REPO!r}); t = minibert.AutoTokenizer.from_pretrained({REPO!r}); "
              "print(type(m).__name__, t.tokenize('hello world'), t.encode('hello world', add_special_tokens=False).ids)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(root), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "BertForMaskedLM ['hello', 'world'] [5, 6]"   # ids of hello, world


def test_a_name_neither_a_directory_nor_cached_is_one_clear_error(cache):
    root, _ = cache
    with pytest.raises(FileNotFoundError, match=r"'minibert-tests/absent' is not a directory, and not a Hugging "
                                                r"Face Hub model available here"):
        minibert.from_pretrained("minibert-tests/absent", cache_dir=root, local_files_only=True)
    with pytest.raises(FileNotFoundError, match=r"'no/such/dir' is not a directory"):
        WordPieceTokenizer.from_pretrained("no/such/dir")
