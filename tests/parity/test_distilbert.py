"""DistilBERT parity with `transformers` at float32: every layer and the MLM head (tied and untied, learned and
sinusoidal positions) on padded batches, loss and every gradient, checkpoints both ways byte for byte, and the
sinusoidal table against the reference's."""

import numpy as np
import pytest
from safetensors.numpy import load_file

import minibert
import minibert.models.distilbert as distilbert
from minibert.checkpoints.hf import model_state_dict, save_pretrained
from tests.conftest import (assert_close_at_real, assert_gradients_match, padded_batch, save_perturbed_reference,
                            torch_outputs)

CONFIGS = {
    "base-like": dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=40),
    "odd-heads-sinusoidal": dict(vocab_size=101, dim=15, n_layers=3, n_heads=3, hidden_dim=31, activation="relu",
                                 max_position_embeddings=27, sinusoidal_pos_embds=True),
    "pad3-untied": dict(vocab_size=67, dim=16, n_layers=1, n_heads=2, hidden_dim=20, max_position_embeddings=32,
                        pad_token_id=3, tie_word_embeddings=False),
}
MODELS = ["DistilBertModel", "DistilBertForMaskedLM"]


def perturbed_reference(model_name, config, path):
    return save_perturbed_reference(model_name, "DistilBertConfig", path, **config)


@pytest.fixture(scope="module", params=[(m, c) for m in MODELS for c in CONFIGS], ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, tmp_path_factory):
    model_name, config_name = request.param
    path = tmp_path_factory.mktemp(f"{model_name}-{config_name}")
    reference = perturbed_reference(model_name, CONFIGS[config_name], path)
    return reference, minibert.from_pretrained(path), CONFIGS[config_name], path


def test_sinusoidal_table_matches_transformers():
    import torch
    from transformers.models.distilbert.modeling_distilbert import _create_sinusoidal_embeddings

    expected = _create_sinusoidal_embeddings(27, 15, torch.empty(27, 15)).numpy()
    np.testing.assert_allclose(distilbert.sinusoidal_table(27, 15), expected, atol=1e-7)


@pytest.mark.parametrize("shape", [(1, 5), (3, 16)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_matches_transformers(pair, shape):
    import torch

    reference, model, config, _ = pair
    batch = padded_batch(config["vocab_size"], *shape, seed=shape[1])
    labels = {}
    if type(model).__name__ == "DistilBertForMaskedLM":
        rng = np.random.default_rng(shape[0])
        labels["labels"] = np.where(rng.random(shape) < 0.3, rng.integers(0, config["vocab_size"], shape), -100)
        labels["labels"][0, 0] = 1
    ours = model(**batch, **labels, output_hidden_states=True)
    theirs = torch_outputs(reference, batch, **{k: torch.from_numpy(v) for k, v in labels.items()})
    mask = batch["attention_mask"]
    assert len(ours.hidden_states) == len(theirs.hidden_states) == config["n_layers"] + 1
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        assert_close_at_real(a, b, mask, what=f"hidden state {i}")
    if labels:
        assert_close_at_real(ours.logits, theirs.logits, mask, what="MLM logits")
        np.testing.assert_allclose(float(ours.loss), theirs.loss.item(), rtol=1e-5)
    else:
        assert_close_at_real(ours.last_hidden_state, theirs.last_hidden_state, mask, what="last hidden state")


@pytest.mark.parametrize("config_name", ["odd-heads-sinusoidal", "pad3-untied"])
def test_mlm_loss_and_gradients_match(config_name, tmp_path):
    """MLM loss and d(loss)/d(every parameter) against PyTorch autograd, dropout off, the pad token at a real
    position (its row of the word table gets no gradient from lookups: padding_idx)."""
    import torch
    from flax import nnx

    config = CONFIGS[config_name]
    reference = perturbed_reference("DistilBertForMaskedLM", config, tmp_path)
    model = minibert.from_pretrained(tmp_path)
    batch = padded_batch(config["vocab_size"], 3, 12, seed=7)
    batch["input_ids"][1, 4] = config.get("pad_token_id", 0)
    rng = np.random.default_rng(1)
    labels = np.where(rng.random((3, 12)) < 0.3, rng.integers(0, config["vocab_size"], (3, 12)), -100)
    labels[0, 0] = 5

    loss, grads = nnx.jit(nnx.value_and_grad(lambda m: m(**batch, labels=labels).loss))(model)
    out = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, labels=torch.from_numpy(labels))
    out.loss.backward()
    np.testing.assert_allclose(float(loss), out.loss.item(), rtol=1e-5)
    assert_gradients_match(grads, dict(reference.named_parameters(remove_duplicate=False)), model_state_dict(model))


def test_hf_to_minibert_to_hf_is_byte_identical(pair, tmp_path):
    _, model, _, path = pair
    save_pretrained(model, tmp_path)
    original, ours = load_file(path / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert set(original) == set(ours)
    for key in original:
        assert original[key].tobytes() == ours[key].tobytes(), key


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("config_name", ["odd-heads-sinusoidal", "pad3-untied"])
def test_transformers_loads_minibert(model_name, config_name, tmp_path):
    """Saved by minibert, read by `transformers`: no missing or unexpected keys, the same outputs."""
    import transformers

    config = CONFIGS[config_name]
    model = getattr(distilbert, model_name)(distilbert.DistilBertConfig(**config))
    rng = np.random.default_rng(0)
    for param in model_state_dict(model).values():
        param.set_value(rng.normal(0, 0.1, param.shape).astype(np.float32) + (param[...] == 1))
    model.eval()
    save_pretrained(model, tmp_path)
    reference, info = getattr(transformers, model_name).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    batch = padded_batch(config["vocab_size"], 2, 9, seed=3)
    ours, theirs = model(**batch), torch_outputs(reference.eval(), batch)
    field = "logits" if model_name.endswith("MaskedLM") else "last_hidden_state"
    assert_close_at_real(getattr(ours, field), getattr(theirs, field), batch["attention_mask"], what=field)
