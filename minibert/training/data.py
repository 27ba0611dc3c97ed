"""Training examples from tokenized documents, and the batches of every step.

Two example builders:
- `pack_sequences` (MLM only, RoBERTa's FULL-SENTENCES, Liu et al. 2019 §4.2): the corpus as one stream of
  tokens, documents separated by [SEP], cut into rows of `[CLS] … [SEP]` with no padding but the last row's.
- `nsp_pairs` (MLM + NSP, Devlin et al. 2019 Appendix A.2, `create_instances_from_document`): `[CLS] A [SEP]
  B [SEP]` where B follows A half the time and is a random span of another document otherwise; with
  probability `short_seq_prob` a shorter target length; the longer side is truncated at a random end.

`Batches` turns examples into the batch of step `s` as a pure function of (seed, s) — shuffling per epoch
and masking — so that a resumed run sees exactly the data the interrupted one would have.

Sparse MLM head. With `max_predictions`, a batch also says *where* the loss is scored: `masked_positions`
(batch, max_predictions) and `labels` of the same shape, so that the model runs its MLM head (the vocabulary
projection) at those positions only (models/heads.py `select_masked`). XLA needs a static shape, hence a fixed
number of slots per row, as BERT's `max_predictions_per_seq` (Devlin et al. 2019, `create_pretraining_data.py`):
empty slots point at position 0 with label -100, and a row that draws more masked tokens than slots keeps a
random subset of its masked words that fits and leaves the others unmasked. `default_max_predictions` sizes
the slots at mean + 3 standard deviations of the masked count, so that this is rare: at seq 128 and rate 15%,
32 slots, 0.08% of full rows capped, 0.008% of masked tokens left out (more with whole-word masking).
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator

import numpy as np

from minibert.losses import IGNORE_INDEX
from minibert.training.masking import mask_tokens

NSP_IS_NEXT, NSP_IS_RANDOM = 0, 1


def tokenize_documents(tokenizer, documents: list[list[str]]) -> list[list[list[int]]]:
    """Each sentence → its WordPiece ids (no special tokens); empty sentences and documents dropped."""
    tokenized = []
    for document in documents:
        sentences = [ids for ids in (tokenizer.tokenize(s)[0] for s in document) if ids]
        if sentences:
            tokenized.append(sentences)
    return tokenized


def pack_sequences(documents: list[list[list[int]]], seq_len: int, cls_id: int, sep_id: int,
                   pad_id: int) -> dict[str, np.ndarray]:
    """Concatenate every document (separated by [SEP]) and cut into (n, seq_len) rows `[CLS] … [SEP]`."""
    stream = []
    for document in documents:
        for sentence in document:
            stream += sentence
        stream.append(sep_id)
    body = seq_len - 2
    rows = [stream[i:i + body] for i in range(0, len(stream), body)]
    input_ids = np.full((len(rows), seq_len), pad_id, np.int32)
    for i, row in enumerate(rows):
        input_ids[i, :len(row) + 2] = [cls_id, *row, sep_id]
    return {"input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids),
            "attention_mask": (input_ids != pad_id).astype(np.int32)}


def nsp_pairs(documents: list[list[list[int]]], seq_len: int, cls_id: int, sep_id: int, pad_id: int,
              rng: np.random.Generator, short_seq_prob: float = 0.1) -> dict[str, np.ndarray]:
    """BERT's sentence-pair examples with NSP labels (0 = B follows A, 1 = B is random)."""
    if len(documents) < 2:
        raise ValueError("NSP needs at least two documents in the corpus")
    examples = []
    max_tokens = seq_len - 3
    for index, document in enumerate(documents):
        target = max_tokens if rng.random() >= short_seq_prob else int(rng.integers(2, max_tokens + 1))
        chunk, length, i = [], 0, 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                pieces = chunk if len(chunk) >= 2 else _halves(chunk[0], rng)  # a lone sentence: its halves
                split = int(rng.integers(1, len(pieces))) if len(pieces) >= 2 else 1
                a = [t for s in pieces[:split] for t in s]
                if len(pieces) == 1 or rng.random() < 0.5:
                    label = NSP_IS_RANDOM
                    other = documents[_other_index(rng, len(documents), index)]
                    start = int(rng.integers(0, len(other)))
                    b = [t for s in other[start:] for t in s][:max(1, target - len(a))]
                    if pieces is chunk:
                        i -= len(chunk) - split      # the unused sentences go back to the document
                else:
                    label = NSP_IS_NEXT
                    b = [t for s in pieces[split:] for t in s]
                a, b = _truncate_pair(a, b, max_tokens, rng)
                examples.append(([cls_id, *a, sep_id, *b, sep_id], len(a) + 2, label))
                chunk, length = [], 0
            i += 1
    input_ids = np.full((len(examples), seq_len), pad_id, np.int32)
    token_type_ids = np.zeros_like(input_ids)
    for row, (ids, first_len, _) in enumerate(examples):
        input_ids[row, :len(ids)] = ids
        token_type_ids[row, first_len:len(ids)] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids,
            "attention_mask": (np.arange(seq_len)[None] < np.array([len(e[0]) for e in examples])[:, None]).astype(np.int32),
            "next_sentence_label": np.array([e[2] for e in examples], np.int32)}


