"""Learning BPE merges from a corpus (Sennrich et al. 2016, §3.1, Algorithm 1), the way
Hugging Face's `BpeTrainer` does it (reference: `tokenizers/src/models/bpe/trainer.rs`), so
that both give the same vocabulary and merges:

1. Count the words of the corpus after pre-tokenization (byte-level: `ByteLevel()(text)`).
2. Vocabulary = special tokens, then the alphabet sorted by code point: every character of
   the words plus `initial_alphabet` (byte-level: all 256 byte characters), the rarest dropped
   beyond `limit_alphabet`. Characters outside the alphabet are left out of the words.
3. Count adjacent pairs over all words (weighted by word count), remembering which words hold
   each pair. Repeatedly take the most frequent pair -- ties to the smallest (id_a, id_b) --,
   add a + b to the vocabulary and the merge (a, b), rewrite the words that hold it, and update
   only the counts of the pairs around each rewrite (no recount), until the vocabulary has
   `vocab_size` tokens or the best pair occurs fewer than `min_frequency` times.

The heap holds (count, pair, words) entries; an entry whose count is out of date is pushed
back with the current count, as the reference does. Like the reference, a token string
reached by two different merges keeps its first id, and the merged pair's count is not reset.
"""

import collections
import heapq
import itertools


class BpeTrainer:
    """`BpeTrainer(vocab_size=1000, initial_alphabet=ByteLevel.alphabet())`; `feed` texts, then
    `train()` -> (vocab {token: id}, merges [(a, b), ...]) for `bpe.BPE(vocab, merges)`."""

    def __init__(self, vocab_size=30000, min_frequency=0, show_progress=False, special_tokens=(),
                 limit_alphabet=None, initial_alphabet=(), continuing_subword_prefix=None,
                 end_of_word_suffix=None, max_token_length=None):
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.show_progress = show_progress  # accepted for the reference's API; no bar drawn
        self.special_tokens = [getattr(t, "content", t) for t in special_tokens]
        self.limit_alphabet = limit_alphabet
        self.initial_alphabet = set(initial_alphabet)
        self.continuing_subword_prefix = continuing_subword_prefix
        self.end_of_word_suffix = end_of_word_suffix
        self.max_token_length = max_token_length
        self.words: collections.Counter = collections.Counter()

    def feed(self, texts, pre_tokenize) -> None:
        """Count the words `pre_tokenize(text)` gives, as (word, start, end) or plain words.
        `texts`: strings, or batches (lists/tuples) of strings."""
        for text in texts:
            for t in ([text] if isinstance(text, str) else text):
                self.words.update(w if isinstance(w, str) else w[0] for w in pre_tokenize(t))

    def train(self) -> tuple[dict[str, int], list[tuple[str, str]]]:
        tokens = list(dict.fromkeys(self.special_tokens))
        vocab = {t: i for i, t in enumerate(tokens)}

        def token_id(token: str) -> int:
            if token not in vocab:
                vocab[token] = len(tokens)
                tokens.append(token)
            return vocab[token]

        alphabet = self._alphabet()
        for c in alphabet:
            token_id(c)
        words, counts, units = self._spell_words(set(alphabet), token_id)

        # Pair counts and where each pair occurs.
        pair_counts: collections.Counter = collections.Counter()
        where = collections.defaultdict(set)
        for w, (word, n) in enumerate(zip(words, counts)):
            for pair in zip(word, word[1:]):
                pair_counts[pair] += n
                where[pair].add(w)
        tie = itertools.count()  # entries equal in (count, pair) pop in any order, as in Rust
        heap = [(-pair_counts[p], p, next(tie), pos) for p, pos in where.items()
                if pair_counts[p] > 0]
        heapq.heapify(heap)

        merges, longest = [], self.max_token_length or float("inf")
        prefix = self.continuing_subword_prefix or ""
        while len(vocab) < self.vocab_size and heap:
            neg, pair, _, pos = heapq.heappop(heap)
            if -neg != pair_counts[pair]:  # out of date: back with the current count
                heapq.heappush(heap, (-pair_counts[pair], pair, next(tie), pos))
                continue
            if -neg < 1 or self.min_frequency > -neg:
                break
            a, b = tokens[pair[0]], tokens[pair[1]]
            new = token_id(a + (b[len(prefix):] if prefix and b.startswith(prefix) else b))
            units.setdefault(new, units[pair[0]] + units[pair[1]])
            merges.append((a, b))
            created = collections.defaultdict(set)  # pairs the rewrites formed -> words
            for w in pos:
                for p, change in _merge(words[w], pair, new, units, longest):
                    pair_counts[p] += change * counts[w]
                    if change > 0:
                        created[p].add(w)
            for p, w in created.items():
                if pair_counts[p] > 0:
                    heapq.heappush(heap, (-pair_counts[p], p, next(tie), w))
        return vocab, _dedupe(merges)

    def _alphabet(self) -> list[str]:
        """Characters of the words (by weighted count) and `initial_alphabet` (always kept
        first), the rarest removed beyond `limit_alphabet`; sorted by code point. (The
        reference breaks count ties at the cut arbitrarily; we drop the higher code point.)"""
        counts = collections.Counter()
        for word, n in self.words.items():
            for c in word:
                counts[c] += n
        for c in self.initial_alphabet:
            counts[c] = float("inf")
        kept = sorted(counts, key=lambda c: (-counts[c], c))[:self.limit_alphabet]
        return sorted(kept)

    def _spell_words(self, alphabet: set[str], token_id):
        """Each word as symbol ids (prefix on non-first, suffix on the last character), its
        count, and each symbol's length in characters (for `max_token_length`)."""
        words, counts, units = [], [], {}
        for word, n in self.words.items():
            chars = [c for c in word if c in alphabet]
            symbols = []
            for k, c in enumerate(chars):
                if k and self.continuing_subword_prefix:
                    c = self.continuing_subword_prefix + c
                if k == len(chars) - 1 and self.end_of_word_suffix:
                    c += self.end_of_word_suffix
                symbols.append(token_id(c))
                units[symbols[-1]] = 1
            words.append(symbols)
            counts.append(n)
        return words, counts, units


def _merge(word: list[int], pair: tuple[int, int], new: int, units: dict,
           longest) -> list[tuple[tuple[int, int], int]]:
    """Replace `pair` in `word` (in place, left to right) by `new`; return the pair-count
    changes around each replacement, +1 only for pairs no longer than `longest` (`word.rs`
    `Word::merge`)."""
    a, b = pair
    changes, i = [], 0
    while i < len(word):
        if word[i] == a and i + 1 < len(word) and word[i + 1] == b:
            if i > 0:
                changes.append(((word[i - 1], a), -1))
                if units[word[i - 1]] + units[new] < longest:
                    changes.append(((word[i - 1], new), 1))
            word[i:i + 2] = [new]
            if i < len(word) - 1:
                changes.append(((b, word[i + 1]), -1))
                if units[word[i + 1]] + units[new] < longest:
                    changes.append(((new, word[i + 1]), 1))
        i += 1
    return changes


def _dedupe(merges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A pair merged twice keeps its last rank, as the reference model's merge map does."""
    last = {pair: rank for rank, pair in enumerate(merges)}
    return [pair for rank, pair in enumerate(merges) if last[pair] == rank]
