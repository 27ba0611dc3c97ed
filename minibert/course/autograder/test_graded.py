"""Graded checks: each compares the student's function with minibert's reference on random inputs.

Every check is parametrised by `name` (the graded function, see minibert/course/graded.py, which lists each
function's checks), which is what the per-function score counts; a check that draws random inputs (one taking
`seed`) runs once per seed. Deterministic functions must match the reference to float32 rounding (1e-5);
`mask_tokens` draws random numbers, so it is checked by the properties that define BERT's masking instead.

A check's docstring says what it expects; a failing check raises an AssertionError whose message is one line,
"expected …, got …", which the score table prints (conftest.py).
"""

import inspect

import jax.numpy as jnp
import numpy as np
import pytest

from minibert import distillation
from minibert.course.graded import GRADED
from minibert.losses import IGNORE_INDEX
from minibert.models import albert
from minibert.nn import alibi, attention, dynamic_conv, relative_position, rope
from minibert.tokenization import wordpiece
from minibert.training import masking

TOL = 1e-5


def show(value) -> str:
    """A returned value, briefly: an array's shape, else its repr (at most 60 characters)."""
    if hasattr(value, "shape"):
        return f"an array of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def close(got, expected, what="output"):
    """AssertionError "what[index]: expected …, got …" at the first value that differs from the reference by more
    than TOL (absolute and relative, as numpy.testing.assert_allclose)."""
    expected = np.asarray(expected, np.float32)
    if not hasattr(got, "shape") or tuple(got.shape) != expected.shape:
        raise AssertionError(f"{what}: expected an array of shape {expected.shape}, got {show(got)}")
    got = np.asarray(got, np.float32)
    wrong = ~np.isclose(got, expected, atol=TOL, rtol=TOL)
    if wrong.any():
        at = tuple(int(i) for i in np.argwhere(wrong)[0])
        raise AssertionError(f"{what}{list(at)}: expected {expected[at]:.6g}, got {got[at]:.6g} "
                             f"({wrong.sum()} of {wrong.size} values differ by more than {TOL})")


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
    """the reference's pieces of 200 random words"""
    rng = np.random.default_rng(seed)
    vocab = _vocab(rng)
    ours, theirs = wordpiece.WordPiece(vocab), wordpiece.WordPiece(vocab)
    for word in _words(rng):
        got, expected = fn(theirs, word), ours.greedy_longest_match(word)
        assert got == expected, f"{word!r}: expected {expected}, got {show(got)}"


def wordpiece_unknown_and_long(fn):
    """[UNK] for unknown and too long words"""
    vocab = {"[UNK]": 0, "a": 1, "##a": 2, "ab": 3, "##b": 4}
    ours = wordpiece.WordPiece(vocab, max_input_chars_per_word=6)
    theirs = wordpiece.WordPiece(vocab, max_input_chars_per_word=6)
    for word in ["abz", "z", "aaaaaaa", "ababab", "ba"]:
        got, expected = fn(theirs, word), ours.greedy_longest_match(word)
        assert got == expected, f"{word!r}: expected {expected}, got {show(got)}"


# --- scaled dot-product attention --------------------------------------------------------------------------
def _qkv(seed, b=2, q=5, k=7, h=3, d=8):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.normal(size=(b, n, h, d)), jnp.float32) for n in (q, k, k)], rng


def attention_plain(fn, seed):
    """the reference's output for random q, k, v"""
    (q, k, v), _ = _qkv(seed)
    close(fn(q, k, v), attention.dot_product_attention(q, k, v))


def attention_bias(fn, seed):
    """the reference's output with a bias"""
    (q, k, v), rng = _qkv(seed)
    bias = jnp.asarray(rng.normal(size=(2, 3, 5, 7)), jnp.float32)
    close(fn(q, k, v, bias), attention.dot_product_attention(q, k, v, bias))


def attention_padding_mask(fn, seed):
    """the reference's output with padded keys masked"""
    (q, k, v), _ = _qkv(seed)
    mask = attention.padding_mask(jnp.asarray([[1] * 7, [1] * 4 + [0] * 3]))
    close(fn(q, k, v, mask=mask), attention.dot_product_attention(q, k, v, mask=mask))


