"""Rotary embeddings against the RoFormer equations in NumPy, and the properties that make them positional."""

import jax.numpy as jnp
import numpy as np
import pytest

from minibert.nn.rope import apply_rotary, inverse_frequencies


def roformer_rotation(m: int, d: int, theta: float) -> np.ndarray:
    """R^d_{Θ,m} of RoFormer Eq. 15: block-diagonal 2×2 rotations by m·θ_i of planes (x_{2i}, x_{2i+1})."""
    R = np.zeros((d, d))
    for i in range(d // 2):
        angle = m * theta ** (-2.0 * i / d)
        c, s = np.cos(angle), np.sin(angle)
        R[2 * i: 2 * i + 2, 2 * i: 2 * i + 2] = [[c, -s], [s, c]]
    return R


def numpy_rope(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """Eq. 15 in the rotate-half layout: dimension i is paired with i + d/2, so permute to the paper's
    interleaved order (x_0, x_{d/2}, x_1, x_{d/2+1}, …), rotate, and permute back."""
    d = x.shape[-1]
    order = np.stack([np.arange(d // 2), np.arange(d // 2) + d // 2], axis=1).reshape(-1)
    out = np.empty_like(x, dtype=np.float64)
    for b in range(x.shape[0]):
        for s in range(x.shape[1]):
            R = roformer_rotation(int(positions[b, s]), d, theta)
            out[b, s][..., order] = np.einsum("ij,hj->hi", R, x[b, s][..., order])
    return out


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((2, 9, 3, 8)).astype(np.float32)


@pytest.mark.parametrize("theta", [10_000.0, 160_000.0])
def test_matches_roformer_equations(x, theta):
    positions = np.array([np.arange(9), [0, 1, 2, 3, 0, 1, 2, 0, 1]])  # second row: three packed documents
    ours = apply_rotary(jnp.asarray(x), jnp.asarray(positions), theta)
    np.testing.assert_allclose(np.asarray(ours), numpy_rope(x, positions, theta), atol=1e-5)


def test_inverse_frequencies_are_float32():
    inv = inverse_frequencies(8, 10_000.0)
    assert inv.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(inv), 10_000.0 ** (-np.arange(0, 8, 2) / 8), rtol=1e-6)


def test_rotation_preserves_norms(x):
    positions = jnp.broadcast_to(jnp.arange(9) * 37, (2, 9))
    ours = np.asarray(apply_rotary(jnp.asarray(x), positions, 10_000.0))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)


def test_score_depends_only_on_relative_position():
    """⟨f(q, m), f(k, n)⟩ = ⟨f(q, m + s), f(k, n + s)⟩ (Eq. 16): the same q and k placed at shifted positions."""
    rng = np.random.default_rng(1)
    q, k = (jnp.asarray(rng.standard_normal((1, 1, 2, 16)).astype(np.float32)) for _ in range(2))

    def score(m, n):
        fq = apply_rotary(q, jnp.array([[m]]), 10_000.0)
        fk = apply_rotary(k, jnp.array([[n]]), 10_000.0)
        return np.asarray(jnp.einsum("bshd,bshd->h", fq, fk))

    for m, n in [(0, 3), (5, 2), (7, 7)]:
        for shift in (1, 10, 100):
            np.testing.assert_allclose(score(m + shift, n + shift), score(m, n), atol=1e-4)
    assert not np.allclose(score(0, 3), score(0, 4), atol=1e-3)  # but it does depend on m − n


def test_position_zero_is_identity_and_dtype_is_kept(x):
    zeros = jnp.zeros((2, 9), jnp.int32)
    np.testing.assert_allclose(np.asarray(apply_rotary(jnp.asarray(x), zeros, 10_000.0)), x, atol=0)
    assert apply_rotary(jnp.asarray(x, jnp.bfloat16), zeros, 10_000.0).dtype == jnp.bfloat16


def test_bad_shapes_are_errors(x):
    with pytest.raises(ValueError, match="even head_dim"):
        apply_rotary(jnp.asarray(x[..., :7]), jnp.zeros((2, 9), jnp.int32), 10_000.0)
    with pytest.raises(ValueError, match="positions cover"):
        apply_rotary(jnp.asarray(x), jnp.zeros((2, 8), jnp.int32), 10_000.0)
