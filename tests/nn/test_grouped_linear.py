"""GroupedLinear is a block-diagonal dense layer (ConvBERT §3.4), weights (groups, in/g, out/g) used as x @ W."""

import numpy as np
import pytest
from flax import nnx

from minibert.nn.grouped_linear import GroupedLinear


@pytest.mark.parametrize("groups,in_features,out_features", [(1, 6, 10), (2, 8, 6), (4, 12, 20)])
def test_equals_block_diagonal_dense(groups, in_features, out_features):
    layer = GroupedLinear(in_features, out_features, groups, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(groups)
    layer.bias.set_value(rng.normal(size=out_features).astype(np.float32))
    x = rng.normal(size=(2, 5, in_features)).astype(np.float32)
    weight = np.asarray(layer.weight[...])
    assert weight.shape == (groups, in_features // groups, out_features // groups)
    dense = np.zeros((in_features, out_features), np.float32)     # block-diagonal: group g maps slice g to slice g
    gi, go = in_features // groups, out_features // groups
    for g in range(groups):
        dense[g * gi:(g + 1) * gi, g * go:(g + 1) * go] = weight[g]
    expected = x @ dense + np.asarray(layer.bias[...])
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-6)


def test_groups_must_divide_both_widths():
    with pytest.raises(ValueError, match="multiples of num_groups 3"):
        GroupedLinear(8, 9, 3, rngs=nnx.Rngs(0))
