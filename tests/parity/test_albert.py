"""ALBERT parity with `transformers` at float32: factorised embeddings (E ≠ H), layer groups shared across depth
(`num_hidden_groups` > 1 with `inner_group_num` > 1), every hidden state, the pooler, the MLM and SOP heads (tied
and untied), padding and token types; loss and every gradient; checkpoints both ways byte for byte."""

import numpy as np
import pytest
from safetensors.numpy import load_file

import minibert
import minibert.models.albert as albert
from minibert.checkpoints.hf import model_state_dict, save_pretrained
from tests.conftest import (assert_close_at_real, assert_gradients_match, padded_batch, save_perturbed_reference,
                            torch_outputs)

CONFIGS = {
    "shared-one-group": dict(vocab_size=99, embedding_size=8, hidden_size=32, num_hidden_layers=3,
                             num_attention_heads=4, intermediate_size=37, max_position_embeddings=40),
    "groups-and-inner": dict(vocab_size=101, embedding_size=5, hidden_size=15, num_hidden_layers=4,
                             num_hidden_groups=2, inner_group_num=2, num_attention_heads=3, intermediate_size=31,
                             hidden_act="gelu", type_vocab_size=3, max_position_embeddings=27, hidden_dropout_prob=0.1),
    "odd-groups-untied": dict(vocab_size=67, embedding_size=16, hidden_size=16, num_hidden_layers=5,
                              num_hidden_groups=3, num_attention_heads=2, intermediate_size=20, hidden_act="relu",
                              max_position_embeddings=32, pad_token_id=3, tie_word_embeddings=False),
}
MODELS = ["AlbertModel", "AlbertForMaskedLM", "AlbertForPreTraining"]


def perturbed_reference(model_name, config, path):
    return save_perturbed_reference(model_name, "AlbertConfig", path, **config)


def targets(model_name, config, shape, seed):
    rng = np.random.default_rng(seed)
    out = {}
    if model_name != "AlbertModel":
        out["labels"] = np.where(rng.random(shape) < 0.3, rng.integers(0, config["vocab_size"], shape), -100)
        out["labels"][0, 0] = 1
    if model_name == "AlbertForPreTraining":
        out["sentence_order_label"] = rng.integers(0, 2, shape[0])
    return out


@pytest.fixture(scope="module", params=[(m, c) for m in MODELS for c in CONFIGS], ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, tmp_path_factory):
    model_name, config_name = request.param
    path = tmp_path_factory.mktemp(f"{model_name}-{config_name}")
    reference = perturbed_reference(model_name, CONFIGS[config_name], path)
    return reference, minibert.from_pretrained(path), CONFIGS[config_name], path


@pytest.mark.parametrize("shape", [(1, 5), (3, 16)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_matches_transformers(pair, shape):
    import torch

    reference, model, config, _ = pair
    name = type(model).__name__
    batch = padded_batch(config["vocab_size"], *shape, type_vocab_size=config.get("type_vocab_size", 2),
                         seed=shape[1])
    extra = targets(name, config, shape, shape[0])
    ours = model(**batch, **extra, output_hidden_states=True)
    theirs = torch_outputs(reference, batch, **{k: torch.from_numpy(v) for k, v in extra.items()})
    mask = batch["attention_mask"]
    inner = config.get("inner_group_num", 1)
    assert len(ours.hidden_states) == len(theirs.hidden_states) == config["num_hidden_layers"] * inner + 1
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        assert_close_at_real(a, b, mask, what=f"hidden state {i}")
    if name == "AlbertModel":
        assert_close_at_real(ours.pooler_output, theirs.pooler_output, mask, what="pooler")
        return
    logits = theirs.prediction_logits if name == "AlbertForPreTraining" else theirs.logits
    assert_close_at_real(ours.logits, logits, mask, what="MLM logits")
    if name == "AlbertForPreTraining":
        assert_close_at_real(ours.sop_logits, theirs.sop_logits, mask, what="SOP logits")
        assert ours.keys()[:3] == ("loss", "prediction_logits", "sop_logits")
    np.testing.assert_allclose(float(ours.loss), theirs.loss.item(), rtol=1e-5)


@pytest.mark.parametrize("config_name", ["groups-and-inner", "odd-groups-untied"])
def test_pretraining_loss_and_gradients_match(config_name, tmp_path):
    """MLM + SOP loss and d(loss)/d(every parameter) against PyTorch autograd (a shared layer's gradient sums
    over every depth it runs at), dropout off."""
    import torch
    from flax import nnx

    config = {**CONFIGS[config_name], "hidden_dropout_prob": 0.0}
    reference = perturbed_reference("AlbertForPreTraining", config, tmp_path)
    model = minibert.from_pretrained(tmp_path)
    batch = padded_batch(config["vocab_size"], 3, 12, type_vocab_size=config.get("type_vocab_size", 2), seed=7)
    batch["input_ids"][1, 4] = config.get("pad_token_id", 0)
    extra = targets("AlbertForPreTraining", config, (3, 12), 1)

    loss, grads = nnx.jit(nnx.value_and_grad(lambda m: m(**batch, **extra).loss))(model)
    out = reference(**{k: torch.from_numpy(v) for k, v in {**batch, **extra}.items()})
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
def test_transformers_loads_minibert(model_name, tmp_path):
    """Saved by minibert, read by `transformers`: no missing or unexpected keys, the same outputs."""
    import transformers

    config = CONFIGS["odd-groups-untied"]
    model = getattr(albert, model_name)(albert.AlbertConfig(**config))
    rng = np.random.default_rng(0)
    for param in model_state_dict(model).values():
        param.set_value(rng.normal(0, 0.1, param.shape).astype(np.float32) + (param[...] == 1))
    model.eval()
    save_pretrained(model, tmp_path)
    reference, info = getattr(transformers, model_name).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    batch = padded_batch(config["vocab_size"], 2, 9, type_vocab_size=2, seed=3)
    ours, theirs = model(**batch), torch_outputs(reference.eval(), batch)
    field = "last_hidden_state" if model_name == "AlbertModel" else "logits"
    theirs_field = "prediction_logits" if model_name == "AlbertForPreTraining" else field
    assert_close_at_real(getattr(ours, field), getattr(theirs, theirs_field), batch["attention_mask"], what=field)


def test_group_count_is_checked():
    with pytest.raises(ValueError, match="num_hidden_groups 4 must be between 1 and num_hidden_layers 3"):
        albert.AlbertModel(albert.AlbertConfig(**{**CONFIGS["shared-one-group"], "num_hidden_groups": 4}))
