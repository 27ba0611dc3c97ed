"""`minibert prepare`: tokenize a corpus once into shards of token ids on disk; train from them many times.

    corpus ──plan_units──► units ──workers: read_unit + tokenize──► shards/shard-NNNNN.{ids,sentences,documents}.npy
                                                                   manifest.json · tokenizer/ · plan.json

A *unit* is a piece of the corpus (a byte range of a text file, a Parquet row group, …; training/corpus.py) and
becomes one shard, three flat arrays that training reads by position (training/shards.py):

    ids.npy        (tokens,)    uint16 token ids, or uint32 when the vocabulary has more than 65,536 entries
    sentences.npy  (sentences,) int64, the end of each sentence in `ids` (cumulative)
    documents.npy  (documents, 2) int64, the end of each document in `sentences` and in `ids` (cumulative)

No special token is stored: [CLS], [SEP] and the NSP pairs are made per training step (training/data.py).

Work is split over `workers` processes, each with its own tokenizer (the from-scratch one, or its `tokenizers`
backend, which gives identical ids). Each shard is written to a temporary name and renamed, and its `.json` record
(counts) comes last: a killed `prepare` keeps its finished shards and the same command continues. Without a
vocabulary, one is trained on a bounded, seeded sample of the corpus (`vocab_sample_mb`) with the algorithm
`tokenizer` names (`AutoTokenizer.train`, tokenization/recipes.py: BERT's WordPiece, RoBERTa's byte-level BPE or ALBERT's Unigram), and saved as
`tokenizer/` (tokenizer.json, which `transformers`' AutoTokenizer loads). The manifest records the tokenizer's
hash, every source file with its size and SHA-256, the counts, and what was skipped.
"""

from __future__ import annotations

import array
import dataclasses
import errno
import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from minibert.options import AT_LEAST_0, POSITIVE, Range, bounded, check
from minibert.tokenization import AutoTokenizer, Tokenizer
from minibert.tokenization.recipes import TOKENIZERS
from minibert.training import corpus as corpora

FORMAT = "minibert-shards/1"
TOKENIZER_DIR = "tokenizer"
UNIT_BYTES, MIN_UNIT_BYTES = 64 << 20, 4 << 20    # text per unit of work (one shard): at most, and at least


class PrepareError(RuntimeError):
    """A preparation that cannot go on (another tokenizer or corpus in the output, a full disk): says what to do."""


VOCAB_SIZE = Range(6)                     # a trained vocabulary: the 5 special tokens and at least one more


