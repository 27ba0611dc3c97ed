"""BERT beyond parity: input checks, compilation once per shape, dropout modes, bf16 compute."""

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


def test_bad_inputs_get_clear_errors(model):
    ids = np.ones((2, 6), np.int32)
    cases = [
        (dict(input_ids=np.ones((2, 13), np.int32)), "exceeds max_position_embeddings 12"),
        (dict(input_ids=np.array([[1, 50, -1]])), r"outside the vocabulary \[0, 50\): \[-1, 50\]"),
        (dict(input_ids=ids, attention_mask=np.ones((2, 5))), r"attention_mask has shape \(2, 5\)"),
        (dict(input_ids=ids, token_type_ids=np.ones((6,), np.int32)), r"token_type_ids has shape \(6,\)"),
        (dict(input_ids=ids, token_type_ids=np.full((2, 6), 2)), r"token_type_ids outside \[0, 2\)"),
        (dict(input_ids=np.ones(6, np.int32)), r"must have shape \(batch, seq\)"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model(**kwargs)
    with pytest.raises(TypeError, match="must be integers"):
        model(np.ones((2, 6), np.float32))


def test_compiles_once_per_shape(model, monkeypatch):
    traces = []
    forward = BertForPreTraining.forward
    monkeypatch.setattr(BertForPreTraining, "forward", lambda self, *a, **k: traces.append(1) or forward(self, *a, **k))
    model.pad_to_multiple_of = None          # every length as it is (bucketing: tests/models/test_host.py)
    ids = np.ones((2, 6), np.int32)
    model(ids)
    model(ids + 1, attention_mask=np.ones((2, 6)))
    assert len(traces) == 1
    model(np.ones((2, 7), np.int32))
    assert len(traces) == 2


def test_dropout_in_train_mode_only(model):
    ids = np.arange(12).reshape(2, 6)
    first, second = model(ids).logits, model(ids).logits
    np.testing.assert_array_equal(first, second)
    model.train()
    assert not np.allclose(model(ids).logits, model(ids).logits)


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
