"""Grouped linear layer: g independent linear maps, each on its own slice of the features.

ConvBERT (Jiang et al., 2020, §3.4, "Grouped feed-forward module"): the input features are split into
g groups, each group is mapped by its own dense layer, and the outputs are concatenated,
    GL(X) = Concat(X_{:, 1:d/g} W¹, X_{:, d/g+1:2d/g} W², ..., X_{:, d−d/g+1:d} Wᵍ) + b,
which cuts the parameters and FLOPs of a d → m layer by g.

The weight is stored as Hugging Face stores it, (groups, in/groups, out/groups), and used as x @ W — no
transpose, unlike `Linear`. The bias covers all `out_features` at once.
"""

import jax
import jax.numpy as jnp
from flax import nnx


class GroupedLinear(nnx.Module):
    """(..., in_features) → (..., out_features) through `num_groups` block-diagonal blocks (HF `GroupedLinearLayer`)."""

    def __init__(self, in_features: int, out_features: int, num_groups: int, *, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        if in_features % num_groups or out_features % num_groups:
            raise ValueError(f"in_features {in_features} and out_features {out_features} must both be multiples of "
                             f"num_groups {num_groups}")
        shape = (num_groups, in_features // num_groups, out_features // num_groups)
        self.weight = nnx.Param(init_std * jax.random.normal(rngs.params(), shape, jnp.float32))
        self.bias = nnx.Param(jnp.zeros((out_features,), jnp.float32))
        self.num_groups = num_groups
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        groups = x.astype(self.dtype).reshape(*x.shape[:-1], self.num_groups, -1)           # (..., g, in/g)
        y = jnp.einsum("...gi,gio->...go", groups, self.weight[...].astype(self.dtype))     # (..., g, out/g)
        return y.reshape(*x.shape[:-1], -1) + self.bias[...].astype(self.dtype)             # (..., out)
