"""A prepared corpus (training/prepare.py), read by position: documents and sentences without loading the corpus.

    corpus = PreparedCorpus("data/wiki")          # checks manifest.json, reads every shard's header
    corpus.documents                              # how many
    corpus.tokens(d)                              # (n,) int32 the token ids of document d, all its sentences
    corpus.sentence_ends(d)                       # (sentences,) the end of each sentence in corpus.tokens(d)
    corpus.lengths()                              # (documents,) the token count of every document

Only what is per document lives in memory (its shard and its ends in sentences and tokens: 36 bytes a document);
token ids and sentence ends stay on disk and are read by position (`os.pread`), exactly the bytes an example
needs. Not `np.memmap`: on a current Linux kernel a memory-mapped read maps whole page-cache folios (up to 2 MB)
into the process, so its resident memory grew with the corpus (+0.4 GB for 20 batches of a 4 GB corpus, measured);
positional reads leave that cache to the kernel and keep the process's memory flat.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from minibert.training.prepare import FORMAT, TOKENIZER_DIR, PrepareError, tokenizer_hash


class ShardArray:
    """A flat `.npy` array on disk, sliced by positional reads: `array[a:b]` reads those elements only."""

    def __init__(self, path: Path):
        self.path = path
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            (self.length,), _, self.dtype = read_header(f)
            self.offset = f.tell()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, _ = index.indices(self.length)
        fd = os.open(self.path, os.O_RDONLY)       # opened per read: a corpus of many shards holds no descriptors
        try:
            data = os.pread(fd, max(stop - start, 0) * self.dtype.itemsize, self.offset + start * self.dtype.itemsize)
        finally:
            os.close(fd)
        return np.frombuffer(data, self.dtype)


class PreparedCorpus:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        manifest_file = self.directory / "manifest.json"
        if not self.directory.is_dir():
            raise FileNotFoundError(f"prepared corpus {self.directory} does not exist (make one with `minibert prepare`)")
        if not manifest_file.is_file():
            hint = (" (its preparation did not finish: run the same `minibert prepare` again to continue)"
                    if (self.directory / "plan.json").is_file() else " (make one with `minibert prepare`)")
            raise FileNotFoundError(f"{self.directory} is not a prepared corpus: no manifest.json{hint}")
        self.manifest = json.loads(manifest_file.read_text())
        if self.manifest.get("format") != FORMAT:
            raise PrepareError(f"{manifest_file}: format {self.manifest.get('format')!r}, this minibert reads {FORMAT}")
        self.ids, self.sentence_end, ends = [], [], []
        for shard in self.manifest["shards"]:
            path = self.directory / "shards" / shard["name"]
            self.ids.append(ShardArray(path.with_suffix(".ids.npy")))
            self.sentence_end.append(ShardArray(path.with_suffix(".sentences.npy")))
            ends.append(np.load(path.with_suffix(".documents.npy")).reshape(-1, 2))
        # per document: its shard, and where it starts and ends in that shard's sentences and tokens
        self.shard_of = np.repeat(np.arange(len(ends), dtype=np.int32), [len(e) for e in ends])
        self.end = np.concatenate(ends)                                                     # (documents, 2)
        self.start = np.concatenate([np.concatenate([[[0, 0]], e])[:-1] for e in ends]).astype(np.int64)  # (an empty
        # shard, a unit whose range held no document start, adds nothing)
        self.documents = len(self.shard_of)

    def check_tokenizer(self, tokenizer) -> None:
        """A clear error when `tokenizer` is not the one the corpus was prepared with."""
        if tokenizer_hash(tokenizer) != self.manifest["tokenizer_sha256"]:
            raise PrepareError(f"{self.directory} was prepared with another tokenizer ({self.directory / TOKENIZER_DIR}) "
                               f"than this run's: prepare the corpus again with this vocabulary, or train with "
                               f"the prepared one (omit --vocab)")

    def lengths(self) -> np.ndarray:
        """(documents,) int64: the token count of every document."""
        return self.end[:, 1] - self.start[:, 1]

    def tokens(self, d: int) -> np.ndarray:
        return self.ids[self.shard_of[d]][self.start[d, 1]:self.end[d, 1]].astype(np.int32)

    def sentence_ends(self, d: int) -> np.ndarray:
        """The end of each sentence of document d, counted from the document's first token."""
        return self.sentence_end[self.shard_of[d]][self.start[d, 0]:self.end[d, 0]] - self.start[d, 1]