def attention_window_mask_and_bias(fn, seed):
    """the reference's output with a window mask and a bias"""
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
    """labels: the chosen tokens' ids, IGNORE_INDEX elsewhere"""
    ids, maskable = _mask_inputs(seed)
    corrupted, labels = fn(ids, maskable, np.random.default_rng(seed), rate=0.15, mask_id=MASK_ID, vocab_size=VOCAB)
    assert np.shape(corrupted) == np.shape(labels) == ids.shape, \
        f"expected ids and labels of shape {ids.shape}, got {np.shape(corrupted)} and {np.shape(labels)}"
    chosen = labels != IGNORE_INDEX
    assert not chosen[~maskable].any(), \
        f"expected no special token or padding chosen, got {chosen[~maskable].sum()} chosen"
    wrong = labels[chosen] != ids[chosen]
    assert not wrong.any(), f"expected the original ids as the labels, got {wrong.sum()} of {wrong.size} different"
    changed = corrupted[~chosen] != ids[~chosen]
    assert not changed.any(), f"expected the tokens not chosen unchanged, got {changed.sum()} of {changed.size} changed"


def masking_rates(fn, seed):
    """15% (30%) chosen: 80% [MASK], 10% random, 10% kept"""
    ids, maskable = _mask_inputs(seed, (256, 256))
    for rate in (0.15, 0.3):
        corrupted, labels = fn(ids, maskable, np.random.default_rng(seed), rate=rate, mask_id=MASK_ID,
                               vocab_size=VOCAB)
        chosen = labels != IGNORE_INDEX
        got = chosen.sum() / maskable.sum()
        assert abs(got - rate) < 0.01, f"expected {rate:.0%} ± 1% of the maskable tokens chosen, got {got:.1%}"
        masked, kept = corrupted[chosen] == MASK_ID, corrupted[chosen] == ids[chosen]
        for share, expected, what in ((masked.mean(), 0.8, "[MASK]"), (kept.mean(), 0.1, "kept"),
                                      ((~masked & ~kept).mean(), 0.1, "random")):
            assert abs(share - expected) < 0.02, \
                f"rate {rate}: expected {expected:.0%} ± 2% of the chosen tokens {what}, got {share:.1%}"


def masking_whole_words(fn, seed):
    """every piece of a chosen word chosen"""
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
            assert chosen[row][pieces].all(), (f"row {row}, word {w}: expected all {pieces.sum()} pieces chosen, "
                                               f"got {chosen[row][pieces].sum()}")


# --- rotary position embeddings ---------------------------------------------------------------------------
def rope_random(fn, seed):
    """the reference's rotation at random positions"""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(2, 9, 3, 16)), jnp.float32)
    positions = jnp.asarray(rng.integers(0, 500, (2, 9)))
    for theta in (10_000.0, 160_000.0):
        close(fn(x, positions, theta), rope.apply_rotary(x, positions, theta), f"θ {theta:g}: output")


def rope_broadcast_positions(fn, seed):
    """the reference's rotation, positions broadcast"""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(3, 6, 2, 8)), jnp.float32)
    positions = jnp.arange(6)[None]
    close(fn(x, positions, 10_000.0), rope.apply_rotary(x, positions, 10_000.0))


def rope_bad_positions(fn):
    """a ValueError for 5 positions of 4 tokens"""
    with pytest.raises(ValueError):
        got = fn(jnp.zeros((1, 4, 2, 8)), jnp.arange(5)[None], 10_000.0)
        raise AssertionError(f"expected a ValueError for 5 positions of 4 tokens, got {show(got)}")  # not caught


# --- ALiBi slopes ------------------------------------------------------------------------------------------
def alibi_powers_of_two(fn):
    """the reference's slopes for 1, 2, 4, …, 32 heads"""
    for heads in (1, 2, 4, 8, 16, 32):
        close(fn(heads), alibi.alibi_slopes(heads), f"{heads} heads: slopes")


def alibi_other_counts(fn):
    """the reference's slopes for 3, 5, 6, 12, 20, 24 heads"""
    for heads in (3, 5, 6, 12, 20, 24):
        close(fn(heads), alibi.alibi_slopes(heads), f"{heads} heads: slopes")


def alibi_bad_count(fn):
    """a ValueError for 0 heads"""
    with pytest.raises(ValueError):
        got = fn(0)
        raise AssertionError(f"expected a ValueError for 0 heads, got {show(got)}")  # not caught


# --- ConvBERT's span-based dynamic convolution ----------------------------------------------------------------
def _conv_inputs(seed, kernel):
    rng = np.random.default_rng(seed)
    b, s, h, d = 2, 11, 2, 4
    q, ks = (jnp.asarray(rng.normal(size=(b, s, h * d)), jnp.float32) for _ in range(2))
    v = jnp.asarray(rng.normal(size=(b, s, h, d)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(h * d, h * kernel)), jnp.float32)
    return q, ks, v, lambda x: x @ w


def dynamic_conv_kernels(fn, seed):
    """the reference's output for kernels of 1, 3, 9"""
    for kernel in (1, 3, 9):
        q, ks, v, generator = _conv_inputs(seed + kernel, kernel)
        close(fn(q, ks, v, generator), dynamic_conv.span_based_dynamic_convolution(q, ks, v, generator),
              f"kernel {kernel}: output")


