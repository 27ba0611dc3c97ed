"""DeBERTa's relative positions and log buckets, integer for integer against transformers' torch functions."""

import jax
import numpy as np
import pytest

from minibert.nn.relative_position import build_relative_position, make_log_bucket_position

# (bucket_size, max_position): DeBERTa-v3's (256, 512), small ones, max_position shorter than the sequences
# tested (±2048), odd bucket sizes, and degenerate ones (max_position barely above bucket_size / 2, where
# (max_position − 1) / mid is close to 1 and every log rounding moves the ceiling) — also (8, 7), whose
# ratio at δ = 9 is exactly 6 (9/4 = 1.5²), and (4, 3), where max_position − 1 = mid: log 1 = 0.
PAIRS = [(256, 512), (256, 256), (128, 512), (32, 64), (16, 24), (10, 100), (5, 7), (4, 3), (6, 100), (8, 7),
         (64, 34), (128, 66), (256, 130), (512, 258), (512, 256), (4, 4096), (64, 8)]


@pytest.mark.parametrize("bucket_size, max_position", PAIRS)
def test_log_buckets_equal_transformers(bucket_size, max_position):
    import torch
    from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position as reference

    relative = np.arange(-2048, 2049)
    expected = reference(torch.from_numpy(relative), bucket_size, max_position).long().numpy()
    int32 = np.iinfo(np.int32)     # (4, 3) divides by log 1 = 0: the most negative integer, int64 there
    np.testing.assert_array_equal(make_log_bucket_position(relative, bucket_size, max_position),
                                  np.clip(expected, int32.min, int32.max))


def test_log_buckets_follow_the_equation():
    """|δ| ≤ mid exact; beyond, sign(δ)·(mid + ⌈log(|δ|/mid) / log((max − 1)/mid) · (mid − 1)⌉): 2·mid − 1 at
    |δ| = max − 1; odd in δ and non-decreasing in |δ|."""
    relative = np.arange(-600, 601)
    bucket = make_log_bucket_position(relative, 256, 512)
    np.testing.assert_array_equal(bucket[np.abs(relative) <= 128], relative[np.abs(relative) <= 128])
    np.testing.assert_array_equal(bucket, -bucket[::-1])
    assert bucket[relative == 511] == 255 and bucket[relative == 129] == 129
    assert (np.diff(bucket[relative >= 0]) >= 0).all()
    assert bucket.dtype == np.int32


@pytest.mark.parametrize("query_size, key_size, bucket_size, max_position",
                         [(7, 7, -1, -1), (5, 9, -1, 3), (12, 12, 4, 6), (40, 40, 8, 16), (9, 6, 256, 512)])
def test_build_relative_position_equals_transformers(query_size, key_size, bucket_size, max_position):
    """δ(i, j) = i − j (queries × keys), log-bucketed only when both bucket_size and max_position are positive."""
    import torch
    from transformers.models.deberta_v2.modeling_deberta_v2 import build_relative_position as reference

    expected = reference(torch.zeros(1, query_size, 1), torch.zeros(1, key_size, 1), bucket_size, max_position)
    ours = build_relative_position(query_size, key_size, bucket_size, max_position)
    assert ours.shape == (query_size, key_size)
    np.testing.assert_array_equal(ours, expected[0].numpy())


def test_positions_are_constants_under_jit():
    """Computed on the host at trace time: a jitted function sees concrete positions, not tracers."""
    seen = []

    @jax.jit
    def f(x):
        positions = build_relative_position(x.shape[0], x.shape[0], 4, 6)
        seen.append(type(positions))
        return x + positions.sum()

    f(np.zeros(12, np.int32))
    assert seen == [np.ndarray]
