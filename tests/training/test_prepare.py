"""`minibert prepare`: shards equal the tokenizer's output, workers change nothing, a killed run continues,
and every kind of bad input gets one clear error."""

import errno
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minibert.tokenization import AutoTokenizer
from minibert.tokenization.tokenizer import WordPieceTokenizer
from minibert.training import corpus as corpora
from minibert.tokenization.recipes import TOKENIZERS
from minibert.training.prepare import PrepareConfig, PrepareError, id_dtype, prepare, tokenizer_hash
from minibert.training.shards import PreparedCorpus

TEXT = ("The cat sat on the mat. It was warm.\nThe dog did not.\n\nA second document. With two sentences.\n\n"
        "Third one here.\n")


def expected_documents(files, tokenizer):
    """What the shards must hold: every document's sentences as token ids, empty ones dropped."""
    out = []
    for file in files:
        for document in corpora.documents_from_text(Path(file).read_text()):
            sentences = [ids for ids in (tokenizer.encode(s, add_special_tokens=False).ids for s in document) if ids]
            if sentences:
                out.append(sentences)
    return out


def read_back(directory):
    corpus = PreparedCorpus(directory)
    return [[corpus.tokens(d)[a:b].tolist() for a, b in zip([0, *corpus.sentence_ends(d)[:-1]], corpus.sentence_ends(d))]
            for d in range(corpus.documents)]


@pytest.fixture
def files(tmp_path, corpus_and_vocab):
    wiki, _ = corpus_and_vocab
    folder = tmp_path / "corpus"
    folder.mkdir()
    text = wiki.read_text()
    for i in range(3):                                     # three files: three units, three shards
        (folder / f"part{i}.txt").write_text(text[i * 30_000:(i + 1) * 30_000].rsplit("\n\n", 1)[0] + "\n")
    return sorted(folder.iterdir())


def test_shards_hold_exactly_the_tokenizers_ids(files, corpus_and_vocab, tmp_path):
    _, vocab = corpus_and_vocab
    manifest = prepare(PrepareConfig(corpus=[str(f) for f in files], output=str(tmp_path / "out"), vocab=str(vocab),
                                     workers=1, progress=False))
    tokenizer = WordPieceTokenizer.from_pretrained(vocab)
    expected = expected_documents(files, tokenizer)
    assert read_back(tmp_path / "out") == expected
    assert manifest["documents"] == len(expected) and len(manifest["shards"]) == 3
    assert manifest["tokens"] == sum(len(s) for d in expected for s in d)
    assert manifest["tokenizer_sha256"] == tokenizer_hash(tokenizer) and manifest["id_dtype"] == "uint16"
    assert [s["path"] for s in manifest["sources"]] == [str(f.resolve()) for f in files]
    assert all(len(s["sha256"]) == 64 and s["bytes"] == Path(s["path"]).stat().st_size for s in manifest["sources"])
    assert np.load(tmp_path / "out" / "shards" / "shard-00000.ids.npy").dtype == np.uint16


@pytest.mark.slow
def test_two_workers_and_the_tokenizers_backend_give_the_same_shards(files, corpus_and_vocab, tmp_path):
    _, vocab = corpus_and_vocab
    corpus = [str(f) for f in files]
    prepare(PrepareConfig(corpus=corpus, output=str(tmp_path / "one"), vocab=str(vocab), workers=1, progress=False))
    prepare(PrepareConfig(corpus=corpus, output=str(tmp_path / "two"), vocab=str(vocab), workers=2,
                          backend="tokenizers", progress=False))
    for name in sorted(p.name for p in (tmp_path / "one" / "shards").glob("*.npy")):
        np.testing.assert_array_equal(np.load(tmp_path / "one" / "shards" / name),
                                      np.load(tmp_path / "two" / "shards" / name), err_msg=name)


