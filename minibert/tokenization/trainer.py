"""Learning a WordPiece vocabulary from a corpus, bottom-up by merges.

Schuster & Nakajima (2012) and Wu et al. (2016, §4.1) grow the vocabulary greedily from single
characters, each time adding the combination of two units that most improves the likelihood of
the training data under a unigram model; Google never released that trainer. We implement what
Hugging Face's `tokenizers` `WordPieceTrainer` (used to build BERT-style vocabularies today)
does, which is byte-pair-encoding-style merging (Sennrich et al. 2016) on WordPiece's spelling:

1. Normalize and pre-tokenize the corpus exactly as the tokenizer will, and count the words.
2. The alphabet: every character of those words (at most `limit_alphabet`, most frequent first).
   Spell each word as characters, marking every non-initial one with "##":
   "hugs" -> h ##u ##g ##s.
3. Repeatedly merge the most frequent adjacent pair of units (counted over the corpus) into a
   new vocabulary entry -- h + ##u -> hu, ##g + ##s -> ##gs -- until the vocabulary has
   `vocab_size` entries or the best pair occurs fewer than `min_frequency` times.

Ties between equally frequent pairs go to the pair of earlier-created units, so the result is
deterministic. The greedy longest-match encoder (wordpiece.py) then uses the entries; it never
needs the merge list itself, which is what makes the result a WordPiece vocabulary.
"""

import collections
import heapq
import os

from minibert.tokenization.pretokenize import pre_tokenize
from minibert.tokenization.wordpiece import PREFIX


def iter_texts(files_or_iterator):
    """A file path, a list or tuple of paths, or any other iterable of texts or of batches
    of texts (a generator, `iter(list_of_texts)`, what `train_new_from_iterator` takes) -> the
    texts (for files, their lines)."""
    if isinstance(files_or_iterator, (str, os.PathLike)):
        files_or_iterator = [files_or_iterator]
    if isinstance(files_or_iterator, (list, tuple)) and all(
            isinstance(f, (str, os.PathLike)) for f in files_or_iterator):
        for path in files_or_iterator:
            with open(path, encoding="utf-8") as f:
                yield from f
    else:
        for item in files_or_iterator:
            if isinstance(item, str):
                yield item
            elif isinstance(item, (list, tuple)):
                yield from item
            else:
                raise TypeError(f"training data: expected texts or lists of texts, not "
                                f"{type(item).__name__}")


def count_words(texts, normalizer) -> collections.Counter:
    """How often each pre-tokenized word occurs."""
    counts = collections.Counter()
    for text in texts:
        counts.update(word for word, _, _ in pre_tokenize(normalizer(text)[0]))
    return counts


def train_vocab(files_or_iterator, vocab_size, normalizer, min_frequency, special_tokens,
                limit_alphabet=1000, initial_alphabet=(), prefix=PREFIX) -> dict[str, int]:
    """Learn a vocabulary: {token: id}, special tokens first, then the alphabet, then merges.

    WordPieceTrainer's options: `limit_alphabet` keeps the most frequent characters (those
    of `initial_alphabet` always), `prefix` is the continuing-subword prefix."""
    word_counts = count_words(iter_texts(files_or_iterator), normalizer)

    char_counts = collections.Counter()
    for word, n in word_counts.items():
        for c in word:
            char_counts[c] += n
    initial = {s[0] for s in initial_alphabet if s}  # tokenizers keeps each one's first char
    others = [c for c, _ in char_counts.most_common() if c not in initial]
    if limit_alphabet is not None:
        others = others[:max(limit_alphabet - len(initial), 0)]
    alphabet = sorted(initial | set(others))
    tokens = list(dict.fromkeys([*special_tokens, *alphabet]))
    vocab = {t: i for i, t in enumerate(tokens)}

    def token_id(token):
        if token not in vocab:
            vocab[token] = len(tokens)
            tokens.append(token)
        return vocab[token]

    # Words as lists of unit ids (characters outside the alphabet are left out).
    kept = set(alphabet)
    words, freqs = [], []
    for word, n in sorted(word_counts.items()):
        chars = [c for c in word if c in kept]
        if chars:
            words.append([token_id(chars[0])] + [token_id(prefix + c) for c in chars[1:]])
            freqs.append(n)

    # Pair counts, and where each pair occurs, kept up to date as merges rewrite words.
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)
    for w, (word, n) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += n
            where[pair].add(w)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)

    while len(tokens) < vocab_size and heap:
        neg_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair) != -neg_count:
            continue  # stale entry: the pair's count changed since it was pushed
        if -neg_count < min_frequency:
            break
        a, b = tokens[pair[0]], tokens[pair[1]]
        new = token_id(a + b.removeprefix(prefix))
        changed = collections.Counter()
        for w in where.pop(pair):
            old, n = words[w], freqs[w]
            merged = merge(old, pair, new)
            words[w] = merged
            for p in zip(old, old[1:]):
                changed[p] -= n
            for p in zip(merged, merged[1:]):
                changed[p] += n
                where[p].add(w)
        for p, delta in changed.items():
            if delta:
                pair_counts[p] += delta
                if pair_counts[p] > 0:
                    heapq.heappush(heap, (-pair_counts[p], p))
                else:
                    del pair_counts[p]
    return vocab


def merge(word: list[int], pair: tuple[int, int], new: int) -> list[int]:
    """Replace each occurrence of `pair` in `word`, left to right, by `new`."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out
