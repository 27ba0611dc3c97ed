"""ALiBi slopes against Press et al. (2022, §3) written out by hand, and the symmetric bias."""

import jax.numpy as jnp
import numpy as np
import pytest

from minibert.nn.alibi import alibi_bias, alibi_slopes
from minibert.nn.packing import positions_from_segments

# n = 2^k heads: 2^(−8/n), 2^(−16/n), …, 2^(−8). Otherwise the closest lower power of two's slopes, then every
# other slope (1st, 3rd, …) of twice that many heads.
EXPECTED = {
    8: [2.0 ** -k for k in range(1, 9)],                                            # 1/2, 1/4, …, 1/256
    12: [2.0 ** -k for k in range(1, 9)] + [2.0 ** -0.5, 2.0 ** -1.5, 2.0 ** -2.5, 2.0 ** -3.5],  # 8 + 4 of 16's
    6: [2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8] + [2.0 ** -1, 2.0 ** -3],        # 4 + 2 of 8's
    1: [2.0 ** -8],
    16: [2.0 ** (-k / 2) for k in range(1, 17)],
}


@pytest.mark.parametrize("heads", sorted(EXPECTED))
def test_slopes_follow_the_paper(heads):
    slopes = alibi_slopes(heads)
    assert slopes.dtype == np.float32 and slopes.shape == (heads,)
    np.testing.assert_allclose(slopes, EXPECTED[heads], rtol=1e-7)


def test_slopes_reject_no_heads():
    with pytest.raises(ValueError, match="positive"):
        alibi_slopes(0)


def test_bias_is_minus_slope_times_distance_and_symmetric():
    slopes = alibi_slopes(4)
    bias = np.asarray(alibi_bias(slopes, jnp.arange(5)[None]))
    assert bias.shape == (1, 4, 5, 5)
    for h in range(4):
        for i in range(5):
            for j in range(5):
                assert bias[0, h, i, j] == pytest.approx(-slopes[h] * abs(i - j))
    np.testing.assert_array_equal(bias, bias.transpose(0, 1, 3, 2))


def test_bias_restarts_with_each_document():
    """Within each packed document the bias equals that of the document alone."""
    segments = jnp.array([[1, 1, 1, 2, 2, 0]])
    bias = np.asarray(alibi_bias(alibi_slopes(2), positions_from_segments(segments)))
    alone = np.asarray(alibi_bias(alibi_slopes(2), jnp.arange(3)[None]))
    np.testing.assert_array_equal(bias[:, :, :3, :3], alone)
    np.testing.assert_array_equal(bias[:, :, 3:5, 3:5], alone[:, :, :2, :2])
