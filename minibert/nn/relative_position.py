"""Relative positions δ(i, j) = i − j between query i and key j, and DeBERTa's log buckets.

He, Liu, Gao & Chen, "DeBERTa: Decoding-enhanced BERT with Disentangled Attention" (ICLR 2021), §3.1: attention
reads the relative distance δ(i, j) = i − j, clipped to a span k (|δ| < k), instead of absolute positions.
DeBERTa-v2/v3 (transformers' `make_log_bucket_position`, from the authors' code) bucket it first: distances
shorter than mid = bucket_size // 2 stay exact, longer ones share buckets that grow logarithmically up to
max_position:
    bucket(δ) = δ                                                                     if |δ| ≤ mid
              = sign(δ) · (mid + ⌈log(|δ| / mid) / log((max_position − 1) / mid) · (mid − 1)⌉)   otherwise
so |bucket(δ)| reaches 2·mid − 1 at |δ| = max_position − 1 and grows slowly beyond. bucket is odd:
bucket(−δ) = −bucket(δ).

Where the ceiling falls is float32 rounding: at δ = 9 with bucket_size 8 and max_position 7 the ratio is exactly
6 (9/4 = 1.5²), and a log one unit in the last place off gives bucket 11 instead of PyTorch's 10. The logs here
are XLA's on the CPU, which round as PyTorch's CPU kernels do (tests/nn/test_relative_position.py, bit for bit);
NumPy's float32 log does not. Positions depend on the sequence lengths only, so they are computed once, on the
CPU, outside any trace (`ensure_compile_time_eval`), and enter a compiled function as constants, whatever
device it runs on.
"""

import jax
import jax.numpy as jnp
import numpy as np


def _log(x: np.ndarray) -> np.ndarray:
    """float32 natural log, rounded as PyTorch's CPU kernels round it: XLA's, on the CPU, outside any trace."""
    with jax.ensure_compile_time_eval(), jax.default_device(jax.devices("cpu")[0]):
        return np.asarray(jnp.log(jnp.asarray(x, jnp.float32)))


def make_log_bucket_position(relative_pos: np.ndarray, bucket_size: int, max_position: int) -> np.ndarray:
    """The log bucket of each relative position (the equation above): int array → int32 array of its shape.
    The arithmetic around the logs is NumPy float32 (IEEE, as PyTorch's): a compiler may reassociate it."""
    relative_pos = np.asarray(relative_pos, np.int32)
    mid = bucket_size // 2
    abs_pos = np.where(np.abs(relative_pos) < mid, mid - 1, np.abs(relative_pos))    # |δ| (below mid: unused)
    with np.errstate(divide="ignore", invalid="ignore"):   # max_position − 1 = mid: log 1 = 0 (see below)
        ratio = _log(abs_pos.astype(np.float32) / np.float32(mid)) / _log(np.float32((max_position - 1) / mid))
        log_pos = np.ceil(ratio * np.float32(mid - 1)) + np.float32(mid)
        bucket = np.where(abs_pos <= mid, relative_pos, log_pos * np.sign(relative_pos).astype(np.float32))
    # ±inf (a division by log 1 = 0): PyTorch's float → int cast makes them the most negative integer
    return np.where(np.isfinite(bucket), bucket, np.iinfo(np.int32).min).astype(np.int32)


def build_relative_position(query_size: int, key_size: int, bucket_size: int = -1,
                            max_position: int = -1) -> np.ndarray:
    """δ(i, j) = i − j for queries 0 … query_size − 1 and keys 0 … key_size − 1, log-bucketed when both
    `bucket_size` and `max_position` are positive: (query_size, key_size) int32."""
    relative_pos = (np.arange(query_size)[:, None] - np.arange(key_size)[None, :]).astype(np.int32)
    if bucket_size > 0 and max_position > 0:
        relative_pos = make_log_bucket_position(relative_pos, bucket_size, max_position)
    return relative_pos
