"""ALiBi: attention with linear biases instead of position embeddings.

Press, Smith & Lewis, "Train Short, Test Long: Attention with Linear Biases Enables Input Length
Extrapolation" (ICLR 2022, arXiv 2108.12409), §3. No position is added to the embeddings; instead each
head h adds a penalty proportional to the query–key distance to its attention scores:
    softmax(q_i Kᵀ / √d + m_h · [−|i − j|]_j)
The paper's causal form uses −(i − j) for j ≤ i; a bidirectional encoder (MosaicBERT, Portes et al. 2023,
§2.1) uses the symmetric −|i − j|. The bias depends only on distances, so a model evaluates sequences
longer than any it was trained on (§4: extrapolation) and, with positions restarting per document, packed
documents see the same biases as documents run alone.

Slopes m_h (§3): for n = 2^k heads, the geometric sequence that starts at 2^(−8/n) with that ratio,
    m = 2^(−8/n), 2^(−16/n), …, 2^(−8)
(8 heads: 1/2, 1/4, …, 1/256). For other n (the paper's reference code): the slopes of the closest lower
power of two 2^⌊log₂ n⌋, followed by every other slope (the 1st, 3rd, 5th, …) of 2·2^⌊log₂ n⌋ heads until
there are n.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np


def alibi_slopes(num_heads: int) -> np.ndarray:
    """The per-head slopes m_h, shape (heads,), float32 (Press et al., 2022, §3)."""
    if num_heads < 1:
        raise ValueError(f"num_heads must be positive, got {num_heads}")

    def geometric(n: int) -> list[float]:               # n a power of two: m_h = (2^(−8/n))^h, h = 1..n
        start = 2.0 ** (-8.0 / n)
        return [start ** h for h in range(1, n + 1)]

    if num_heads & (num_heads - 1) == 0:
        return np.asarray(geometric(num_heads), np.float32)
    lower = 2 ** math.floor(math.log2(num_heads))        # the closest lower power of two
    extra = geometric(2 * lower)[0::2][: num_heads - lower]
    return np.asarray(geometric(lower) + extra, np.float32)


def alibi_bias(slopes: jax.Array, positions: jax.Array) -> jax.Array:
    """Symmetric ALiBi bias b[n, h, i, j] = −m_h · |p_i − p_j|, float32.

    slopes (heads,); positions (batch, seq) — `jnp.arange(seq)[None]` for one document per row, or
    `packing.positions_from_segments(segment_ids)` for packed rows (the bias between documents is then
    meaningless but masked out by `attention.document_mask`). Returns (batch, heads, seq, seq), to pass as
    the `bias` of `attention.dot_product_attention`."""
    positions = positions.astype(jnp.float32)
    distance = jnp.abs(positions[:, None, :, None] - positions[:, None, None, :])   # |p_i − p_j|: (b, 1, q, k)
    return -jnp.asarray(slopes, jnp.float32)[None, :, None, None] * distance       # −m_h·|p_i − p_j|
