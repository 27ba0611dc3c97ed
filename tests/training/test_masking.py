"""Masking statistics over 10⁵ tokens: 15% chosen, of which 80/10/10; specials and padding never chosen."""

import numpy as np

from minibert.training.masking import mask_tokens

VOCAB, MASK = 1000, 4


def test_bert_recipe_statistics():
    rng = np.random.default_rng(0)
    ids = rng.integers(10, VOCAB, (400, 256))
    maskable = np.ones_like(ids, bool)
    maskable[:, 0] = maskable[:, -1] = False           # [CLS] / [SEP]
    maskable[::3, 200:] = False                          # padding
    corrupted, labels = mask_tokens(ids, maskable, np.random.default_rng(1), rate=0.15, mask_id=MASK, vocab_size=VOCAB)
    chosen = labels != -100
    assert not chosen[~maskable].any()
    assert abs(chosen.sum() / maskable.sum() - 0.15) < 0.005
    np.testing.assert_array_equal(labels[chosen], ids[chosen])
    as_mask = (corrupted == MASK) & chosen
    kept = (corrupted == ids) & chosen
    randomised = chosen & ~as_mask & ~kept
    n = chosen.sum()
    assert abs(as_mask.sum() / n - 0.8) < 0.01
    assert abs(kept.sum() / n - 0.1 - 0.1 / VOCAB) < 0.01     # a random token may equal the original
    assert abs(randomised.sum() / n - 0.1) < 0.01
    np.testing.assert_array_equal(corrupted[~chosen], ids[~chosen])


def test_rate_is_configurable_and_deterministic():
    ids = np.arange(100_000).reshape(100, 1000) % 900 + 10
    maskable = np.ones_like(ids, bool)
    a = mask_tokens(ids, maskable, np.random.default_rng(7), rate=0.3, mask_id=MASK, vocab_size=VOCAB)
    b = mask_tokens(ids, maskable, np.random.default_rng(7), rate=0.3, mask_id=MASK, vocab_size=VOCAB)
    np.testing.assert_array_equal(a[0], b[0])
    assert abs((a[1] != -100).mean() - 0.3) < 0.005


def test_whole_word_masking_takes_every_piece():
    rng = np.random.default_rng(0)
    continuation = rng.random((200, 128)) < 0.4
    continuation[:, 0] = False
    ids = rng.integers(10, VOCAB, continuation.shape)
    _, labels = mask_tokens(ids, np.ones_like(ids, bool), np.random.default_rng(2), rate=0.15, mask_id=MASK,
                            vocab_size=VOCAB, continuation=continuation)
    chosen = labels != -100
    word = np.cumsum(~continuation, axis=1)
    for row in range(20):
        for w in np.unique(word[row]):
            pieces = chosen[row, word[row] == w]
            assert pieces.all() or not pieces.any()
    assert abs(chosen.mean() - 0.15) < 0.01
