"""Distillation losses against NumPy written from the papers' equations; the Distiller's teacher is frozen."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from minibert import presets
from minibert.distillation import (Distiller, attention_transfer_loss, cosine_loss, feature_map_loss, layer_map, normalize,
                                   soft_target_loss)
from minibert.models import auto
from minibert.nn.attention import record_attention_maps

RNG = np.random.default_rng(0)
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])


def np_normalize(h, eps=1e-6):
    mean = h.mean(-1, keepdims=True)
    return (h - mean) / np.sqrt(((h - mean) ** 2).mean(-1, keepdims=True) + eps)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def attention_probs(heads):
    """Softmax rows over (batch, heads, q, k) with the padded keys of MASK at probability 0."""
    scores = RNG.normal(size=(2, heads, 6, 6)) * 3
    scores = np.where(MASK[:, None, None, :] > 0, scores, -np.inf)
    return np_softmax(scores).astype(np.float32)


def test_normalize_is_layer_norm_without_parameters():
    h = RNG.normal(size=(2, 6, 8)).astype(np.float32) * 5 + 3
    np.testing.assert_allclose(normalize(jnp.asarray(h)), np_normalize(h), atol=1e-5)


def test_feature_map_loss_is_the_mse_of_normalised_states_over_real_tokens():
    student, teacher = (RNG.normal(size=(2, 6, 8)).astype(np.float32) for _ in range(2))
    squared = ((np_normalize(teacher) - np_normalize(student)) ** 2).mean(-1)          # (batch, seq)
    expected = squared[MASK > 0].mean()                                                # 1/(T N) Σ_t Σ_n
    got = feature_map_loss(jnp.asarray(student), jnp.asarray(teacher), jnp.asarray(MASK))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert float(feature_map_loss(jnp.asarray(teacher), jnp.asarray(teacher), jnp.asarray(MASK))) < 1e-10
    # a padded position's state does not count
    moved = student.copy()
    moved[1, 4] += 100
    np.testing.assert_allclose(feature_map_loss(jnp.asarray(moved), jnp.asarray(teacher), jnp.asarray(MASK)), expected,
                               rtol=1e-5)


def np_kl(p, q):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0).sum(-1)


@pytest.mark.parametrize("student_heads", [4, 2])
def test_attention_transfer_loss_is_the_kl_per_real_query_and_head(student_heads):
    teacher, student = attention_probs(4), attention_probs(student_heads)
    if student_heads != 4:      # different head counts: the heads' mean distributions
        kl = np_kl(teacher.mean(1), student.mean(1))                                    # (batch, q)
    else:
        kl = np_kl(teacher, student).mean(1)                                           # 1/A Σ_a
    expected = kl[MASK > 0].mean()                                                     # 1/T Σ_t
    got = attention_transfer_loss(jnp.asarray(student), jnp.asarray(teacher), jnp.asarray(MASK))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert np.isfinite(float(got))
    np.testing.assert_allclose(attention_transfer_loss(jnp.asarray(teacher), jnp.asarray(teacher), jnp.asarray(MASK)),
                               0.0, atol=1e-6)


def test_attention_transfer_gradient_is_finite_at_masked_keys():
    teacher, student = attention_probs(2), attention_probs(2)
    grad = jax.grad(lambda s: attention_transfer_loss(s, jnp.asarray(teacher), jnp.asarray(MASK)))(jnp.asarray(student))
    assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_soft_target_loss_is_hintons_kd(temperature):
    student, teacher = RNG.normal(size=(3, 5, 11)) * 2, RNG.normal(size=(3, 5, 11)) * 2
    where = RNG.random((3, 5)) > 0.4
    kl = np_kl(np_softmax(teacher / temperature), np_softmax(student / temperature))   # (3, 5)
    expected = temperature ** 2 * kl[where].mean()                                     # T² · KL, over the rows kept
    got = soft_target_loss(jnp.asarray(student, jnp.float32), jnp.asarray(teacher, jnp.float32), temperature,
                           jnp.asarray(where))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    all_rows = soft_target_loss(jnp.asarray(student, jnp.float32), jnp.asarray(teacher, jnp.float32), temperature)
    np.testing.assert_allclose(all_rows, temperature ** 2 * kl.mean(), rtol=1e-5)


def test_soft_target_loss_is_zero_when_the_student_matches_the_teacher():
    logits = jnp.asarray(RNG.normal(size=(4, 7)), jnp.float32)
    assert abs(float(soft_target_loss(logits, logits, 2.0))) < 1e-6


def test_cosine_loss_is_torchs_cosine_embedding_loss_over_real_tokens():
    """L_cos = mean over real tokens of 1 − cos: torch.nn.CosineEmbeddingLoss with target 1 on the real rows
    (as DistilBERT's distiller selects them)."""
    import torch

    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(2, 5, 7)).astype(np.float32), rng.normal(size=(2, 5, 7)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    real = mask.astype(bool)
    expected = torch.nn.CosineEmbeddingLoss()(torch.from_numpy(s[real]), torch.from_numpy(t[real]),
                                              torch.ones(int(real.sum())))
    np.testing.assert_allclose(float(cosine_loss(jnp.asarray(s), jnp.asarray(t), jnp.asarray(mask))), expected.item(),
                               rtol=1e-6)
    assert float(cosine_loss(jnp.asarray(s), jnp.asarray(2 * s), jnp.asarray(mask))) < 1e-6


@pytest.mark.parametrize("student, teacher, expected", [(2, 2, [1, 2]), (2, 4, [2, 4]), (3, 12, [4, 8, 12]),
                                                        (4, 2, [1, 1, 2, 2]), (1, 3, [3])])
def test_layer_map_is_uniform(student, teacher, expected):
    assert layer_map(student, teacher) == expected


# ---- the Distiller -------------------------------------------------------------------------------------------------

def tiny(family, vocab=120, **overrides):
    f, values = presets.preset(family, "tiny")
    model_class = auto.model_class_by_name(f.objectives["mlm"])
    config = model_class.config_class(**{**values, "vocab_size": vocab, "pad_token_id": 0, **overrides})
    model = model_class(config, rngs=nnx.Rngs(1))
    model.eval()
    return model


@pytest.fixture(scope="module")
def batch():
    ids = RNG.integers(5, 120, (2, 12))
    mask = np.ones((2, 12), np.int64)
    mask[1, 8:] = 0
    labels = np.where(RNG.random((2, 12)) < 0.3, ids, -100)
    return {"input_ids": jnp.asarray(ids), "attention_mask": jnp.asarray(mask),
            "token_type_ids": jnp.zeros((2, 12), jnp.int32), "labels": jnp.asarray(labels)}


@pytest.mark.parametrize("student_family", ["mobilebert", "convbert", "modernbert"])
def test_a_bert_teacher_teaches_students_of_other_families(student_family, batch):
    teacher, student = tiny("bert", hidden_size=64, num_attention_heads=2, intermediate_size=128), tiny(student_family)
    distiller = Distiller(teacher, student, rngs=nnx.Rngs(0))
    record_attention_maps(distiller)
    out, maps, t_out, t_maps = distiller(batch)
    layers = student.config.num_hidden_layers
    assert len(maps) == layers and len(t_maps) == teacher.config.num_hidden_layers
    assert distiller.projections is not None and len(distiller.projections) == layers    # widths 128 → 64
    loss = distiller.transfer_loss(out, maps, t_out, t_maps, batch["attention_mask"])
    assert np.isfinite(float(loss)) and float(loss) > 0

    def transfer(d):
        return d.transfer_loss(*d(batch), batch["attention_mask"])
    grads = nnx.grad(transfer, argnums=nnx.DiffState(0, nnx.Param))(distiller)
    norm = lambda tree: float(sum(jnp.sum(jnp.abs(g)) for g in jax.tree.leaves(tree)))
    assert norm(nnx.state(grads, nnx.Param)["teacher"]) == 0.0          # the teacher's outputs are constants
    assert norm(nnx.state(grads, nnx.Param)["student"]) > 0
    assert norm(nnx.state(grads, nnx.Param)["projections"]) > 0


def test_the_teacher_stays_in_eval_mode_when_the_distiller_trains():
    distiller = Distiller(tiny("bert"), tiny("mobilebert"), rngs=nnx.Rngs(0))
    distiller.train()
    dropouts = lambda m: [d.deterministic for _, d in nnx.iter_modules(m) if isinstance(d, nnx.Dropout)]
    assert all(dropouts(distiller.teacher)) and not any(dropouts(distiller.student))
    assert distiller.projections is None                                # equal widths (128): no projection


def test_the_same_weights_transfer_nothing(batch):
    teacher = tiny("bert")
    student = tiny("bert")
    nnx.update(student, nnx.state(teacher))
    distiller = Distiller(teacher, student, rngs=nnx.Rngs(0))
    record_attention_maps(distiller)
    out, maps, t_out, t_maps = distiller(batch)
    assert float(distiller.transfer_loss(out, maps, t_out, t_maps, batch["attention_mask"])) < 1e-8
    assert float(soft_target_loss(out.logits, t_out.logits)) < 1e-8
