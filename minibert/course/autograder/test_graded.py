"""Graded checks: each compares the student's function with minibert's reference on random inputs.

Every check is parametrised by `name` (the graded function, see minibert/course/graded.py), which is what the
per-function score counts. Deterministic functions must match the reference to float32 rounding (1e-5);
`mask_tokens` draws random numbers, so it is checked by the properties that define BERT's masking instead.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from minibert.losses import IGNORE_INDEX
from minibert.nn import alibi, attention, dynamic_conv, rope
from minibert.tokenization import wordpiece
from minibert.training import masking

TOL = 1e-5


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), atol=TOL, rtol=TOL)


# --- WordPiece: greedy longest match first ------------------------------------------------------------------
def _vocab(rng):
    letters = list("abcde")
    pieces = {"[UNK]", "[PAD]"} | set(letters) | {"##" + c for c in letters[:4]}
    for _ in range(60):
        piece = "".join(rng.choice(letters, rng.integers(2, 5)))
        pieces.add(piece if rng.random() < 0.5 else "##" + piece)
    return {p: i for i, p in enumerate(sorted(pieces))}


def _words(rng, n=200):
    return ["".join(rng.choice(list("abcde"), rng.integers(1, 12))) for _ in range(n)]


def wordpiece_random_words(fn, seed):
    rng = np.random.default_rng(seed)
    vocab = _vocab(rng)
    ours, theirs = wordpiece.WordPiece(vocab), wordpiece.WordPiece(vocab)
    for word in _words(rng):
        assert fn(theirs, word) == ours.greedy_longest_match(word), word


def wordpiece_unknown_and_long(fn, seed):
    vocab = {"[UNK]": 0, "a": 1, "##a": 2, "ab": 3, "##b": 4}
    ours = wordpiece.WordPiece(vocab, max_input_chars_per_word=6)
    theirs = wordpiece.WordPiece(vocab, max_input_chars_per_word=6)
    for word in ["abz", "z", "aaaaaaa", "ababab", "ba"]:
        assert fn(theirs, word) == ours.greedy_longest_match(word), word


# --- scaled dot-product attention --------------------------------------------------------------------------
def _qkv(seed, b=2, q=5, k=7, h=3, d=8):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.normal(size=(b, n, h, d)), jnp.float32) for n in (q, k, k)], rng


def attention_plain(fn, seed):
    (q, k, v), _ = _qkv(seed)
    close(fn(q, k, v), attention.dot_product_attention(q, k, v))


def attention_bias(fn, seed):
    (q, k, v), rng = _qkv(seed)
    bias = jnp.asarray(rng.normal(size=(2, 3, 5, 7)), jnp.float32)
    close(fn(q, k, v, bias), attention.dot_product_attention(q, k, v, bias))


def attention_padding_mask(fn, seed):
    (q, k, v), _ = _qkv(seed)
    mask = attention.padding_mask(jnp.asarray([[1] * 7, [1] * 4 + [0] * 3]))
    close(fn(q, k, v, mask=mask), attention.dot_product_attention(q, k, v, mask=mask))


def attention_window_mask_and_bias(fn, seed):
    (q, k, v), rng = _qkv(seed, q=7)
    bias = jnp.asarray(rng.normal(size=(1, 3, 7, 7)), jnp.float32)
    mask = attention.window_mask(7, 2, 2)
    close(fn(q, k, v, bias, mask=mask), attention.dot_product_attention(q, k, v, bias, mask=mask))


# --- MLM masking: 15% chosen, then 80% [MASK] / 10% random / 10% kept ---------------------------------------
MASK_ID, VOCAB = 4, 1000


def _mask_inputs(seed, shape=(64, 128)):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, shape)
    maskable = rng.random(shape) < 0.9
    return ids, maskable


def masking_labels(fn, seed):
    ids, maskable = _mask_inputs(seed)
    corrupted, labels = fn(ids, maskable, np.random.default_rng(seed), rate=0.15, mask_id=MASK_ID, vocab_size=VOCAB)
    chosen = labels != IGNORE_INDEX
    assert corrupted.shape == labels.shape == ids.shape
    assert not chosen[~maskable].any(), "a special token or padding was chosen"
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    np.testing.assert_array_equal(corrupted[~chosen], ids[~chosen])


def masking_rates(fn, seed):
    ids, maskable = _mask_inputs(seed, (256, 256))
    for rate in (0.15, 0.3):
        corrupted, labels = fn(ids, maskable, np.random.default_rng(seed), rate=rate, mask_id=MASK_ID,
                               vocab_size=VOCAB)
        chosen = labels != IGNORE_INDEX
        assert abs(chosen.sum() / maskable.sum() - rate) < 0.01, "wrong masking rate"
        masked, kept = corrupted[chosen] == MASK_ID, corrupted[chosen] == ids[chosen]
        assert abs(masked.mean() - 0.8) < 0.02, "[MASK] should replace 80% of the chosen tokens"
        assert abs(kept.mean() - 0.1) < 0.02, "10% of the chosen tokens should be kept"
        assert abs((~masked & ~kept).mean() - 0.1) < 0.02, "10% of the chosen tokens should be random"


def masking_whole_words(fn, seed):
    ids, maskable = _mask_inputs(seed)
    rng = np.random.default_rng(seed + 1)
    continuation = (rng.random(ids.shape) < 0.4) & maskable
    continuation[:, 0] = False
    corrupted, labels = fn(ids, maskable, np.random.default_rng(seed), rate=0.15, mask_id=MASK_ID,
                           vocab_size=VOCAB, continuation=continuation)
    chosen = labels != IGNORE_INDEX
    word = np.cumsum(~continuation, axis=1)
    for row in range(ids.shape[0]):
        for w in np.unique(word[row][chosen[row]]):
            pieces = (word[row] == w) & maskable[row]
            assert chosen[row][pieces].all(), "every piece of a chosen word must be chosen"


# --- rotary position embeddings ---------------------------------------------------------------------------
def rope_random(fn, seed):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(2, 9, 3, 16)), jnp.float32)
    positions = jnp.asarray(rng.integers(0, 500, (2, 9)))
    for theta in (10_000.0, 160_000.0):
        close(fn(x, positions, theta), rope.apply_rotary(x, positions, theta))


def rope_broadcast_positions(fn, seed):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(3, 6, 2, 8)), jnp.float32)
    positions = jnp.arange(6)[None]
    close(fn(x, positions, 10_000.0), rope.apply_rotary(x, positions, 10_000.0))


def rope_bad_positions(fn, seed):
    with pytest.raises(ValueError):
        fn(jnp.zeros((1, 4, 2, 8)), jnp.arange(5)[None], 10_000.0)


# --- ALiBi slopes ------------------------------------------------------------------------------------------
def alibi_powers_of_two(fn, seed):
    for heads in (1, 2, 4, 8, 16, 32):
        close(fn(heads), alibi.alibi_slopes(heads))


def alibi_other_counts(fn, seed):
    for heads in (3, 5, 6, 12, 20, 24):
        close(fn(heads), alibi.alibi_slopes(heads))


def alibi_bad_count(fn, seed):
    with pytest.raises(ValueError):
        fn(0)


# --- ConvBERT's span-based dynamic convolution ----------------------------------------------------------------
def _conv_inputs(seed, kernel):
    rng = np.random.default_rng(seed)
    b, s, h, d = 2, 11, 2, 4
    q, ks = (jnp.asarray(rng.normal(size=(b, s, h * d)), jnp.float32) for _ in range(2))
    v = jnp.asarray(rng.normal(size=(b, s, h, d)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(h * d, h * kernel)), jnp.float32)
    return q, ks, v, lambda x: x @ w


def dynamic_conv_kernels(fn, seed):
    for kernel in (1, 3, 9):
        q, ks, v, generator = _conv_inputs(seed + kernel, kernel)
        close(fn(q, ks, v, generator), dynamic_conv.span_based_dynamic_convolution(q, ks, v, generator))


def dynamic_conv_longer_than_sequence(fn, seed):
    q, ks, v, generator = _conv_inputs(seed, 15)
    close(fn(q, ks, v, generator), dynamic_conv.span_based_dynamic_convolution(q, ks, v, generator))


CHECKS = {
    "greedy_longest_match": [wordpiece_random_words, wordpiece_unknown_and_long],
    "dot_product_attention": [attention_plain, attention_bias, attention_padding_mask, attention_window_mask_and_bias],
    "mask_tokens": [masking_labels, masking_rates, masking_whole_words],
    "apply_rotary": [rope_random, rope_broadcast_positions, rope_bad_positions],
    "alibi_slopes": [alibi_powers_of_two, alibi_other_counts, alibi_bad_count],
    "span_based_dynamic_convolution": [dynamic_conv_kernels, dynamic_conv_longer_than_sequence],
}
SEEDS = (0, 1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name,check", [(n, c) for n, checks in CHECKS.items() for c in checks],
                         ids=[c.__name__ for checks in CHECKS.values() for c in checks])
def test_graded(student, name, check, seed):
    check(student(name), seed)
