"""Activation functions by their Hugging Face config names (`hidden_act`).

`"gelu"` is the exact GELU, x·Φ(x) with the Gaussian CDF via erf (Hendrycks & Gimpel, 2016);
`"gelu_new"`, `"gelu_pytorch_tanh"` and `"gelu_fast"` are the tanh approximation. Note that
`jax.nn.gelu` defaults to the approximation.
"""

import functools

import jax

ACTIVATIONS = {
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_fast": functools.partial(jax.nn.gelu, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "tanh": jax.numpy.tanh,
    "sigmoid": jax.nn.sigmoid,    # GLU's gate (Dauphin et al. 2017)
}


def activation(name: str):
    """The activation function a config names; an unknown name is an error that lists the known ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]