def test_a_killed_preparation_continues_where_it_stopped(files, corpus_and_vocab, tmp_path, monkeypatch):
    from minibert.training import prepare as module

    _, vocab = corpus_and_vocab
    config = PrepareConfig(corpus=[str(f) for f in files], output=str(tmp_path / "out"), vocab=str(vocab), workers=1,
                           progress=False)
    real, written = module.tokenize_unit, []

    def dies_at_the_third_unit(job):
        if len(written) == 2:
            raise KeyboardInterrupt                       # as a kill would, between two shards
        written.append(job[1])
        return real(job)

    monkeypatch.setattr(module, "tokenize_unit", dies_at_the_third_unit)
    with pytest.raises(KeyboardInterrupt):
        prepare(config)
    assert not (tmp_path / "out" / "manifest.json").exists()
    with pytest.raises(FileNotFoundError, match="did not finish: run the same `minibert prepare` again"):
        PreparedCorpus(tmp_path / "out")
    monkeypatch.setattr(module, "tokenize_unit", lambda job: written.append(job[1]) or real(job))
    manifest = prepare(config)
    assert written == ["shard-00000", "shard-00001", "shard-00002"]   # the third unit once, after the kill
    prepare(PrepareConfig(**{**config.__dict__, "output": str(tmp_path / "straight")}))
    assert read_back(tmp_path / "out") == read_back(tmp_path / "straight")
    assert prepare(config) == manifest                                 # finished: nothing to do


def test_a_full_disk_keeps_finished_shards_and_says_how_to_continue(files, corpus_and_vocab, tmp_path, monkeypatch):
    from minibert.training import prepare as module

    _, vocab = corpus_and_vocab
    config = PrepareConfig(corpus=[str(f) for f in files], output=str(tmp_path / "out"), vocab=str(vocab), workers=1,
                           progress=False)
    real_write, calls = module._write_array, []

    def fills_up(path, values):
        calls.append(path)
        if len(calls) == 5:                               # the second shard's second array
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, values)

    monkeypatch.setattr(module, "_write_array", fills_up)
    with pytest.raises(PrepareError, match="the disk filled while writing .*shard-00001.*run the same command again"):
        prepare(config)
    shards = tmp_path / "out" / "shards"
    assert (shards / "shard-00000.json").exists() and not (shards / "shard-00001.json").exists()
    assert not list(shards.glob("*.tmp"))
    monkeypatch.setattr(module, "_write_array", real_write)
    assert prepare(config)["documents"] == len(read_back(tmp_path / "out"))


def test_another_tokenizer_or_corpus_in_the_output_is_refused(files, corpus_and_vocab, tmp_path):
    _, vocab = corpus_and_vocab
    out = str(tmp_path / "out")
    prepare(PrepareConfig(corpus=[str(files[0])], output=out, vocab=str(vocab), workers=1, progress=False))
    other = WordPieceTokenizer.train(iter(["some other text entirely"] * 3), vocab_size=60)
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(PrepareError, match="prepared with another tokenizer"):
        prepare(PrepareConfig(corpus=[str(files[0])], output=out, vocab=str(tmp_path / "other"), workers=1,
                              progress=False))
    with pytest.raises(PrepareError, match="another set of corpus files"):
        prepare(PrepareConfig(corpus=[str(files[1])], output=out, vocab=str(vocab), workers=1, progress=False))
    trained = str(tmp_path / "trained")
    prepare(PrepareConfig(corpus=[str(files[0])], output=trained, vocab_size=300, workers=1, progress=False))
    for change in ({"vocab_size": 400}, {"lowercase": False}, {"seed": 3}):
        with pytest.raises(PrepareError, match="another vocabulary training options"):
            prepare(PrepareConfig(corpus=[str(files[0])], output=trained, workers=1, progress=False,
                                  **{"vocab_size": 300, **change}))
    with pytest.raises(PrepareError, match="prepared with another tokenizer"):
        PreparedCorpus(out).check_tokenizer(other)


