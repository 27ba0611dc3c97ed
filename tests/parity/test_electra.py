"""ELECTRA parity with `transformers` at float32: every layer and the generator's / discriminator's logits,
checkpoints both ways, the `minibert parity` command, and one replaced-token-detection step's losses and
gradients against PyTorch autograd."""

import numpy as np
import pytest
from safetensors.numpy import load_file

import minibert.models.electra as electra
from minibert.checkpoints.hf import from_pretrained, model_state_dict, save_pretrained
from minibert.cli import main
from minibert.rtd import RTD_WEIGHT, sample_replacements
from tests.conftest import assert_close_at_real, assert_gradients_match, padded_batch, save_reference, torch_outputs

CONFIGS = {
    "square": dict(vocab_size=99, embedding_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=37, type_vocab_size=2),
    "projected": dict(vocab_size=101, embedding_size=16, hidden_size=48, num_hidden_layers=3, num_attention_heads=3,
                      intermediate_size=31, type_vocab_size=3, hidden_act="gelu_new", max_position_embeddings=24),
    "untied": dict(vocab_size=67, embedding_size=24, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=20, type_vocab_size=4, hidden_act="relu", layer_norm_eps=1e-5,
                   tie_word_embeddings=False),
}
SHAPES = [(1, 5), (3, 16), (2, 24)]
MODELS = ["ElectraModel", "ElectraForMaskedLM", "ElectraForPreTraining"]


# The bare encoder is also inside both models with heads, so one config covers it.
PAIRS = [("ElectraModel", "projected")] + [(m, c) for m in MODELS[1:] for c in CONFIGS]


@pytest.fixture(scope="module", params=PAIRS, ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, tmp_path_factory):
    model_name, config_name = request.param
    path = tmp_path_factory.mktemp(f"{model_name}-{config_name}")
    reference = save_reference(model_name, "ElectraConfig", path, **CONFIGS[config_name])
    return reference, from_pretrained(path), CONFIGS[config_name], path


def random_labels(model_name: str, vocab_size: int, shape, seed: int) -> dict:
    """MLM labels (-100 where nothing is predicted) for the generator; 0/1 "replaced" labels for the discriminator."""
    rng = np.random.default_rng(seed)
    if model_name == "ElectraForMaskedLM":
        labels = np.where(rng.random(shape) < 0.3, rng.integers(0, vocab_size, shape), -100)
        labels[0, 0] = 1  # at least one predicted position
        return {"labels": labels}
    return {"labels": rng.integers(0, 2, shape)} if model_name == "ElectraForPreTraining" else {}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_matches_transformers(pair, shape):
    """Every hidden state and the logits at real positions; the loss (the discriminator's BCE is over
    attended tokens only) given labels."""
    import torch

    reference, model, config, _ = pair
    batch = padded_batch(config["vocab_size"], *shape, type_vocab_size=config["type_vocab_size"], seed=shape[1])
    labels = random_labels(type(model).__name__, config["vocab_size"], shape, seed=shape[0])
    ours = model(**batch, **labels, output_hidden_states=True)
    theirs = torch_outputs(reference, batch, **{k: torch.from_numpy(v) for k, v in labels.items()})
    mask = batch["attention_mask"]
    assert len(ours.hidden_states) == len(theirs.hidden_states) == config["num_hidden_layers"] + 1
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        assert_close_at_real(a, b, mask, what=f"hidden state {i}")
    if type(model).__name__ == "ElectraModel":
        assert ours.pooler_output is None
        assert_close_at_real(ours.last_hidden_state, theirs.last_hidden_state, mask, what="last hidden state")
    else:
        assert_close_at_real(ours.logits, theirs.logits, mask, what="logits")
        np.testing.assert_allclose(float(ours.loss), theirs.loss.item(), rtol=1e-6)


