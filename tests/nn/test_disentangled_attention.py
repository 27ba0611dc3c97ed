"""Disentangled self-attention against a NumPy reference written from He et al. (2021), §3.1, Eq. 2–4, term by
term and loop by loop: A_ij = Q_i·K_j + Q_i·K_r[idx] + K_j·Q_r[idx], idx = clamp(δ(i, j) + k, 0, 2k − 1)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from minibert.nn.attention import capture_attention_maps, set_attention_implementation
from minibert.nn.disentangled_attention import DisentangledSelfAttention, query_key_mask
from minibert.nn.relative_position import build_relative_position

HIDDEN, HEADS = 15, 3                                        # head size 5


def reference(module, x, attention_mask, relative_pos, rel):
    """The equations in NumPy float64: (batch, seq, hidden) → (batch, seq, hidden) and the probabilities."""
    w = lambda linear: (np.asarray(linear.weight[...], np.float64), np.asarray(linear.bias[...], np.float64))
    proj = lambda t, linear: t @ w(linear)[0].T + w(linear)[1]
    heads = lambda t: t.reshape(*t.shape[:-1], HEADS, -1)
    q, k, v = (heads(proj(x, p)) for p in (module.query_proj, module.key_proj, module.value_proj))
    terms = module.pos_att_type if module.relative_attention else ()
    q_proj = module.query_proj if module.share_att_key else module.pos_query_proj
    k_proj = module.key_proj if module.share_att_key else module.pos_key_proj
    k_r = heads(proj(rel, k_proj)) if "c2p" in terms else None
    q_r = heads(proj(rel, q_proj)) if "p2c" in terms else None
    batch, seq, _ = x.shape
    d = HIDDEN // HEADS
    span = len(rel) // 2
    scale = np.sqrt(d * (1 + len(module.pos_att_type)))
    scores = np.zeros((batch, HEADS, seq, seq))
    for b in range(batch):
        for h in range(HEADS):
            for i in range(seq):
                for j in range(seq):
                    r = min(max(relative_pos[i, j] + span, 0), 2 * span - 1)
                    a = q[b, i, h] @ k[b, j, h]                                  # c2c
                    if "c2p" in terms:
                        a += q[b, i, h] @ k_r[r, h]
                    if "p2c" in terms:
                        a += k[b, j, h] @ q_r[r, h]
                    both = attention_mask[b, i] and attention_mask[b, j]
                    scores[b, h, i, j] = a / scale if both else -1e30   # a padded query: a uniform row
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(batch, seq, -1), probs


def build(pos_att_type, share_att_key=False, relative_attention=True, seed=0):
    module = DisentangledSelfAttention(HIDDEN, HEADS, pos_att_type=pos_att_type, relative_attention=relative_attention,
                                       share_att_key=share_att_key, dropout=0.1, pos_dropout=0.1, rngs=nnx.Rngs(seed))
    rng = np.random.default_rng(seed)
    for _, param in nnx.to_flat_state(nnx.state(module, nnx.Param)):
        param.set_value(rng.normal(0, 0.3, param.shape).astype(np.float32))
    module.eval()
    return module


CASES = {   # name: (pos_att_type, share_att_key, relative_attention, position_buckets, max_relative_positions)
    "both-own": (["c2p", "p2c"], False, True, -1, 4),               # span 4 < seq: clamped at both ends
    "both-reversed-shared-buckets": (["p2c", "c2p"], True, True, 6, 8),
    "c2p-only": (["c2p"], False, True, 4, 20),
    "p2c-only-shared": (["p2c"], True, True, -1, 12),
    "none": ([], False, True, -1, 5),
    "not-relative": (["c2p", "p2c"], False, False, -1, 5),        # the scale still counts both terms
}


@pytest.mark.parametrize("case", CASES)
def test_matches_the_equations(case):
    pos_att_type, share, relative, buckets, max_relative = CASES[case]
    module = build(pos_att_type, share, relative)
    rng = np.random.default_rng(1)
    batch, seq = 3, 9
    x = rng.normal(0, 1, (batch, seq, HIDDEN)).astype(np.float32)
    attention_mask = np.ones((batch, seq), np.int32)
    attention_mask[1, 6:] = 0
    attention_mask[2, 2:] = 0
    relative_pos = build_relative_position(seq, seq, buckets, max_relative)
    span = buckets if buckets > 0 else max_relative
    rel = rng.normal(0, 1, (2 * span, HIDDEN)).astype(np.float32)
    module.record_attention = True
    mask = query_key_mask(jnp.asarray(attention_mask))
    out, maps = capture_attention_maps(lambda m: m(jnp.asarray(x), mask, relative_pos, jnp.asarray(rel)), module)
    expected, probs = reference(module, x.astype(np.float64), attention_mask, relative_pos, rel.astype(np.float64))
    np.testing.assert_allclose(np.asarray(out), expected, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(maps[0]), probs, atol=1e-6)
    np.testing.assert_allclose(np.asarray(maps[0])[2, :, 5], 1 / seq, rtol=1e-6)   # padded query: uniform


def test_parameters_are_the_listed_terms():
    names = lambda m: {".".join(map(str, p[:-1])) for p, _ in nnx.to_flat_state(nnx.state(m, nnx.Param))}
    base = {"query_proj", "key_proj", "value_proj"}
    assert names(build(["p2c", "c2p"])) == base | {"pos_key_proj", "pos_query_proj"}
    assert names(build(["c2p"])) == base | {"pos_key_proj"}
    assert names(build(["p2c", "c2p"], share_att_key=True)) == base
    assert names(build(["p2c", "c2p"], relative_attention=False)) == base


def test_fused_implementation_gives_the_same():
    module = build(["c2p", "p2c"])
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(0, 1, (2, 7, HIDDEN)).astype(np.float32))
    mask = query_key_mask(jnp.asarray([[1] * 7, [1] * 4 + [0] * 3]))
    args = (x, mask, build_relative_position(7, 7), jnp.asarray(rng.normal(0, 1, (8, HIDDEN)).astype(np.float32)))
    reference_out = module(*args)
    set_attention_implementation(module, "fused")
    np.testing.assert_allclose(np.asarray(module(*args))[:, :4], np.asarray(reference_out)[:, :4], atol=1e-5)


def test_dropout_acts_in_train_mode_only():
    module = build(["c2p", "p2c"])
    rng = np.random.default_rng(3)
    args = (jnp.asarray(rng.normal(0, 1, (2, 6, HIDDEN)).astype(np.float32)), query_key_mask(jnp.ones((2, 6))),
            build_relative_position(6, 6), jnp.asarray(rng.normal(0, 1, (10, HIDDEN)).astype(np.float32)))
    np.testing.assert_array_equal(np.asarray(module(*args)), np.asarray(module(*args)))
    module.train()
    assert not np.allclose(np.asarray(module(*args)), np.asarray(module(*args)))


def test_unknown_position_term_is_an_error():
    with pytest.raises(ValueError, match=r"unknown \['p2p'\]"):
        build(["c2p", "p2p"])

