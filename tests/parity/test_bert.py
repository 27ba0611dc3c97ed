"""BERT parity with `transformers` at float32: every layer, pooler, MLM and NSP logits, loss and gradients."""

import numpy as np
import pytest

import minibert
from minibert.checkpoints.hf import model_state_dict
from tests.conftest import assert_close_at_real, assert_gradients_match, padded_batch, save_reference, torch_outputs

CONFIGS = {
    "base-like": dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=37, type_vocab_size=2),
    "odd-heads": dict(vocab_size=101, hidden_size=15, num_hidden_layers=3, num_attention_heads=3,
                      intermediate_size=31, type_vocab_size=4, hidden_act="gelu_new", max_position_embeddings=24),
    "wide-types": dict(vocab_size=257, hidden_size=48, num_hidden_layers=1, num_attention_heads=3,
                       intermediate_size=64, type_vocab_size=7, hidden_act="relu", layer_norm_eps=1e-5),
}
SHAPES = [(1, 5), (3, 16), (2, 24)]
MODELS = ["BertModel", "BertForMaskedLM", "BertForPreTraining"]


@pytest.fixture(scope="module", params=[(m, c) for m in MODELS for c in CONFIGS], ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, tmp_path_factory):
    model_name, config_name = request.param
    path = tmp_path_factory.mktemp(f"{model_name}-{config_name}")
    reference = save_reference(model_name, "BertConfig", path, **CONFIGS[config_name])
    return reference, minibert.from_pretrained(path), CONFIGS[config_name]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_matches_transformers(pair, shape):
    reference, model, config = pair
    batch = padded_batch(config["vocab_size"], *shape, type_vocab_size=config["type_vocab_size"], seed=shape[1])
    ours = model(**batch, output_hidden_states=True)
    theirs = torch_outputs(reference, batch)
    mask = batch["attention_mask"]
    assert len(ours.hidden_states) == config["num_hidden_layers"] + 1
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        assert_close_at_real(a, b, mask, what=f"hidden state {i}")
    if type(model).__name__ == "BertModel":
        assert_close_at_real(ours.last_hidden_state, theirs.last_hidden_state, mask, what="last hidden state")
        assert_close_at_real(ours.pooler_output, theirs.pooler_output, mask, what="pooler")
    elif type(model).__name__ == "BertForMaskedLM":
        assert_close_at_real(ours.logits, theirs.logits, mask, what="MLM logits")
    else:
        assert_close_at_real(ours.logits, theirs.prediction_logits, mask, what="MLM logits")
        assert_close_at_real(ours.seq_relationship_logits, theirs.seq_relationship_logits, mask, what="NSP logits")


def test_pretraining_loss_and_gradients_match(tmp_path):
    """MLM + NSP loss and d(loss)/d(every parameter) against PyTorch autograd, dropout off."""
    import torch
    from flax import nnx

    config = CONFIGS["odd-heads"]
    reference = save_reference("BertForPreTraining", "BertConfig", tmp_path, **config)
    model = minibert.from_pretrained(tmp_path)
    batch = padded_batch(config["vocab_size"], 3, 12, type_vocab_size=config["type_vocab_size"])
    batch["input_ids"][:, -2:] = 0  # the pad token id: its embedding row gets no gradient from lookups (padding_idx)
    rng = np.random.default_rng(1)
    labels = np.where(rng.random((3, 12)) < 0.3, rng.integers(0, config["vocab_size"], (3, 12)), -100)
    labels[0, 0] = 5  # at least one predicted position
    nsp = np.array([0, 1, 1])

    def loss_fn(m):
        return m(**batch, labels=labels, next_sentence_label=nsp).loss

    loss, grads = nnx.jit(nnx.value_and_grad(loss_fn))(model)
    out = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, labels=torch.from_numpy(labels),
                    next_sentence_label=torch.from_numpy(nsp))
    out.loss.backward()
    np.testing.assert_allclose(float(loss), out.loss.item(), rtol=1e-5)

    assert_gradients_match(grads, dict(reference.named_parameters()), model_state_dict(model))