def test_hf_to_minibert_to_hf_is_byte_identical(pair, tmp_path):
    _, model, _, path = pair
    save_pretrained(model, tmp_path)
    original, ours = load_file(path / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert set(original) == set(ours)
    for key in original:
        assert original[key].dtype == ours[key].dtype and original[key].tobytes() == ours[key].tobytes(), key


@pytest.mark.parametrize("model_name, config_name", [
    ("ElectraModel", "projected"), ("ElectraForMaskedLM", "projected"), ("ElectraForMaskedLM", "untied"),
    ("ElectraForPreTraining", "untied")])
def test_transformers_loads_minibert(model_name, config_name, tmp_path):
    """A random minibert model (every parameter random, biases included) saved and read by `transformers`:
    no missing / unexpected keys, the same tensors bit for bit, the same outputs."""
    import transformers

    config = CONFIGS[config_name]
    model = getattr(electra, model_name)(electra.ElectraConfig(**config))
    rng = np.random.default_rng(0)
    for param in model_state_dict(model).values():
        param.set_value(rng.normal(0, 0.1, param.shape).astype(np.float32) + (param[...] == 1))
    model.eval()
    save_pretrained(model, tmp_path)
    reference, info = getattr(transformers, model_name).from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    theirs_state = reference.state_dict()
    for key, param in model_state_dict(model).items():
        assert np.asarray(param[...]).tobytes() == theirs_state[key].numpy().tobytes(), key
    if config.get("tie_word_embeddings", True) and model_name == "ElectraForMaskedLM":
        assert reference.generator_lm_head.weight is reference.electra.embeddings.word_embeddings.weight
    batch = padded_batch(config["vocab_size"], 2, 9, config["type_vocab_size"])
    ours, theirs = model(**batch), torch_outputs(reference.eval(), batch)
    field = "last_hidden_state" if model_name == "ElectraModel" else "logits"
    assert_close_at_real(getattr(ours, field), getattr(theirs, field), batch["attention_mask"], what=field)


@pytest.mark.parametrize("model_name, config_name", [("ElectraForMaskedLM", "projected"),
                                                     ("ElectraForPreTraining", "untied")])
def test_parity_command(model_name, config_name, tmp_path, capsys):
    save_reference(model_name, "ElectraConfig", tmp_path, **CONFIGS[config_name])
    assert main(["parity", str(tmp_path)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_head_checkpoint_loads_into_bare_encoder(pair):
    _, model, _, path = pair
    encoder = electra.ElectraModel.from_pretrained(path)
    ours = {k: v[...] for k, v in model_state_dict(encoder).items()}
    expected = {k: v[...] for k, v in model_state_dict(model.electra if hasattr(model, "electra") else model).items()}
    assert set(ours) == set(expected)
    for key in ours:
        np.testing.assert_array_equal(ours[key], expected[key], err_msg=key)


def test_tied_copy_of_the_embeddings_in_a_checkpoint_is_ignored(tmp_path):
    """Older generator checkpoints also store `generator_lm_head.weight`, a copy of the tied word embeddings."""
    from safetensors.numpy import save_file

    save_reference("ElectraForMaskedLM", "ElectraConfig", tmp_path, **CONFIGS["projected"])
    expected = {k: np.asarray(v[...]) for k, v in model_state_dict(from_pretrained(tmp_path)).items()}
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["generator_lm_head.weight"] = tensors["electra.embeddings.word_embeddings.weight"]
    save_file(tensors, str(tmp_path / "model.safetensors"))
    loaded = model_state_dict(from_pretrained(tmp_path))
    assert set(loaded) == set(expected)
    for key, param in loaded.items():
        np.testing.assert_array_equal(param[...], expected[key], err_msg=key)


def test_unsupported_configs_are_rejected():
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        electra.ElectraConfig(hidden_size=30, num_attention_heads=4).validate()   # checked when a model is built
    with pytest.raises(ValueError, match="relative_key"):
        electra.ElectraConfig.from_dict({"position_embedding_type": "relative_key"}).validate()
    with pytest.raises(ValueError, match="decoder"):
        electra.ElectraConfig.from_dict({"is_decoder": True}).validate()


GENERATOR = dict(vocab_size=67, embedding_size=24, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=20, type_vocab_size=2, max_position_embeddings=32)
DISCRIMINATOR = dict(GENERATOR, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
MASK_ID = 4


@pytest.mark.slow
def test_rtd_step_loss_and_gradients_match(tmp_path):
    """total = MLM + 50 · RTD and d(total)/d(every parameter of both models), embeddings shared, dropout off.

    The replacements are sampled in JAX and the same corrupted ids are fed to the PyTorch discriminator.
    The pad token occurs at real positions: its row gets no gradient from lookups (`padding_idx`) on both sides."""
    import jax
    import torch
    import transformers
    from flax import nnx

    torch.manual_seed(0)
    generator = transformers.ElectraForMaskedLM(transformers.ElectraConfig(**GENERATOR)).eval()
    discriminator = transformers.ElectraForPreTraining(transformers.ElectraConfig(**DISCRIMINATOR)).eval()
    discriminator.electra.embeddings = generator.electra.embeddings           # one set of embeddings (§3.2)
    generator.save_pretrained(tmp_path / "generator")
    discriminator.save_pretrained(tmp_path / "discriminator")
    pretrainer = electra.ElectraPretrainer(from_pretrained(tmp_path / "generator"),
                                           from_pretrained(tmp_path / "discriminator"))

    batch = padded_batch(GENERATOR["vocab_size"], 3, 12, type_vocab_size=GENERATOR["type_vocab_size"], seed=5)
    batch["input_ids"][0, 2:4] = GENERATOR.get("pad_token_id", 0)
    rng = np.random.default_rng(1)
    masked = (rng.random((3, 12)) < 0.3) & (batch["attention_mask"] == 1)
    masked[:, 1] = True
    labels = np.where(masked, batch["input_ids"], -100)
    input_ids = np.where(masked, MASK_ID, batch["input_ids"])
    mask, types, key = batch["attention_mask"], batch["token_type_ids"], jax.random.key(7)

    def loss_fn(p):
        losses = p(input_ids, mask, types, labels=labels, key=key)
        return losses.total, losses

    (total, losses), grads = nnx.jit(nnx.value_and_grad(loss_fn, has_aux=True))(pretrainer)
    generator_logits = pretrainer.generator(input_ids, mask, types).logits
    corrupted, replaced = jax.jit(sample_replacements)(generator_logits, input_ids, labels, key)
    assert np.asarray(replaced).sum() > 0

    t = lambda a: torch.from_numpy(np.asarray(a, np.int64))
    mlm = generator(input_ids=t(input_ids), attention_mask=t(mask), token_type_ids=t(types), labels=t(labels)).loss
    rtd = discriminator(input_ids=t(corrupted), attention_mask=t(mask), token_type_ids=t(types),
                        labels=t(replaced)).loss
    (mlm + RTD_WEIGHT * rtd).backward()
    np.testing.assert_allclose(float(losses.mlm), mlm.item(), rtol=1e-5)
    np.testing.assert_allclose(float(losses.rtd), rtd.item(), rtol=1e-5)
    np.testing.assert_allclose(float(total), (mlm + RTD_WEIGHT * rtd).item(), rtol=1e-5)

    theirs = {f"generator.{k}": v for k, v in generator.named_parameters()}
    theirs.update({f"discriminator.{k}": v for k, v in discriminator.named_parameters()})
    ours = assert_gradients_match(grads, theirs, model_state_dict(pretrainer))
    assert not any(k.startswith("generator.electra.embeddings.") for k in ours)  # shared: listed once
