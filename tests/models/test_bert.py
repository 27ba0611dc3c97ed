"""BERT beyond parity: bf16 compute, unlabelled positions (input checks, compiling once per shape and dropout modes
are every family's: tests/models/test_family_contract.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import minibert
from minibert.models.bert import BertForPreTraining

CONFIG = minibert.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=12, type_vocab_size=2)


@pytest.fixture
def model():
    m = BertForPreTraining(CONFIG)
    m.eval()
    return m


def test_bfloat16_compute_with_float32_parameters():
    model = BertForPreTraining(CONFIG, dtype=jnp.bfloat16)
    model.eval()
    reference = BertForPreTraining(CONFIG)
    reference.eval()
    ids = np.arange(12).reshape(2, 6)
    out = model(ids)
    assert out.logits.dtype == jnp.bfloat16
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(minibert.checkpoints.hf.model_state_dict(model)))
    np.testing.assert_allclose(np.asarray(out.logits, np.float32), reference(ids).logits, atol=0.1)


def test_losses_ignore_unlabelled_positions(model):
    ids = np.arange(12).reshape(2, 6)
    labels = np.full((2, 6), -100)
    labels[0, 1] = 7
    out = model(ids, labels=labels)
    log_probs = jax.nn.log_softmax(out.logits[0, 1])
    np.testing.assert_allclose(out.loss, -log_probs[7], rtol=1e-6)
    both = model(ids, labels=labels, next_sentence_label=np.array([0, 1]))
    nsp = -jax.nn.log_softmax(both.seq_relationship_logits)[np.arange(2), [0, 1]].mean()
    np.testing.assert_allclose(both.loss, out.loss + nsp, rtol=1e-6)