@dataclasses.dataclass
class PrepareConfig:
    corpus: list[str] | None              # files, folders, `hub:PATH`; None: the embedded default
    output: str
    vocab: str | None = None              # vocab.txt or tokenizer directory; None: train one on a sample
    tokenizer: str | None = None          # the trained vocabulary's algorithm, one of TOKENIZERS; None: wordpiece
    vocab_size: int = bounded(4000, VOCAB_SIZE)
    lowercase: bool = True
    vocab_sample_mb: float = bounded(100.0, POSITIVE)    # text the vocabulary is trained on, at most
    workers: int = bounded(0, AT_LEAST_0)                # 0: every core
    backend: str = "minibert"             # or "tokenizers" (identical ids, faster)
    text_field: str = "text"              # JSONL / Parquet / datasets column
    strict: bool = False                  # skipped records and undecodable lines become errors
    seed: int = bounded(0, AT_LEAST_0)
    progress: bool = True


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id: uint16 up to 65,536 entries, else uint32."""
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    if vocab_size <= 1 << 32:
        return np.dtype(np.uint32)
    raise ValueError(f"a vocabulary of {vocab_size} entries does not fit the largest id dtype, uint32")


def tokenizer_hash(tokenizer: Tokenizer) -> str:
    """SHA-256 of what decides the ids: the vocabulary in id order (added tokens included) and the pipeline. For
    BERT's WordPiece, its normaliser's four switches (as before tokenizer.json existed, so that older shards keep
    their hash); for any other, the tokenizer.json sections of the normalizer, pre-tokenizer and model (which hold
    a BPE's merges, a Unigram's scores)."""
    n, model = tokenizer.normalizer, tokenizer.model.to_json()
    if hasattr(n, "handle_chinese_chars") and model["type"] == "WordPiece":
        options = [n.clean_text, n.handle_chinese_chars, n.strip_accents, n.lowercase]
    else:
        options = [None if c is None else c.to_json() for c in (n, tokenizer.pre_tokenizer)] + [model]
    text = json.dumps([options, [tokenizer.id_to_token[i] for i in range(len(tokenizer))]], ensure_ascii=False,
                      sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_tokenizer(path: str | Path, lowercase: bool = True, backend: str = "minibert") -> Tokenizer:
    """A tokenizer directory (any AutoTokenizer reads), a tokenizer.json, or a bare vocab.txt (WordPiece)."""
    path = Path(path)
    if path.is_dir():
        return AutoTokenizer.from_pretrained(path, backend=backend)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary {path} does not exist")
    return AutoTokenizer.from_file(path, lowercase=lowercase, backend=backend)


# ---- one unit → one shard (runs in a worker process) ---------------------------------------------

_worker = {}


def _start_worker(tokenizer_dir: str, backend: str) -> None:
    _worker["tokenizer"] = AutoTokenizer.from_pretrained(tokenizer_dir, backend=backend)


def _write_array(path: Path, values: np.ndarray) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as f:
        np.save(f, values)
    os.replace(temporary, path)


def tokenize_unit(job: tuple) -> dict:
    """Read one unit, tokenize every sentence, write its shard; returns the shard's record."""
    unit, name, shard_dir, text_field, strict, dtype = job
    tokenizer = _worker["tokenizer"]
    ids = array.array("H" if dtype == "uint16" else "I")
    sentence_ends, document_ends = array.array("q"), array.array("q")
    stats, characters = corpora.ReadStats(), 0
    for document in corpora.read_unit(unit, stats, text_field=text_field, strict=strict):
        for sentence in document:
            characters += len(sentence)
            tokens = tokenizer.encode(sentence, add_special_tokens=False).ids
            if tokens:
                ids.extend(tokens)
                sentence_ends.append(len(ids))
        if len(sentence_ends) > (document_ends[-2] if document_ends else 0):
            document_ends.extend((len(sentence_ends), len(ids)))
    record = {"name": name, "documents": len(document_ends) // 2, "sentences": len(sentence_ends), "tokens": len(ids),
              "characters": characters, "bytes": unit.nbytes, "stats": dataclasses.asdict(stats)}
    write_shard(Path(shard_dir) / name, np.frombuffer(ids, dtype), np.frombuffer(sentence_ends, np.int64),
                np.frombuffer(document_ends, np.int64).reshape(-1, 2), record)
    return record


def write_shard(shard: Path, ids: np.ndarray, sentence_ends: np.ndarray, document_ends: np.ndarray,
                record: dict) -> None:
    """The three arrays, then the `.json` record: each written to a temporary name and renamed, so a shard with
    its record is complete. A full disk raises PrepareError; nothing partial is left."""
    try:
        _write_array(shard.with_suffix(".ids.npy"), ids)
        _write_array(shard.with_suffix(".sentences.npy"), sentence_ends)
        _write_array(shard.with_suffix(".documents.npy"), document_ends)
        temporary = shard.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, shard.with_suffix(".json"))           # the shard is complete from here on
    except OSError as e:
        for partial in shard.parent.glob(f"{shard.name}.*.tmp"):
            partial.unlink(missing_ok=True)
        if e.errno == errno.ENOSPC:
            raise PrepareError(f"the disk filled while writing {shard}: finished shards are kept; free some space and "
                               f"run the same command again to continue") from None
        raise


# ---- the whole corpus -----------------------------------------------------------------------------