def dynamic_conv_longer_than_sequence(fn, seed):
    """the reference's output, kernel 15 > 11 tokens"""
    q, ks, v, generator = _conv_inputs(seed, 15)
    close(fn(q, ks, v, generator), dynamic_conv.span_based_dynamic_convolution(q, ks, v, generator))


# --- ALBERT's cross-layer sharing -----------------------------------------------------------------------------
def layer_groups_even(fn):
    """the reference's groups when G divides L (12/1, 12/3, 12/12, 4/2)"""
    for layers, groups in ((12, 1), (12, 3), (12, 12), (4, 2)):
        expected, got = albert.layer_groups(layers, groups), fn(layers, groups)
        assert list(got) == expected, f"L={layers}, G={groups}: expected {expected}, got {show(got)}"


def layer_groups_uneven(fn):
    """the reference's groups when G does not divide L (5/3, 7/2, 24/5)"""
    for layers, groups in ((5, 3), (7, 2), (24, 5)):
        expected, got = albert.layer_groups(layers, groups), fn(layers, groups)
        assert list(got) == expected, f"L={layers}, G={groups}: expected {expected}, got {show(got)}"


# --- DistilBERT's cosine loss ---------------------------------------------------------------------------------
def _hidden(seed, width=16):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.normal(size=(3, 7, width)), jnp.float32) for _ in range(2))


def cosine_random(fn, seed):
    """the reference's loss for random hidden states, every token real"""
    student, teacher = _hidden(seed)
    mask = jnp.ones((3, 7), jnp.int32)
    close(jnp.asarray(fn(student, teacher, mask)), distillation.cosine_loss(student, teacher, mask), "loss")


def cosine_padding_ignored(fn, seed):
    """the reference's loss when rows are padded: padded tokens do not count"""
    student, teacher = _hidden(seed)
    mask = jnp.asarray(np.arange(7)[None, :] < np.array([[7], [4], [1]]), jnp.int32)
    close(jnp.asarray(fn(student, teacher, mask)), distillation.cosine_loss(student, teacher, mask), "loss")


# --- DeBERTa's log buckets ------------------------------------------------------------------------------------
def log_buckets_near_positions(fn):
    """δ itself for |δ| ≤ bucket_size / 2 (256/512, 32/128, 8/64)"""
    for buckets, longest in ((256, 512), (32, 128), (8, 64)):
        delta = np.arange(-(buckets // 2), buckets // 2 + 1)
        got = np.asarray(fn(delta, buckets, longest))
        assert got.tolist() == delta.tolist(), f"buckets {buckets}: expected δ itself, got {show(got)}"


def log_buckets_far_positions(fn):
    """the reference's buckets for |δ| up to 4 × max_position (256/512, 32/128, 8/64), odd in δ; where the log
    ratio is an integer to float32 rounding, either neighbouring bucket"""
    for buckets, longest in ((256, 512), (32, 128), (8, 64)):
        delta = np.arange(-4 * longest, 4 * longest + 1)
        expected = relative_position.make_log_bucket_position(delta, buckets, longest)
        got = np.asarray(fn(delta, buckets, longest))
        if got.shape != expected.shape:
            raise AssertionError(f"buckets {buckets}: expected an array of shape {expected.shape}, got {show(got)}")
        mid = buckets // 2
        ratio = np.log(np.maximum(np.abs(delta), 1) / mid) / np.log((longest - 1) / mid) * (mid - 1)
        tie = np.abs(ratio - np.round(ratio)) < 1e-4
        wrong = (got != expected) & ~(tie & (np.abs(got - expected) == 1))
        if wrong.any():
            at = int(np.flatnonzero(wrong)[0])
            raise AssertionError(f"buckets {buckets}, max_position {longest}, δ = {delta[at]}: expected "
                                 f"{expected[at]}, got {got[at]}")


SEEDS = (0, 1)
CHECKS = {g.name: [globals()[check] for check in g.checks] for g in GRADED}   # function name → its checks


CASES = [pytest.param(g.name, check, seed, marks=getattr(pytest.mark, g.name),
                      id=check.__name__ if seed is None else f"{check.__name__}-{seed}")
         for g in GRADED for check in CHECKS[g.name]       # once per seed for a check that draws inputs, else once
         for seed in (SEEDS if "seed" in inspect.signature(check).parameters else (None,))]


@pytest.mark.parametrize("name,check,seed", CASES)
def test_graded(student, name, check, seed):
    check(student(name), *(() if seed is None else (seed,)))