def _halves(sentence: list[int], rng: np.random.Generator) -> list[list[int]]:
    if len(sentence) < 2:
        return [sentence]
    cut = int(rng.integers(1, len(sentence)))
    return [sentence[:cut], sentence[cut:]]


def _other_index(rng: np.random.Generator, n: int, index: int) -> int:
    other = int(rng.integers(0, n - 1))
    return other + (other >= index)


def _truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: np.random.Generator):
    """Drop tokens from the front or back (at random) of the longer side until both fit."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        del longer[0 if rng.random() < 0.5 else -1]
    return a, b


def default_max_predictions(seq_len: int, mask_rate: float) -> int:
    """Masked-token slots per row for a sparse MLM head: ⌈μ + 3σ⌉ of the masked count of a full row
    (μ = rate·seq, σ² = seq·rate·(1 − rate)), rounded up to a multiple of 8 (matmul tiles), at most seq."""
    mean, std = mask_rate * seq_len, math.sqrt(seq_len * mask_rate * (1.0 - mask_rate))
    return min(seq_len, 8 * math.ceil(math.ceil(mean + 3.0 * std) / 8))


class Batches:
    """The masked batch of every step, a pure function of (seed, step).

    examples: dict of (n, seq) arrays (plus (n,) NSP labels). Step s uses rows s·B … (s+1)·B of the
    permutation of epoch ⌊s·B / n⌋; masking draws from a Generator seeded with (seed, s).
    max_predictions: None → `labels` (batch, seq), -100 where nothing is predicted (a dense MLM head). An int
    → at most that many masked tokens per row, and `masked_positions` + `labels` (batch, max_predictions) for a
    sparse MLM head (see the module docstring)."""

    def __init__(self, examples: dict[str, np.ndarray], batch_size: int, tokenizer, *, seed: int, mask_rate: float,
                 whole_word: bool = False, max_predictions: int | None = None):
        self.examples, self.batch_size, self.seed, self.mask_rate = examples, batch_size, seed, mask_rate
        self.size = len(examples["input_ids"])
        if self.size < batch_size:
            raise ValueError(f"the corpus gives {self.size} examples, fewer than one batch of {batch_size}")
        seq_len = examples["input_ids"].shape[1]
        if max_predictions is not None and not 1 <= max_predictions <= seq_len:
            raise ValueError(f"max_predictions must be in [1, {seq_len}] (the sequence length), got {max_predictions}")
        self.max_predictions = max_predictions
        self.mask_id, self.vocab_size = tokenizer.mask_id, len(tokenizer)
        self.special = np.array(sorted({tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id}), np.int32)
        self.continuation = None
        if whole_word:
            self.continuation = np.array([tokenizer.id_to_token[i].startswith("##") for i in range(len(tokenizer))])

    def rows(self, step: int) -> np.ndarray:
        start = step * self.batch_size
        epoch, offset = divmod(start, self.size)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        if offset + self.batch_size <= self.size:
            return order[offset:offset + self.batch_size]
        following = np.random.default_rng([self.seed, epoch + 1]).permutation(self.size)
        return np.concatenate([order[offset:], following[:offset + self.batch_size - self.size]])

    def __call__(self, step: int) -> dict[str, np.ndarray]:
        batch = {k: v[self.rows(step)] for k, v in self.examples.items()}
        ids = batch["input_ids"]
        maskable = ~np.isin(ids, self.special) & (batch["attention_mask"] > 0)
        continuation = None if self.continuation is None else self.continuation[ids]
        batch["input_ids"], batch["labels"] = mask_tokens(
            ids, maskable, np.random.default_rng([self.seed, 1 << 20, step]), rate=self.mask_rate,
            mask_id=self.mask_id, vocab_size=self.vocab_size, continuation=continuation)
        if self.max_predictions is not None:
            rng = np.random.default_rng([self.seed, 2 << 20, step])
            batch["input_ids"], batch["labels"], batch["masked_positions"] = sparse_predictions(
                ids, batch["input_ids"], batch["labels"], self.max_predictions, rng, continuation)
        return batch


def sparse_predictions(original: np.ndarray, corrupted: np.ndarray, labels: np.ndarray, max_predictions: int,
                       rng: np.random.Generator, continuation: np.ndarray | None = None):
    """Dense masking → at most `max_predictions` predictions per row, listed by position.

    original, corrupted, labels: (batch, seq), labels -100 where nothing is predicted; continuation: (batch, seq)
    bool, True at a word's non-first piece (whole-word masking), or None. A row with more masked tokens than
    slots keeps its masked words in a random order while they fit (a word is never split) and restores the
    others to their original ids. Returns (input_ids (batch, seq), labels (batch, n), masked_positions
    (batch, n)), n = max_predictions; empty slots hold position 0 and label -100."""
    batch, seq = labels.shape
    chosen = labels != IGNORE_INDEX
    index = np.broadcast_to(np.arange(seq), (batch, seq))
    word = index if continuation is None else np.maximum(np.cumsum(~continuation, axis=1) - 1, 0)
    priority = np.take_along_axis(rng.random((batch, seq)), word, axis=1)      # one random draw per word
    order = np.lexsort((index, priority, ~chosen), axis=1)                     # chosen first, words contiguous
    kept_in_order = np.take_along_axis(chosen, order, axis=1) & (index < max_predictions)
    if max_predictions < seq:                                                  # a word cut by the last slot
        cut = np.take_along_axis(word, order[:, max_predictions:max_predictions + 1], axis=1)
        cut_chosen = np.take_along_axis(chosen, order[:, max_predictions:max_predictions + 1], axis=1)
        kept_in_order &= ~(cut_chosen & (np.take_along_axis(word, order, axis=1) == cut))
    kept = np.zeros_like(chosen)
    np.put_along_axis(kept, order, kept_in_order, axis=1)
    input_ids = np.where(chosen & ~kept, original, corrupted)
    slots = np.argsort(~kept, axis=1, kind="stable")[:, :max_predictions]     # kept positions, in order
    filled = np.take_along_axis(kept, slots, axis=1)
    positions = np.where(filled, slots, 0).astype(np.int32)
    sparse_labels = np.where(filled, np.take_along_axis(labels, slots, axis=1), IGNORE_INDEX).astype(labels.dtype)
    return input_ids, sparse_labels, positions


def prefetch(make_batch, steps: range, put, depth: int = 2) -> Iterator:
    """Build and transfer batches on a background thread, `depth` steps ahead of the accelerator."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)

    def work():
        try:
            for step in steps:
                buffer.put(put(make_batch(step)))
        except BaseException as error:  # surfaced in the consumer
            buffer.put(error)

    threading.Thread(target=work, daemon=True).start()
    for _ in steps:
        item = buffer.get()
        if isinstance(item, BaseException):
            raise item
        yield item