def prepare(config: PrepareConfig) -> dict:
    """Prepare `config.corpus` into `config.output`; returns the manifest. Continues a killed run; a finished
    output with the same corpus and tokenizer is returned as it is.

    Raises corpus.CorpusError (a missing/empty corpus, bad records), PrepareError (the output holds another
    corpus or tokenizer's shards; a full disk), ValueError (a vocabulary too large for uint32, bad options)."""
    check(config)                                    # the ranges of vocab_size, vocab_sample_mb, workers, seed
    if config.backend not in ("minibert", "tokenizers"):
        raise ValueError(f"--backend must be minibert or tokenizers, not {config.backend!r}")
    if config.tokenizer is not None and config.tokenizer not in TOKENIZERS:
        raise ValueError(f"--tokenizer must be one of {', '.join(TOKENIZERS)}, not {config.tokenizer!r}")
    if config.tokenizer and config.vocab:
        raise ValueError("--tokenizer chooses how a new vocabulary is trained: give it or --vocab, not both")
    out = Path(config.output)
    units = corpora.plan_units(config.corpus, text_field=config.text_field, unit_bytes=UNIT_BYTES)
    if corpora.corpus_bytes(units) < 16 * UNIT_BYTES:          # a smaller corpus: about 16 units, for the workers
        units = corpora.plan_units(config.corpus, text_field=config.text_field,
                                   unit_bytes=max(MIN_UNIT_BYTES, corpora.corpus_bytes(units) // 16))
    _check_text_field(units, config.text_field)
    sources = [{"path": str(p.resolve()), "bytes": p.stat().st_size} for p in corpora.source_files(units)]
    tokenizer = _tokenizer(config, units, out)
    dtype = id_dtype(len(tokenizer))
    plan = {"format": FORMAT, "tokenizer_sha256": tokenizer_hash(tokenizer), "id_dtype": dtype.name,
            "text_field": config.text_field, "sources": sources, "units": [dataclasses.asdict(u) for u in units]}
    if not config.vocab:                  # how the vocabulary was trained: a rerun with other options is refused
        plan["vocabulary"] = {"vocab_size": config.vocab_size, "lowercase": config.lowercase,
                              "vocab_sample_mb": config.vocab_sample_mb, "seed": config.seed}
        if config.tokenizer not in (None, "wordpiece"):   # (WordPiece's plans predate the option: unchanged)
            plan["vocabulary"]["tokenizer"] = config.tokenizer
    plan = _continue_or_start(out, plan)
    units = [corpora.Unit(**u) for u in plan["units"]]
    if (out / "manifest.json").is_file():
        return json.loads((out / "manifest.json").read_text())

    shard_dir = out / "shards"
    names = [f"shard-{i:05d}" for i in range(len(units))]
    done = {n: json.loads((shard_dir / f"{n}.json").read_text()) for n in names if (shard_dir / f"{n}.json").is_file()}
    jobs = [(u, n, str(shard_dir), config.text_field, config.strict, dtype.name)
            for u, n in zip(units, names) if n not in done]
    workers = min(config.workers or os.cpu_count() or 1, max(len(jobs), 1))
    bar = tqdm(total=sum(u.nbytes for u in units), initial=sum(r["bytes"] for r in done.values()), unit="B",
               unit_scale=True, unit_divisor=1024, desc="prepare", disable=not config.progress, dynamic_ncols=True)
    with bar:
        for record in _run(jobs, workers, out / TOKENIZER_DIR, config.backend):
            done[record["name"]] = record
            bar.update(record["bytes"])
    return _finish(out, plan, [done[n] for n in names], config, len(tokenizer))


def _run(jobs: list, workers: int, tokenizer_dir: Path, backend: str):
    """Each job's record as it finishes: in this process for one worker, else in a pool of fresh processes
    (spawned: a forked JAX process is not safe)."""
    if workers == 1:
        _start_worker(str(tokenizer_dir), backend)
        yield from map(tokenize_unit, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start_worker, initargs=(str(tokenizer_dir), backend)) as pool:
        yield from pool.imap_unordered(tokenize_unit, jobs)


def _check_text_field(units: list, text_field: str, records: int = 1000) -> None:
    """Fail at once, not after the whole corpus, when the first records of the first JSON Lines unit all lack the
    text field (Parquet and datasets columns are checked by their readers)."""
    first = next((u for u in units if u.kind == "jsonl"), None)
    if first is None:
        return
    stats = corpora.ReadStats()
    for _ in corpora.read_unit(first, stats, text_field=text_field):
        if stats.records >= records:
            break
    if stats.records and not stats.records_with_field:
        raise corpora.CorpusError(f"no record has the text field {text_field!r} (first record: {stats.first_record}); "
                                  f"choose the field with --text-field")


def _tokenizer(config: PrepareConfig, units: list, out: Path) -> Tokenizer:
    """The given vocabulary, the one a previous run of this output saved, or one trained on a seeded sample of at
    most `vocab_sample_mb` of the corpus: whole units in a seeded random order until the budget is met."""
    saved = out / TOKENIZER_DIR
    if config.vocab:
        tokenizer = load_tokenizer(config.vocab, config.lowercase)
    elif _is_saved(saved):
        return AutoTokenizer.from_pretrained(saved)
    else:
        budget = int(config.vocab_sample_mb * (1 << 20))

        def sample():
            taken = 0
            for i in np.random.default_rng(config.seed).permutation(len(units)):
                for document in corpora.read_unit(units[i], corpora.ReadStats(), text_field=config.text_field):
                    for sentence in document:
                        yield sentence
                        taken += len(sentence) + 1
                        if taken >= budget:
                            return

        tokenizer = AutoTokenizer.train(sample(), config.vocab_size, model=config.tokenizer or "wordpiece",
                                        lowercase=config.lowercase)
    id_dtype(len(tokenizer))
    if _is_saved(saved):
        if tokenizer_hash(AutoTokenizer.from_pretrained(saved)) != tokenizer_hash(tokenizer):
            raise PrepareError(f"{out} was prepared with another tokenizer ({saved}) than {config.vocab}: "
                               f"choose another --output, or delete {out}")
        return tokenizer
    tokenizer.save_pretrained(saved)
    return tokenizer


def _is_saved(directory: Path) -> bool:
    return (directory / "vocab.txt").is_file() or (directory / "tokenizer.json").is_file()


def _continue_or_start(out: Path, plan: dict) -> dict:
    """Start a new output (writing plan.json), or continue one whose plan has the same format, tokenizer, corpus
    files (paths and sizes), text field and, for a trained vocabulary, training options (--vocab-size, --cased,
    --vocab-sample, --seed); anything else is an error, never a mixed output."""
    plan_file = out / "plan.json"
    if plan_file.is_file():
        previous = json.loads(plan_file.read_text())
        for key, what in (("format", "shard format"), ("tokenizer_sha256", "tokenizer"), ("sources", "set of corpus files"),
                          ("text_field", "text field"), ("vocabulary", "vocabulary training options")):
            if key in plan and previous.get(key) != plan[key]:
                raise PrepareError(f"{out} holds a preparation with another {what}: choose another --output, "
                                   f"or delete {out} to start again")
        return previous
    (out / "shards").mkdir(parents=True, exist_ok=True)
    temporary = plan_file.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(plan, indent=1))
    os.replace(temporary, plan_file)
    return plan


def _finish(out: Path, plan: dict, records: list[dict], config: PrepareConfig, vocab_size: int) -> dict:
    """Check what was read, hash the sources, write manifest.json (last: its presence means finished)."""
    stats = sum((corpora.ReadStats(**r["stats"]) for r in records), corpora.ReadStats())
    if stats.records and not stats.records_with_field:
        raise corpora.CorpusError(f"no record has the text field {config.text_field!r} (first record: "
                                  f"{stats.first_record}); choose the field with --text-field")
    documents = sum(r["documents"] for r in records)
    if not documents:
        raise corpora.CorpusError(f"the corpus {', '.join(config.corpus or ['(embedded default)'])} holds no text "
                                  f"that tokenizes to anything")
    sources = [{**s, "sha256": _sha256(s["path"])} for s in plan["sources"]]
    manifest = {"format": plan["format"], "id_dtype": plan["id_dtype"], "tokenizer_sha256": plan["tokenizer_sha256"],
                "tokenizer": TOKENIZER_DIR, "vocab_size": vocab_size,
                "text_field": plan["text_field"], "sources": sources,
                "documents": documents, "sentences": sum(r["sentences"] for r in records),
                "tokens": sum(r["tokens"] for r in records), "characters": sum(r["characters"] for r in records),
                "skipped": {"records": stats.records_skipped, "undecodable_lines": stats.lines_undecodable},
                "shards": [{k: r[k] for k in ("name", "documents", "sentences", "tokens")} for r in records]}
    temporary = out / "manifest.json.tmp"
    temporary.write_text(json.dumps(manifest, indent=1))
    os.replace(temporary, out / "manifest.json")
    return manifest


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def summary(manifest: dict) -> str:
    """One line on what a preparation holds and skipped."""
    skipped = manifest["skipped"]
    notes = [f"{skipped['records']:,} record(s) without text skipped" if skipped["records"] else "",
             f"{skipped['undecodable_lines']:,} undecodable line(s) skipped" if skipped["undecodable_lines"] else ""]
    return (f"{manifest['documents']:,} documents, {manifest['sentences']:,} sentences, {manifest['tokens']:,} tokens "
            f"({manifest['id_dtype']}) in {len(manifest['shards'])} shards" + "".join(f"; {n}" for n in notes if n))
