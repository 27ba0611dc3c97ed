"""MobileBERT parity with `transformers` at float32: every block's output, pooler, MLM and NSP logits over the
bottleneck / attention-input / stacked-FFN / norm variants; loss and gradients; checkpoints both ways; the
`minibert parity` command."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import minibert.models.mobilebert as mobilebert
from minibert.checkpoints.hf import from_pretrained, model_state_dict, save_pretrained
from minibert.cli import main
from tests.conftest import assert_close_at_real, assert_gradients_match, padded_batch, save_reference, torch_outputs

TINY = dict(vocab_size=99, hidden_size=32, embedding_size=16, intra_bottleneck_size=16, num_attention_heads=4,
            intermediate_size=24, num_hidden_layers=2, type_vocab_size=2, max_position_embeddings=32)
CONFIGS = {
    # the published setting: shared query/key bottleneck, values from the wide input, NoNorm, 4 FFNs, trigram
    "paper": dict(TINY, num_feedforward_networks=4),
    "paper-layer-norm": dict(TINY, num_feedforward_networks=4, normalization_type="layer_norm", layer_norm_eps=1e-6),
    # attention wholly inside the bottleneck; the shared projection then exists but is unused
    "bottleneck-attention": dict(TINY, num_feedforward_networks=1, use_bottleneck_attention=True,
                                 normalization_type="layer_norm"),
    "bottleneck-attention-unshared": dict(TINY, num_feedforward_networks=2, use_bottleneck_attention=True,
                                          key_query_shared_bottleneck=False),
    # queries, keys and values from the block input: needs intra_bottleneck_size == hidden_size
    "wide-attention": dict(TINY, intra_bottleneck_size=32, num_feedforward_networks=2,
                           key_query_shared_bottleneck=False, normalization_type="layer_norm", hidden_act="gelu",
                           num_attention_heads=2),
    "no-bottleneck": dict(TINY, use_bottleneck=False, trigram_input=False, classifier_activation=False,
                          tie_word_embeddings=False, num_feedforward_networks=1, type_vocab_size=3),
}
SHAPES = [(1, 5), (3, 16)]
MODELS = ["MobileBertModel", "MobileBertForMaskedLM", "MobileBertForPreTraining"]


def save_perturbed_reference(model_name, path, **config):
    """A random-init reference with every parameter moved off its init, so NoNorm/LayerNorm weights are not
    ones and biases not zeros: a mis-wired norm, eps or bias cannot hide. Saved to `path`, eval mode."""
    import torch

    reference = save_reference(model_name, "MobileBertConfig", path, **config)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.1 * torch.randn_like(p))
    reference.save_pretrained(path)
    return reference


# every variant through the full pretraining model; the bare encoder (pooler) and the MLM-only model on the
# variants where they differ (pooler without weights, untied decoder); the rest of the grid is marked slow
FAST = {("MobileBertForPreTraining", c) for c in CONFIGS} | {
    ("MobileBertModel", "paper"), ("MobileBertModel", "no-bottleneck"),
    ("MobileBertForMaskedLM", "paper-layer-norm"), ("MobileBertForMaskedLM", "no-bottleneck")}
PAIRS = [pytest.param((m, c), marks=() if (m, c) in FAST else pytest.mark.slow, id=f"{m}-{c}")
         for m in MODELS for c in CONFIGS]


@pytest.fixture(scope="module", params=PAIRS)
def pair(request, tmp_path_factory):
    model_name, config_name = request.param
    path = tmp_path_factory.mktemp(f"{model_name}-{config_name}")
    reference = save_perturbed_reference(model_name, path, **CONFIGS[config_name])
    return reference, from_pretrained(path), CONFIGS[config_name], path


def _batch(config, batch, seq, seed=0):
    return padded_batch(config["vocab_size"], batch, seq, type_vocab_size=config["type_vocab_size"], seed=seed)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_matches_transformers(pair, shape):
    reference, model, config, _ = pair
    batch = _batch(config, *shape, seed=shape[1])
    ours = model(**batch, output_hidden_states=True)
    theirs = torch_outputs(reference, batch)
    mask = batch["attention_mask"]
    assert len(ours.hidden_states) == len(theirs.hidden_states) == config["num_hidden_layers"] + 1
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        assert_close_at_real(a, b, mask, what="embeddings" if i == 0 else f"layer {i - 1}")
    name = type(model).__name__
    if name == "MobileBertModel":
        assert_close_at_real(ours.last_hidden_state, theirs.last_hidden_state, mask, what="last hidden state")
        assert_close_at_real(ours.pooler_output, theirs.pooler_output, mask, what="pooler")
    elif name == "MobileBertForMaskedLM":
        assert ours.pooler_output is None
        assert_close_at_real(ours.logits, theirs.logits, mask, what="MLM logits")
    else:
        assert_close_at_real(ours.logits, theirs.prediction_logits, mask, what="MLM logits")
        assert_close_at_real(ours.seq_relationship_logits, theirs.seq_relationship_logits, mask, what="NSP logits")


def test_hf_to_minibert_to_hf(pair, tmp_path):
    """Saved by minibert: the same tensors, byte for byte, and `transformers` loads it with no key complaints."""
    import transformers

    reference, model, config, path = pair
    save_pretrained(model, tmp_path)
    original, ours = load_file(path / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert set(original) == set(ours)
    for key in original:
        assert original[key].dtype == ours[key].dtype and original[key].tobytes() == ours[key].tobytes(), key
    assert json.loads((tmp_path / "config.json").read_text())["true_hidden_size"] == reference.config.true_hidden_size
    reloaded, info = getattr(transformers, type(model).__name__).from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    batch = _batch(config, 3, 16, seed=16)
    theirs, again = torch_outputs(reference, batch), torch_outputs(reloaded.eval(), batch)
    for field in ("last_hidden_state", "pooler_output", "logits", "prediction_logits", "seq_relationship_logits"):
        if getattr(theirs, field, None) is not None:
            np.testing.assert_array_equal(getattr(again, field).numpy(), getattr(theirs, field).numpy(), field)


@pytest.mark.parametrize("config_name", ["paper", "no-bottleneck"])
def test_minibert_to_hf_to_minibert(config_name, tmp_path):
    """A model initialised by minibert: `transformers` loads it and agrees; its save loads back unchanged."""
    import transformers
    from flax import nnx

    config = CONFIGS[config_name]
    model = mobilebert.MobileBertForPreTraining(mobilebert.MobileBertConfig(**config), rngs=nnx.Rngs(3))
    model.eval()
    save_pretrained(model, tmp_path / "ours")
    reference, info = transformers.MobileBertForPreTraining.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    batch = _batch(config, 3, 16, seed=16)
    ours, theirs = model(**batch), torch_outputs(reference.eval(), batch)
    assert_close_at_real(ours.logits, theirs.prediction_logits, batch["attention_mask"], what="MLM logits")
    assert_close_at_real(ours.seq_relationship_logits, theirs.seq_relationship_logits, batch["attention_mask"],
                         what="NSP logits")
    reference.save_pretrained(tmp_path / "theirs")
    back = model_state_dict(from_pretrained(tmp_path / "theirs"))
    for key, param in model_state_dict(model).items():
        np.testing.assert_array_equal(np.asarray(back[key][...]), np.asarray(param[...]), key)


def test_pretraining_loss_and_gradients_match(tmp_path):
    """MLM + NSP loss and d(loss)/d(every parameter) against PyTorch autograd, dropout off."""
    import torch
    from flax import nnx

    config = CONFIGS["paper"]
    reference = save_perturbed_reference("MobileBertForPreTraining", tmp_path, **config)
    model = from_pretrained(tmp_path)
    batch = _batch(config, 3, 12)
    # the pad token's embedding row gets no gradient from lookups (padding_idx), only from the tied head
    batch["input_ids"][:, -2:] = 0
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


@pytest.fixture(scope="module")
def pretraining_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("mobilebert-pretraining")
    save_perturbed_reference("MobileBertForPreTraining", path, **CONFIGS["paper"])
    return path


def test_parity_command(pretraining_dir, capsys):
    assert main(["parity", str(pretraining_dir)]) == 0
    table = capsys.readouterr().out
    for stage in ("embeddings", "layer 0", "layer 1", "logits", "seq_relationship_logits", "PASS"):
        assert stage in table


def test_old_checkpoint_keys_and_bare_encoder(pretraining_dir, tmp_path):
    """Checkpoints that also hold the position_ids buffer and the tied decoder copies load; so does the bare
    encoder from a checkpoint with heads."""
    tensors = load_file(pretraining_dir / "model.safetensors")
    tensors["mobilebert.embeddings.position_ids"] = np.arange(CONFIGS["paper"]["max_position_embeddings"])[None]
    tensors["cls.predictions.decoder.weight"] = tensors["mobilebert.embeddings.word_embeddings.weight"]
    tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"]
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((pretraining_dir / "config.json").read_text())
    batch = _batch(CONFIGS["paper"], 2, 8)
    full = from_pretrained(pretraining_dir)(**batch)
    np.testing.assert_array_equal(np.asarray(from_pretrained(tmp_path)(**batch).logits), np.asarray(full.logits))
    bare = mobilebert.MobileBertModel.from_pretrained(pretraining_dir)(**batch)
    np.testing.assert_array_equal(np.asarray(bare.last_hidden_state), np.asarray(full.last_hidden_state))


def test_config_round_trip_and_errors(pretraining_dir):
    values = json.loads((pretraining_dir / "config.json").read_text())
    config = mobilebert.MobileBertConfig.from_dict(values)
    assert config.true_hidden_size == values["true_hidden_size"] == 16 and "true_hidden_size" not in config.extra
    assert config.to_dict()["true_hidden_size"] == 16
    assert mobilebert.MobileBertConfig(hidden_size=64, use_bottleneck=False).true_hidden_size == 64
    bad = [
        (dict(normalization_type="batch_norm"), "normalization_type"),
        (dict(num_attention_heads=3), "multiple of num_attention_heads"),
        (dict(num_feedforward_networks=0), "at least 1"),
        (dict(key_query_shared_bottleneck=False), "must equal intra_bottleneck_size"),
    ]
    for fields, message in bad:
        with pytest.raises(ValueError, match=message):
            mobilebert.MobileBertConfig(**fields).validate()   # checked when a model is built
    with pytest.raises(ValueError, match="embedding_size"):
        mobilebert.MobileBertForMaskedLM(mobilebert.MobileBertConfig(**dict(TINY, embedding_size=48)))
