"""Training examples made per step from a prepared corpus (training/shards.py), and the batch of every step.

Two example builders, each a random-access list of examples over a range of documents (and `FixedRows`, for
examples built elsewhere):
- `PackedRows` (MLM only, RoBERTa's FULL-SENTENCES, Liu et al. 2019 §4.2): the documents as one stream of
  tokens, each followed by [SEP], cut into rows of `[CLS] … [SEP]` with no padding but the last row's.
  Row i is stream[i·(seq − 2) : (i + 1)·(seq − 2)], found by a binary search over the documents' starts.
  ([CLS] … [SEP] stands for the tokenizer's template, e.g. RoBERTa's <s> … </s>: tokenization/template.py.)
- `SentencePairs` (MLM + NSP, Devlin et al. 2019 Appendix A.2, `create_instances_from_document`): every
  document is cut into chunks of consecutive sentences of about seq − 3 tokens (chunk k: from the sentence
  holding token k·(seq − 3) to the one holding token (k + 1)·(seq − 3)); an example splits its chunk at a
  random sentence into A and B, and half the time replaces B by a span of another, random document
  (NSP label 1). With probability `short_seq_prob` a shorter target length; the longer side is truncated at a
  random end until the pair fits. A chunk of one sentence is split into its halves.

`Batches` is the loader, built with `grain`: the example indices are shuffled anew every epoch (a lazy,
constant-memory permutation), each example is built and masked with a generator seeded by (seed, its
position in the stream), and B consecutive examples make the batch of a step. So the batch of step s is a pure
function of (seed, s) — a resumed run sees exactly the data the interrupted one would have — and under
`jax.distributed` every process builds only its own rows of it: process p of P takes rows p·B/P … (p+1)·B/P.

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

import grain
import jax
import numpy as np

from minibert.losses import IGNORE_INDEX
from minibert.training.batch import Batch
from minibert.training.masking import mask_tokens
from minibert.training.shards import PreparedCorpus

NSP_IS_NEXT, NSP_IS_RANDOM = 0, 1


class PackedRows:
    """MLM rows `[CLS] stream[i·body : (i+1)·body] [SEP]`, body = seq − 2, over documents [first, last)."""

    def __init__(self, corpus: PreparedCorpus, documents: range, seq_len: int, tokenizer):
        self.corpus, self.documents, self.seq_len, self.tokenizer = corpus, documents, seq_len, tokenizer
        self.body = seq_len - tokenizer.num_special_tokens_to_add(pair=False)
        self.sep_id, self.pad_id = _token_id(tokenizer, "sep_token"), _token_id(tokenizer, "pad_token")
        lengths = corpus.lengths()[documents.start:documents.stop] + 1                 # each document + [SEP]
        self.start = np.concatenate([[0], np.cumsum(lengths)])                          # its place in the stream
        self.size = math.ceil(int(self.start[-1]) / self.body)

    def __len__(self) -> int:
        return self.size

    def __call__(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        a, b = index * self.body, min((index + 1) * self.body, int(self.start[-1]))
        pieces, d = [], int(np.searchsorted(self.start, a, side="right")) - 1
        while d < len(self.documents) and self.start[d] < b:
            document = np.append(self.corpus.tokens(self.documents.start + d), self.sep_id)
            pieces.append(document[max(a - self.start[d], 0):b - self.start[d]])
            d += 1
        body = np.concatenate(pieces).tolist()
        row = self.tokenizer.build_inputs_with_special_tokens(body)
        types = self.tokenizer.create_token_type_ids_from_sequences(body)
        return _padded(np.array(row), np.array(types), self.seq_len, self.pad_id)


class SentencePairs:
    """Sentence-pair examples `[CLS] A [SEP] B [SEP]` (types 0 … 0 1 … 1) over documents [first, last): A is the
    first sentences of a chunk of one document. NSP (BERT, Devlin et al. 2019 §3.1): B is the rest of the chunk, or,
    half the time, sentences of another document (`next_sentence_label` 1). SOP with `sentence_order` (ALBERT,
    Lan et al. 2020 §3.1): B is always the rest of the chunk, and half the time the two are swapped
    (`sentence_order_label` 1), so topic gives nothing away: only the order does."""

    def __init__(self, corpus: PreparedCorpus, documents: range, seq_len: int, tokenizer, short_seq_prob: float = 0.1,
                 *, sentence_order: bool = False):
        if len(documents) < 2 and not sentence_order:
            raise ValueError("NSP needs at least two documents in the corpus")
        self.sentence_order = sentence_order
        self.corpus, self.documents, self.seq_len, self.short_seq_prob = corpus, documents, seq_len, short_seq_prob
        self.tokenizer, self.pad_id = tokenizer, _token_id(tokenizer, "pad_token")
        self.max_tokens = seq_len - tokenizer.num_special_tokens_to_add(pair=True)
        chunks = -(-corpus.lengths()[documents.start:documents.stop] // self.max_tokens)   # ⌈length / (seq − 3)⌉
        self.start = np.concatenate([[0], np.cumsum(chunks)])
        self.size = int(self.start[-1])

    def __len__(self) -> int:
        return self.size

    def sentences(self, d: int, first: int = 0, last: int | None = None,
                  ends: np.ndarray | None = None) -> list[np.ndarray]:
        """Sentences [first, last) of document d (`ends`: its sentence ends, when already read)."""
        tokens = self.corpus.tokens(self.documents.start + d)
        ends = self.corpus.sentence_ends(self.documents.start + d) if ends is None else ends
        starts = np.concatenate([[0], ends[:-1]])
        return [tokens[s:e] for s, e in zip(starts[first:last], ends[first:last])]

    def __call__(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d = int(np.searchsorted(self.start, index, side="right")) - 1
        k, ends = index - int(self.start[d]), self.corpus.sentence_ends(self.documents.start + d)
        first = int(np.searchsorted(ends, k * self.max_tokens, side="right"))          # holds token k·T
        last = max(int(np.searchsorted(ends, (k + 1) * self.max_tokens, side="right")), first + 1)
        chunk = self.sentences(d, first, last, ends)
        target = self.max_tokens if rng.random() >= self.short_seq_prob else int(rng.integers(2, self.max_tokens + 1))
        pieces = chunk if len(chunk) >= 2 else _halves(chunk[0], rng)                   # a lone sentence: its halves
        split = int(rng.integers(1, len(pieces))) if len(pieces) >= 2 else 1
        a = np.concatenate(pieces[:split])
        if self.sentence_order:
            a, b = _truncate_pair(a, np.concatenate(pieces[split:]), target, rng)
            swapped = rng.random() < 0.5
            return self.row(*((b, a) if swapped else (a, b))) | {"sentence_order_label": np.int32(swapped)}
        if len(pieces) == 1 or rng.random() < 0.5:
            label = NSP_IS_RANDOM
            other = _other_index(rng, len(self.documents), d)
            other_sentences = self.sentences(other)
            start = int(rng.integers(0, len(other_sentences)))
            b = np.concatenate(other_sentences[start:])[:max(1, target - len(a))]
        else:
            label = NSP_IS_NEXT
            b = np.concatenate(pieces[split:])
        return self.row(*_truncate_pair(a, b, target, rng)) | {"next_sentence_label": np.int32(label)}

    def row(self, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        """`[CLS] A [SEP] B [SEP]`, its token types, padded to seq_len."""
        a, b = a.tolist(), b.tolist()
        row = np.array(self.tokenizer.build_inputs_with_special_tokens(a, b))
        types = np.array(self.tokenizer.create_token_type_ids_from_sequences(a, b))
        return _padded(row, types, self.seq_len, self.pad_id)


class FixedRows:
    """Examples already built: (n, seq) arrays (plus (n,) NSP labels), e.g. a benchmark's or a test's rows."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays, self.seq_len = arrays, arrays["input_ids"].shape[1]

    def __len__(self) -> int:
        return len(self.arrays["input_ids"])

    def __call__(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {k: v[index].copy() for k, v in self.arrays.items()}


def _token_id(tokenizer, role: str) -> int:
    """The id of the tokenizer's special token `role` ("pad_token", ...); ValueError naming it if absent."""
    token_id = getattr(tokenizer, f"{role}_id")
    if token_id is None:
        raise ValueError(f"the tokenizer has no {role}, which pretraining examples need")
    return token_id


def _padded(row: np.ndarray, types: np.ndarray, seq_len: int, pad_id: int) -> dict[str, np.ndarray]:
    input_ids = np.full(seq_len, pad_id, np.int32)
    input_ids[:len(row)] = row
    token_type_ids = np.zeros(seq_len, np.int32)
    token_type_ids[:len(types)] = types
    return {"input_ids": input_ids, "token_type_ids": token_type_ids,
            "attention_mask": (np.arange(seq_len) < len(row)).astype(np.int32)}


def _halves(sentence: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    if len(sentence) < 2:
        return [sentence]
    cut = int(rng.integers(1, len(sentence)))
    return [sentence[:cut], sentence[cut:]]


def _other_index(rng: np.random.Generator, n: int, index: int) -> int:
    other = int(rng.integers(0, n - 1))
    return other + (other >= index)


def _truncate_pair(a: np.ndarray, b: np.ndarray, max_tokens: int, rng: np.random.Generator):
    """Drop tokens from the front or back (at random) of the longer side until both fit."""
    a_start, a_end, b_start, b_end = 0, len(a), 0, len(b)
    while (a_end - a_start) + (b_end - b_start) > max_tokens:
        front = rng.random() < 0.5
        if a_end - a_start > b_end - b_start:
            a_start, a_end = (a_start + 1, a_end) if front else (a_start, a_end - 1)
        else:
            b_start, b_end = (b_start + 1, b_end) if front else (b_start, b_end - 1)
    return a[a_start:a_end], b[b_start:b_end]


def default_max_predictions(seq_len: int, mask_rate: float) -> int:
    """Masked-token slots per row for a sparse MLM head: ⌈μ + 3σ⌉ of the masked count of a full row
    (μ = rate·seq, σ² = seq·rate·(1 − rate)), rounded up to a multiple of 8 (matmul tiles), at most seq."""
    mean, std = mask_rate * seq_len, math.sqrt(seq_len * mask_rate * (1.0 - mask_rate))
    return min(seq_len, 8 * math.ceil(math.ceil(mean + 3.0 * std) / 8))


class Batches:
    """The masked batch of every step, a pure function of (seed, step); this process's rows of it.

    examples: `PackedRows`, `SentencePairs` or `FixedRows`. Step s uses the examples at positions s·B … (s+1)·B of the
    stream of epochs, each epoch a new permutation (`shuffle=False`: in order, for held-out data); masking
    draws from a generator seeded by (seed, position). max_predictions: None → `labels` (batch, seq), -100 where
    nothing is predicted (a dense MLM head). An int → at most that many masked tokens per row, and
    `masked_positions` + `labels` (batch, max_predictions) for a sparse MLM head (see the module docstring).
    `process_index` / `process_count` (default: jax's) pick this process's B/P rows of every batch."""

    def __init__(self, examples, batch_size: int, tokenizer, *, seed: int, mask_rate: float, whole_word: bool = False,
                 max_predictions: int | None = None, shuffle: bool = True, process_index: int | None = None,
                 process_count: int | None = None):
        self.examples, self.batch_size, self.mask_rate = examples, batch_size, mask_rate
        if len(examples) < batch_size:
            raise ValueError(f"the corpus gives {len(examples)} examples, fewer than one batch of {batch_size}")
        seq_len = examples.seq_len
        if max_predictions is not None and not 1 <= max_predictions <= seq_len:
            raise ValueError(f"max_predictions must be in [1, {seq_len}] (the sequence length), got {max_predictions}")
        self.max_predictions = max_predictions
        self.mask_id, self.vocab_size = _token_id(tokenizer, "mask_token"), len(tokenizer)
        self.special = np.array(sorted(tokenizer.all_special_ids), np.int32)
        self.tokenizer, self.whole_word = tokenizer, whole_word
        index = process_index if process_index is not None else jax.process_index()
        count = process_count if process_count is not None else jax.process_count()
        if batch_size % count:
            raise ValueError(f"batch size {batch_size} is not divisible by the {count} processes")
        stream = grain.MapDataset.range(len(examples))
        if shuffle:
            stream = stream.shuffle(seed=seed)
        self.dataset = stream.repeat().random_map(self.example, seed=seed).batch(batch_size // count)[index::count]

    def example(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Example `index`, masked (80/10/10) and, with a sparse head, listed by masked position."""
        example = self.examples(int(index), rng)
        ids = example["input_ids"][None]
        maskable = ~np.isin(ids, self.special) & (example["attention_mask"][None] > 0)
        continuation = ~self.tokenizer.word_starts(ids) if self.whole_word else None
        corrupted, labels = mask_tokens(ids, maskable, rng, rate=self.mask_rate, mask_id=self.mask_id,
                                        vocab_size=self.vocab_size, continuation=continuation)
        if self.max_predictions is not None:
            corrupted, labels, positions = sparse_predictions(ids, corrupted, labels, self.max_predictions, rng,
                                                              continuation)
            example["masked_positions"] = positions[0]
        example["input_ids"], example["labels"] = corrupted[0].astype(np.int32), labels[0].astype(np.int32)
        return example

    def __call__(self, step: int) -> Batch:
        return Batch.from_dict(self.dataset[step])


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
