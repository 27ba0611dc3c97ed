"""Learning a Unigram vocabulary (Kudo 2018, "Subword Regularization", §3.2; SentencePiece's
`unigram_model_trainer.cc`), as `tokenizers`' `UnigramTrainer` does it. Reference:
`tokenizers/src/models/unigram/trainer.rs` (and `lattice.rs`, `populate_marginal`).

1. Seeds: every character, then the substrings of the words (up to `max_piece_length`) that
   occur in two or more distinct words' positions with different next characters (the internal
   nodes of the suffix tree of the distinct words, which the reference enumerates with a
   suffix array), scored by occurrences x length; scores -> log-probabilities.
2. EM (§3.2, eq. 3-4): the E-step computes each piece's expected count over all
   segmentations of every word (forward-backward over its lattice), the M-step re-estimates
   log p(x) from the counts, Bayesian style as SentencePiece: log p(x) = digamma(c(x)) -
   digamma(sum c), dropping pieces with c(x) < 0.5.
3. Pruning: for each piece, the loss of likelihood if it were removed and its occurrences
   were cut by the second-best segmentation of the piece itself; keep the
   `shrinking_factor` (0.75) share with the largest losses (never the characters). Repeat 2-3
   until at most 1.1 x `vocab_size` pieces remain, then keep the first `vocab_size`.

The lattices are those of Unigram (unigram.py): pieces that occur in the word, plus an unk
node (score min - 10) for a character that is not a piece. They are kept for all words at
once as flat arrays of edges and run position by position with numpy.
"""

import collections
import math
import os

import numpy as np

from minibert.tokenization.metaspace import Metaspace
from minibert.tokenization.unigram import UNK_PENALTY, Unigram

MIN_EXPECTED = 0.5  # trainer.rs run_m_step: expected_frequency_threshold


def digamma(x: float) -> float:
    """psi(x), by recurrence to x >= 7 then the asymptotic series (trainer.rs)."""
    result = 0.0
    while x < 7.0:
        result -= 1.0 / x
        x += 1.0
    x -= 0.5
    xx = 1.0 / x
    xx2 = xx * xx
    xx4 = xx2 * xx2
    return (result + math.log(x) + xx2 / 24.0 - 7.0 / 960.0 * xx4 + 31.0 / 8064.0 * xx4 * xx2
            - 127.0 / 30720.0 * xx4 * xx4)


