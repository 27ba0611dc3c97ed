"""nn/gdes.py: E_D = sg(E_G) + E_Δ (He et al. 2023, §3.2, Eq. 7): the discriminator's loss moves E_Δ only, the
generator's table gets no gradient through it, the padding row of E_Δ none from lookups; `merged` is E_G + E_Δ."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert.nn.embeddings import Embedding
from minibert.nn.gdes import GradientDisentangledEmbedding


def test_the_discriminator_loss_moves_the_residual_only():
    generator = Embedding(11, 4, padding_idx=0, rngs=nnx.Rngs(0))
    shared = GradientDisentangledEmbedding(generator)
    shared.delta.set_value(0.1 * jnp.ones((11, 4)))
    ids = jnp.array([[0, 3, 3, 5]])
    np.testing.assert_allclose(shared(ids), generator.weight[...][ids] + 0.1, atol=1e-7)

    grads = nnx.grad(lambda m: jnp.sum(m(ids) ** 2))(shared)
    flat = {".".join(map(str, path)): np.asarray(g[...]) for path, g in nnx.to_flat_state(grads)}
    assert not flat["generator.weight"].any()                       # sg(E_G): nothing reaches the generator
    delta = flat["delta"]
    assert not delta[0].any()                                       # padding row: no gradient from lookups
    np.testing.assert_allclose(delta[3], 2 * 2 * np.asarray(shared(ids)[0, 1]), rtol=1e-6)   # looked up twice
    assert not delta[[1, 2, 4, 6]].any()
    np.testing.assert_allclose(shared.merged(), generator.weight[...] + 0.1, atol=1e-7)


def test_the_generator_loss_still_moves_the_shared_table():
    generator = Embedding(7, 3, rngs=nnx.Rngs(1))
    shared = GradientDisentangledEmbedding(generator)
    ids = jnp.array([[1, 2]])
    grads = nnx.grad(lambda g: jnp.sum(g(ids)))(generator)
    assert np.asarray(grads["weight"][...])[1].all()
    assert float(jnp.abs(shared.delta[...]).max()) == 0.0           # E_Δ starts at zero: E_D = E_G at first