@pytest.mark.parametrize("kind", TOKENIZERS)
def test_every_tokenizer_kind_prepares_the_ids_of_its_saved_tokenizer_and_continues_after_a_kill(
        kind, files, tmp_path, monkeypatch):
    """A vocabulary trained with each algorithm: the shards hold what the saved tokenizer (which transformers'
    AutoTokenizer loads, with the same ids) gives; a killed run continues with it."""
    from minibert.training import prepare as module

    transformers = pytest.importorskip("transformers")
    config = PrepareConfig(corpus=[str(f) for f in files], output=str(tmp_path / "out"), tokenizer=kind,
                           vocab_size=400, workers=1, progress=False)
    real, written = module.tokenize_unit, []

    def dies_at_the_second_unit(job):
        if len(written) == 1:
            raise KeyboardInterrupt
        written.append(job[1])
        return real(job)

    monkeypatch.setattr(module, "tokenize_unit", dies_at_the_second_unit)
    with pytest.raises(KeyboardInterrupt):
        prepare(config)
    monkeypatch.setattr(module, "tokenize_unit", lambda job: written.append(job[1]) or real(job))
    manifest = prepare(config)
    assert written == ["shard-00000", "shard-00001", "shard-00002"]
    saved = tmp_path / "out" / "tokenizer"
    tokenizer = AutoTokenizer.from_pretrained(saved)
    assert (saved / "tokenizer.json").is_file() and len(tokenizer) <= 400
    assert read_back(tmp_path / "out") == expected_documents(files, tokenizer)
    assert manifest["tokenizer_sha256"] == tokenizer_hash(tokenizer)
    reference = transformers.AutoTokenizer.from_pretrained(saved)
    lines = [line for line in files[0].read_text().splitlines() if line.strip()][:50] + ["Café, naïve 日本 ½!"]
    assert [reference(line)["input_ids"] for line in lines] == [tokenizer(line)["input_ids"] for line in lines]
    first = {"wordpiece": "[CLS]", "bpe": "<s>", "unigram": "[CLS]"}[kind]
    assert tokenizer.convert_ids_to_tokens(tokenizer("a b")["input_ids"])[0] == first
    with pytest.raises(PrepareError, match="another vocabulary training options"):
        prepare(PrepareConfig(**{**config.__dict__, "tokenizer": "unigram" if kind == "bpe" else "bpe"}))


def test_the_tokenizer_hash_is_the_old_one_for_wordpiece_and_covers_bpe_merges(corpus_and_vocab):
    import hashlib

    from minibert.tokenization import files

    wordpiece = WordPieceTokenizer.from_pretrained(corpus_and_vocab[1])       # the hash shards were prepared with
    n = wordpiece.normalizer
    old = json.dumps([[n.clean_text, n.handle_chinese_chars, n.strip_accents, n.lowercase],
                      [wordpiece.id_to_token[i] for i in range(len(wordpiece))]], ensure_ascii=False)
    assert tokenizer_hash(wordpiece) == hashlib.sha256(old.encode("utf-8")).hexdigest()
    bpe = AutoTokenizer.train(iter(["the cat sat on the mat", "the dog sat on the log"] * 5), 300, model="bpe")
    data = bpe.to_json()
    data["model"]["merges"] = data["model"]["merges"][:-1]      # the same vocabulary, other ids
    assert tokenizer_hash(files.from_dict(data)) != tokenizer_hash(bpe)


def test_the_id_dtype_follows_the_vocabulary(tmp_path):
    assert id_dtype(30522) == np.uint16 and id_dtype(65536) == np.uint16 and id_dtype(65537) == np.uint32
    with pytest.raises(ValueError, match="does not fit the largest id dtype"):
        id_dtype((1 << 32) + 1)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz"]
    tokens += [f"w{i}" for i in range(70_000 - len(tokens) - 1)] + ["zebra"]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n")
    (tmp_path / "c.txt").write_text("a zebra and a b c.\n")
    manifest = prepare(PrepareConfig(corpus=[str(tmp_path / "c.txt")], output=str(tmp_path / "out"),
                                     vocab=str(tmp_path / "vocab.txt"), workers=1, progress=False))
    assert manifest["id_dtype"] == "uint32"
    assert 69_999 in PreparedCorpus(tmp_path / "out").tokens(0).tolist()