class Lattices:
    """The lattices of many words, as edges (word, start, end, seed) over flat positions.

    Word w's positions 0..len are `first[w] + 0..len`. Each edge is one seed piece occurring
    in a word; whether it is in the current vocabulary is decided per pass by its score
    (-inf: not a piece; single characters that are not pieces become unk edges).
    """

    def __init__(self, words: list[str], seed_ids: dict[str, int], max_length: int):
        lengths = np.array([len(w) for w in words], dtype=np.int64)
        self.first = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
        self.last = self.first + lengths
        self.n_positions = int(self.last[-1]) + 1 if len(words) else 0
        word, start, end, seed = [], [], [], []
        for w, text in enumerate(words):
            for s in range(len(text)):
                for e in range(s + 1, min(len(text), s + max_length) + 1):
                    i = seed_ids.get(text[s:e])
                    if i is not None:
                        word.append(w), start.append(s), end.append(e), seed.append(i)
        self.word = np.array(word, dtype=np.int64)
        self.start = self.first[self.word] + np.array(start, dtype=np.int64)
        self.end = self.first[self.word] + np.array(end, dtype=np.int64)
        self.seed = np.array(seed, dtype=np.int64)
        self.single = np.array(end, dtype=np.int64) - np.array(start, dtype=np.int64) == 1
        local_start, local_end = np.array(start), np.array(end)
        # Groups of edges for the passes: by local end (forward), by local start (backward);
        # inside a group sorted by flat position, so each position's edges are a segment.
        self.forward = self._groups(local_end, self.end, self.start)
        self.backward = self._groups(-local_start, self.start, self.end)

    @staticmethod
    def _groups(key, position, tie):
        order = np.lexsort((tie, position, key))
        groups = []
        bounds = np.flatnonzero(np.diff(key[order])) + 1
        for edges in np.split(order, bounds):
            pos = position[edges]
            heads = np.concatenate([[0], np.flatnonzero(np.diff(pos)) + 1])
            groups.append((edges, heads, pos[heads]))
        return groups

    def edge_scores(self, seed_scores: np.ndarray, unk_score: float) -> np.ndarray:
        """Score of every edge: the piece's log p, unk for a character that is not a piece,
        -inf for a longer seed that is not a piece (the edge is absent)."""
        scores = seed_scores[self.seed]
        return np.where(np.isneginf(scores) & self.single, unk_score, scores)

    def marginals(self, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Expected count of each edge: count(w) * P(edge in the segmentation of w), by
        forward-backward in log space (lattice.rs populate_marginal)."""
        alpha = np.full(self.n_positions, -np.inf)
        alpha[self.first] = 0.0
        for edges, heads, pos in self.forward:  # alpha[e] = logsumexp alpha[s] + score
            alpha[pos] = _segment_logsumexp(alpha[self.start[edges]] + scores[edges], heads)
        beta = np.full(self.n_positions, -np.inf)
        beta[self.last] = 0.0
        for edges, heads, pos in self.backward:  # beta[s] = logsumexp score + beta[e]
            beta[pos] = _segment_logsumexp(scores[edges] + beta[self.end[edges]], heads)
        z = alpha[self.last][self.word]
        with np.errstate(invalid="ignore"):
            p = np.exp(alpha[self.start] + scores + beta[self.end] - z)
        return np.where(np.isfinite(scores), p * counts[self.word], 0.0)

    def viterbi(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For every word, the edges of its best segmentation (ties: earliest start, as
        unigram.py): (edge indices of all words, in backward order; each word's score)."""
        best = np.full(self.n_positions, -np.inf)
        best[self.first] = 0.0
        back = np.zeros(self.n_positions, dtype=np.int64)
        for edges, heads, pos in self.forward:
            values = best[self.start[edges]] + scores[edges]
            top = np.maximum.reduceat(values, heads)
            ids = np.repeat(np.arange(len(heads)), np.diff(np.append(heads, len(edges))))
            first_top = np.where(values == top[ids], np.arange(len(edges)), len(edges))
            best[pos] = top
            back[pos] = edges[np.minimum.reduceat(first_top, heads)]
        path, here = [], self.last.copy()
        while len(here):
            edge = back[here]
            path.append(edge)
            here = self.start[edge]
            here = here[here != self.first[self.word[edge]]]
        path = np.concatenate(path) if path else np.zeros(0, dtype=np.int64)
        return path, best[self.last]


def _segment_logsumexp(values: np.ndarray, heads: np.ndarray) -> np.ndarray:
    top = np.maximum.reduceat(values, heads)
    safe = np.where(np.isfinite(top), top, 0.0)
    ids = np.repeat(np.arange(len(heads)), np.diff(np.append(heads, len(values))))
    with np.errstate(divide="ignore"):
        return safe + np.log(np.add.reduceat(np.exp(values - safe[ids]), heads))


def seed_pieces(word_counts: dict[str, int], max_piece_length: int, seed_size: int):
    """[(piece, log p)]: characters by count, then the substrings of 2..max_piece_length
    characters that are internal nodes of the suffix tree of the distinct words (two of their
    occurrences are followed by different characters), by occurrences x length (trainer.rs
    make_seed_sentence_pieces; occurrences count distinct words, not their frequency)."""
    chars = collections.Counter()
    occurrences, next_char, branching = collections.Counter(), {}, set()
    for word, n in word_counts.items():
        for c in word:
            chars[c] += n
        text = word + "\0"
        for s in range(len(word)):
            for e in range(s + 2, min(len(word), s + max_piece_length) + 1):
                sub = text[s:e]
                occurrences[sub] += 1
                if next_char.setdefault(sub, text[e]) != text[e]:
                    branching.add(sub)
    seeds = sorted(((n, c) for c, n in chars.items()), reverse=True)
    substrings = sorted(((occurrences[s] * len(s), s) for s in branching
                         if occurrences[s] > 1), reverse=True)
    pieces = [(c, n) for n, c in seeds] + [(s, n) for n, s in substrings]
    pieces = pieces[:max(seed_size, len(seeds))]
    log_total = math.log(sum(n for _, n in pieces))
    return [(piece, math.log(n) - log_total) for piece, n in pieces]


class UnigramTrainer:
    """Learn a Unigram vocabulary from texts (`tokenizers.trainers.UnigramTrainer`'s
    options). `train(texts)` -> Unigram; `train_from_counts({word: count})` -> Unigram.
    Raises ValueError when there are no words or `vocab_size` cannot hold every character."""

    def __init__(self, vocab_size=8000, n_sub_iterations=2, shrinking_factor=0.75,
                 special_tokens=(), unk_token=None, max_piece_length=16,
                 initial_alphabet=(), seed_size=1_000_000):
        self.vocab_size = vocab_size
        self.n_sub_iterations = n_sub_iterations
        self.shrinking_factor = shrinking_factor
        self.special_tokens = list(special_tokens)
        self.unk_token = unk_token
        self.max_piece_length = max_piece_length
        self.initial_alphabet = set(initial_alphabet)
        self.seed_size = seed_size

    def train(self, texts, pre_tokenizer=None, normalizer=None) -> Unigram:
        """Count the words of `texts` (an iterable of str, or of lists of str as
        `train_new_from_iterator` takes), as the tokenizer will see them (`normalizer`, then
        `pre_tokenizer`, Metaspace by default), and train on them."""
        pre_tokenizer = pre_tokenizer or Metaspace()
        counts = collections.Counter()
        for item in texts:
            for text in [item] if isinstance(item, str) else item:
                normalized = normalizer(text)[0] if normalizer else text
                counts.update(word for word, _, _ in pre_tokenizer(normalized))
        return self.train_from_counts(counts)

    def train_files(self, files, pre_tokenizer=None, normalizer=None) -> Unigram:
        """`train` on the lines of text files (a path or a list of paths), newlines kept."""
        files = [files] if isinstance(files, (str, os.PathLike)) else files

        def lines():
            for path in files:
                with open(path, encoding="utf-8") as f:
                    yield from f
        return self.train(lines(), pre_tokenizer, normalizer)

    def train_from_counts(self, word_counts: dict[str, int]) -> Unigram:
        words = sorted(w for w in word_counts if w)
        if not words:
            raise ValueError("no words to train on: the texts are empty")
        counts = np.array([word_counts[w] for w in words], dtype=np.float64)
        required = sorted({c for w in words for c in w} | self.initial_alphabet)
        if len(required) > self.vocab_size:
            raise ValueError(f"vocab_size {self.vocab_size} cannot hold the {len(required)} "
                             "characters of the corpus")
        seeds = seed_pieces(dict(zip(words, counts.astype(int).tolist())),
                            self.max_piece_length, self.seed_size)
        seed_ids = {piece: i for i, (piece, _) in enumerate(seeds)}
        lattices = Lattices(words, seed_ids, self.max_piece_length)
        pieces = list(seeds)  # the current vocabulary, in the reference's order (no <UNK>)
        desired = self.vocab_size * 11 // 10
        while True:
            for _ in range(self.n_sub_iterations):
                pieces = self._em_step(pieces, seed_ids, lattices, counts)
            if len(pieces) + 1 <= desired:  # + 1: the reference's <UNK> at index 0
                break
            pieces = self._prune(pieces, seed_ids, lattices, counts)
        return self._finalize(pieces, required)

    def _seed_scores(self, pieces, seed_ids, n_seeds) -> tuple[np.ndarray, float]:
        scores = np.full(n_seeds, -np.inf)
        for piece, score in pieces:
            scores[seed_ids[piece]] = score
        return scores, min(s for _, s in pieces) - UNK_PENALTY

    def _em_step(self, pieces, seed_ids, lattices, counts):
        """E-step: expected counts; M-step: log p = digamma(c) - digamma(sum c), c >= 0.5."""
        scores = lattices.edge_scores(*self._seed_scores(pieces, seed_ids, len(seed_ids)))
        expected = np.bincount(lattices.seed, lattices.marginals(scores, counts),
                               minlength=len(seed_ids))
        kept = [(piece, expected[seed_ids[piece]]) for piece, _ in pieces
                if expected[seed_ids[piece]] >= MIN_EXPECTED]
        log_total = digamma(sum(c for _, c in kept))
        return [(piece, digamma(c) - log_total) for piece, c in kept]

    def _prune(self, pieces, seed_ids, lattices, counts):
        """Keep the pieces whose removal would cost the most likelihood (trainer.rs
        prune_sentence_pieces)."""
        seed_scores, unk_score = self._seed_scores(pieces, seed_ids, len(seed_ids))
        path, _ = lattices.viterbi(lattices.edge_scores(seed_scores, unk_score))
        seed, weight = lattices.seed[path], counts[lattices.word[path]]
        unk = np.isneginf(seed_scores[seed])  # unk nodes: counted for the reference's <UNK>
        freq = np.bincount(seed[~unk], weight[~unk], minlength=len(seed_ids))
        freq_unk = float(weight[unk].sum())
        total = float(freq.sum()) + freq_unk
        n_words = float(counts.sum())

        kept, candidates = [], []
        for i, ((piece, score), alternative) in enumerate(
                zip(pieces, self._alternatives(pieces, seed_ids, seed_scores, unk_score))):
            f = float(freq[seed_ids[piece]])
            if alternative is None:  # not its own best segmentation: kept only if used
                if f > 0:
                    kept.append((piece, score))
            elif not alternative:  # a character: nothing could replace it
                kept.append((piece, score))
            elif f > 0:
                # Removing x moves its count to its alternative pieces (Kudo 2018, §3.2):
                # loss = f(x)/N * (log p(x) - sum_alt log p'(alt)); the reference's
                # normalizer adds f(x) once per piece of the vocabulary.
                log_alt_total = math.log(total + f * len(pieces))
                log_alt = sum(math.log((freq_unk if a < 0 else float(freq[a])) + f)
                              - log_alt_total for a in alternative)
                loss = f / n_words * (math.log(f) - math.log(total) - log_alt)
                candidates.append((loss, i))
        size = max(self.vocab_size * 11 // 10, int((len(pieces) + 1) * self.shrinking_factor))
        candidates.sort(key=lambda c: -c[0])  # stable: equal losses keep their order
        room = size - 1 - len(kept)  # - 1: the reference's <UNK>
        return kept + [pieces[i] for _, i in candidates[:room if room >= 0 else None]]

    def _alternatives(self, pieces, seed_ids, seed_scores, unk_score):
        """For each piece: None if its best segmentation is not itself, [] if it has no other
        (a character), else the seed ids of the second best, the best without the piece
        itself (-1 for an unk node)."""
        strings = [p for p, _ in pieces]
        lattices = Lattices(strings, seed_ids, self.max_piece_length)
        scores = lattices.edge_scores(seed_scores, unk_score)
        own = lattices.end - lattices.start == lattices.last[lattices.word] - \
            lattices.first[lattices.word]
        own_score = np.full(len(strings), -np.inf)
        own_score[lattices.word[own]] = scores[own]
        path, second_score = lattices.viterbi(np.where(own, -np.inf, scores))
        seeds = np.where(np.isneginf(seed_scores[lattices.seed[path]]), -1, lattices.seed[path])
        second = [[] for _ in strings]
        for w, s in zip(lattices.word[path][::-1].tolist(), seeds[::-1].tolist()):
            second[w].append(s)
        return [[] if len(string) == 1 else None if second_score[i] > own_score[i]
                else second[i] for i, string in enumerate(strings)]

    def _finalize(self, pieces, required) -> Unigram:
        """Characters first (those pruned away get min score + a growing 1e-4 penalty), then
        the pieces in order up to vocab_size; sorted by score; special tokens in front."""
        scores = dict(pieces)
        min_score = min(scores.values())
        out, penalty = [], 0.0
        for c in required:
            if c in scores:
                out.append((c, scores[c]))
            else:
                out.append((c, min_score + penalty))
                penalty += 0.0001
        unk_id, add_unk = None, False
        if self.unk_token is not None:
            add_unk = self.unk_token not in self.special_tokens
            unk_id = 0 if add_unk else self.special_tokens.index(self.unk_token)
        room = self.vocab_size - len(self.special_tokens) - add_unk
        inserted = set(required) | {"<UNK>"}
        for piece, score in pieces:
            if len(out) >= room:
                break
            if piece not in inserted:
                inserted.add(piece)
                out.append((piece, score))
        out.sort(key=lambda p: -p[1])
        specials = [self.unk_token] * add_unk + self.special_tokens
        return Unigram([(t, 0.0) for t in specials] + out, unk_id)