def test_a_vocabulary_is_trained_on_a_bounded_seeded_sample(files, tmp_path):
    corpus = [str(f) for f in files]
    small = prepare(PrepareConfig(corpus=corpus, output=str(tmp_path / "a"), vocab_size=300, vocab_sample_mb=0.01,
                                  workers=1, progress=False))
    again = prepare(PrepareConfig(corpus=corpus, output=str(tmp_path / "b"), vocab_size=300, vocab_sample_mb=0.01,
                                  workers=1, progress=False))
    assert small["tokenizer_sha256"] == again["tokenizer_sha256"]
    assert (tmp_path / "a" / "tokenizer" / "vocab.txt").is_file()
    full = prepare(PrepareConfig(corpus=corpus, output=str(tmp_path / "c"), vocab_size=300, workers=1, progress=False))
    assert full["tokenizer_sha256"] != small["tokenizer_sha256"]      # 10 kB of 90 kB is another sample


def cli(*args):
    result = subprocess.run([sys.executable, "-m", "minibert", *map(str, args)], capture_output=True, text=True,
                            cwd=Path(__file__).parents[2])
    return result.returncode, result.stderr


def test_bad_input_gets_one_line_naming_it(tmp_path, corpus_and_vocab):
    _, vocab = corpus_and_vocab
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "records.jsonl").write_text('{"body": "some text"}\n{"body": "more"}\n')
    (tmp_path / "nulls.jsonl").write_text('{"text": null}\n{"text": "Real text here."}\n{"other": 1}\n')
    cases = [(["--corpus", tmp_path / "missing.txt"], "missing.txt"),
             (["--corpus", tmp_path / "empty.txt"], "holds no text"),
             (["--corpus", tmp_path / "records.jsonl"], "'text'"),
             (["--corpus", tmp_path / "nulls.jsonl", "--strict"], "nulls.jsonl"),
             (["--corpus", tmp_path / "empty.txt", "--workers", "-1"], "argument --workers"),     # (at parse time:
             (["--corpus", tmp_path / "nulls.jsonl", "--vocab-size", "5"], "argument --vocab-size")]  # exit status 2)
    for i, (args, named) in enumerate(cases):
        vocabulary = [] if "--vocab-size" in args else ["--vocab", vocab]
        code, stderr = cli("prepare", *args, *vocabulary, "--output", tmp_path / f"out{i}")
        parse_time = named.startswith("argument")
        assert code == (2 if parse_time else 1) and "Traceback" not in stderr, stderr
        last = stderr.strip().splitlines()[-1]                    # (after any progress bar)
        assert last.startswith("minibert prepare: error:" if parse_time else "minibert: error:") and named in last, stderr
    code, stderr = cli("prepare", "--corpus", tmp_path / "nulls.jsonl", "--vocab", vocab, "--tokenizer", "bpe",
                       "--output", tmp_path / "both")
    assert code == 1 and stderr.strip().splitlines()[-1] == ("minibert: error: --tokenizer chooses how a new vocabulary "
                                                             "is trained: give it or --vocab, not both")
    with pytest.raises(ValueError, match="--tokenizer must be one of wordpiece, bpe, unigram, not 'spm'"):
        prepare(PrepareConfig(corpus=[str(tmp_path / "nulls.jsonl")], output=str(tmp_path / "x"), tokenizer="spm"))
    manifest = prepare(PrepareConfig(corpus=[str(tmp_path / "nulls.jsonl")], output=str(tmp_path / "ok"),
                                     vocab=str(vocab), workers=1, progress=False))
    assert manifest["skipped"]["records"] == 2 and manifest["documents"] == 1
    assert manifest["characters"] == len("Real text here.")
