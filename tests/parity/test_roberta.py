"""RoBERTa parity with `transformers` at float32: positions from padding_idx + 1 on padded batches (pad tokens
inside rows too), every layer, the pooler, the MLM head tied and untied, every task head, loss and gradients,
`inputs_embeds`, bucketed host calls, checkpoints and config.json both ways, and the `minibert parity` command.
(The task heads' logits, losses and one fine-tuning step are in test_finetuning.py, with every family's.)"""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import minibert
import minibert.models.finetuning as finetuning
import minibert.models.roberta as roberta
from minibert.checkpoints.hf import from_pretrained, model_state_dict, save_pretrained
from minibert.cli import main
from tests.conftest import assert_close_at_real, assert_gradients_match, padded_batch, save_reference, torch_outputs

CONFIGS = {
    "base-like": dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                      type_vocab_size=1, max_position_embeddings=40, layer_norm_eps=1e-5),
    "odd-heads": dict(vocab_size=101, hidden_size=15, num_hidden_layers=3, num_attention_heads=3, intermediate_size=31,
                      type_vocab_size=2, hidden_act="gelu_new", max_position_embeddings=27),
    "pad3-untied": dict(vocab_size=67, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20,
                        type_vocab_size=3, hidden_act="relu", max_position_embeddings=32, pad_token_id=3,
                        bos_token_id=0, eos_token_id=2, tie_word_embeddings=False),
}
SHAPES = [(1, 5), (3, 16), (2, 23)]
MODELS = ["RobertaModel", "RobertaForMaskedLM"]
HEADS = ["RobertaForSequenceClassification", "RobertaForTokenClassification", "RobertaForQuestionAnswering",
         "RobertaForMultipleChoice"]


def roberta_batch(config: dict, batch: int, seq: int, seed: int = 0) -> dict:
    """Right-padded rows holding the pad id where attention_mask is 0 (as a tokenizer pads), and the pad id at one
    real position too: it keeps position padding_idx there, and the count resumes after it."""
    out = padded_batch(config["vocab_size"], batch, seq, type_vocab_size=config["type_vocab_size"], seed=seed)
    pad = config.get("pad_token_id", 1)
    out["input_ids"][out["attention_mask"] == 0] = pad
    if seq > 3:
        out["input_ids"][0, 2] = pad
    return out


@pytest.fixture(scope="module", params=[(m, c) for m in MODELS for c in CONFIGS], ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, tmp_path_factory):
    model_name, config_name = request.param
    path = tmp_path_factory.mktemp(f"{model_name}-{config_name}")
    reference = save_reference(model_name, "RobertaConfig", path, **CONFIGS[config_name])
    return reference, minibert.from_pretrained(path), CONFIGS[config_name], path


def test_position_ids_match_transformers():
    import torch
    from transformers.models.roberta.modeling_roberta import RobertaEmbeddings

    from minibert.nn.embeddings import offset_position_ids

    ids = np.random.default_rng(0).integers(0, 6, (4, 12))
    for pad in (0, 1, 3):
        expected = RobertaEmbeddings.create_position_ids_from_input_ids(torch.from_numpy(ids), pad).numpy()
        np.testing.assert_array_equal(np.asarray(offset_position_ids(ids, pad)), expected)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_matches_transformers(pair, shape):
    import torch

    reference, model, config, _ = pair
    batch = roberta_batch(config, *shape, seed=shape[1])
    labels = {}
    if type(model).__name__ == "RobertaForMaskedLM":
        rng = np.random.default_rng(shape[0])
        labels["labels"] = np.where(rng.random(shape) < 0.3, rng.integers(0, config["vocab_size"], shape), -100)
        labels["labels"][0, 0] = 1
    ours = model(**batch, **labels, output_hidden_states=True)
    theirs = torch_outputs(reference, batch, **{k: torch.from_numpy(v) for k, v in labels.items()})
    mask = batch["attention_mask"]
    assert len(ours.hidden_states) == len(theirs.hidden_states) == config["num_hidden_layers"] + 1
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        assert_close_at_real(a, b, mask, what=f"hidden state {i}")
    if type(model).__name__ == "RobertaModel":
        assert_close_at_real(ours.last_hidden_state, theirs.last_hidden_state, mask, what="last hidden state")
        assert_close_at_real(ours.pooler_output, theirs.pooler_output, mask, what="pooler")
    else:
        assert ours.pooler_output is None
        assert_close_at_real(ours.logits, theirs.logits, mask, what="MLM logits")
        np.testing.assert_allclose(float(ours.loss), theirs.loss.item(), rtol=1e-5)


def test_inputs_embeds_positions_run_from_pad_plus_one(pair):
    """Given embeddings there are no ids to find the padding in: positions pad + 1, pad + 2, … on every row,
    padded or not, as transformers numbers them."""
    reference, model, config, _ = pair
    batch = roberta_batch(config, 3, 11, seed=4)
    embeds = np.random.default_rng(5).normal(0, 0.5, (3, 11, config["hidden_size"])).astype(np.float32)
    del batch["input_ids"]
    ours = model(**batch, inputs_embeds=embeds, output_hidden_states=True)
    theirs = torch_outputs(reference, {**batch, "inputs_embeds": embeds})
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states, strict=True)):
        assert_close_at_real(a, b, batch["attention_mask"], what=f"hidden state {i}")


def test_bucketed_host_calls_match_unpadded(pair):
    """Host calls pad to a bucket with the pad id: those positions stay at padding_idx, the real ones are unmoved."""
    from minibert.models import host

    _, model, config, _ = pair
    batch = roberta_batch(config, 3, 13, seed=6)
    assert host.padded_length(model, 13) > 13
    bucketed = model(**batch, output_hidden_states=True)
    model.pad_to_multiple_of = None
    try:
        plain = model(**batch, output_hidden_states=True)
    finally:
        model.pad_to_multiple_of = host.DEFAULT_PAD_TO_MULTIPLE_OF
    for a, b in zip(bucketed.hidden_states, plain.hidden_states, strict=True):
        assert_close_at_real(a, b, batch["attention_mask"], atol=1e-6)


def test_too_long_an_input_names_the_offset(pair):
    _, model, config, _ = pair
    longest = config["max_position_embeddings"] - config.get("pad_token_id", 1) - 1
    model(np.full((1, longest), 5))
    with pytest.raises(ValueError, match=f"exceeds {longest}: RoBERTa's positions start at pad_token_id"):
        model(np.full((1, longest + 1), 5))


def test_mlm_loss_and_gradients_match(tmp_path):
    """MLM loss and d(loss)/d(every parameter) against PyTorch autograd, dropout off; the pad token at real
    positions (its rows of the word and position tables get no gradient from lookups: padding_idx)."""
    import torch
    from flax import nnx

    config = CONFIGS["odd-heads"]
    reference = save_reference("RobertaForMaskedLM", "RobertaConfig", tmp_path, **config)
    model = minibert.from_pretrained(tmp_path)
    batch = roberta_batch(config, 3, 12, seed=7)
    batch["input_ids"][1, 4] = 1
    rng = np.random.default_rng(1)
    labels = np.where(rng.random((3, 12)) < 0.3, rng.integers(0, config["vocab_size"], (3, 12)), -100)
    labels[0, 0] = 5

    loss, grads = nnx.jit(nnx.value_and_grad(lambda m: m(**batch, labels=labels).loss))(model)
    out = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, labels=torch.from_numpy(labels))
    out.loss.backward()
    np.testing.assert_allclose(float(loss), out.loss.item(), rtol=1e-5)
    ours = assert_gradients_match(grads, dict(reference.named_parameters(remove_duplicate=False)),
                                  model_state_dict(model))
    assert not ours["roberta.embeddings.position_embeddings.weight"][1].any()


@pytest.mark.parametrize("config_name", CONFIGS)
def test_sparse_head_gives_the_dense_loss(config_name):
    """`masked_positions`: the head on the masked positions only, the same loss as the dense head."""
    config = CONFIGS[config_name]
    model = random_model("RobertaForMaskedLM", config)
    batch = roberta_batch(config, 2, 10, seed=8)
    positions = np.array([[1, 4, 0], [2, 3, 5]])
    sparse = np.array([[7, 9, -100], [3, 4, 5]])
    dense = np.full((2, 10), -100)
    np.put_along_axis(dense, positions, np.maximum(sparse, 0), axis=1)
    dense[0, 0] = -100
    expected = model(**batch, labels=dense).loss
    np.testing.assert_allclose(float(model(**batch, labels=sparse, masked_positions=positions).loss), float(expected),
                               rtol=1e-6)


def test_hf_to_minibert_to_hf_is_byte_identical(pair, tmp_path):
    _, model, _, path = pair
    save_pretrained(model, tmp_path)
    original, ours = load_file(path / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert set(original) == set(ours)
    for key in original:
        assert original[key].dtype == ours[key].dtype and original[key].tobytes() == ours[key].tobytes(), key


def random_model(model_name: str, config: dict):
    """A minibert model with every parameter random (biases and norms included), eval mode."""
    module = roberta if model_name in MODELS else finetuning
    model = getattr(module, model_name)(roberta.RobertaConfig(**config))
    rng = np.random.default_rng(0)
    for param in model_state_dict(model).values():
        param.set_value(rng.normal(0, 0.1, param.shape).astype(np.float32) + (param[...] == 1))
    model.eval()
    return model


@pytest.mark.parametrize("model_name, config_name", [
    ("RobertaModel", "odd-heads"), ("RobertaForMaskedLM", "base-like"), ("RobertaForMaskedLM", "pad3-untied"),
    *[(h, "pad3-untied") for h in HEADS]])
def test_transformers_loads_minibert(model_name, config_name, tmp_path):
    """Saved by minibert, read by `transformers`: no missing / unexpected keys, the same tensors bit for bit (tied
    MLM decoder included), the same outputs."""
    import transformers

    config = CONFIGS[config_name]
    model = random_model(model_name, config)
    save_pretrained(model, tmp_path)
    reference, info = getattr(transformers, model_name).from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    theirs_state = reference.state_dict()
    for key, param in model_state_dict(model).items():
        assert np.asarray(param[...]).tobytes() == theirs_state[key].numpy().tobytes(), key
    if model_name == "RobertaForMaskedLM" and config.get("tie_word_embeddings", True):
        assert reference.lm_head.decoder.weight is reference.roberta.embeddings.word_embeddings.weight
        assert reference.lm_head.decoder.bias is reference.lm_head.bias
    batch = roberta_batch(config, 4, 9, seed=9)
    if model_name == "RobertaForMultipleChoice":
        batch = {k: v.reshape(2, 2, 9) for k, v in batch.items()}
    ours, theirs = model(**batch), torch_outputs(reference.eval(), batch)
    mask = batch["attention_mask"].reshape(-1, 9)
    for field in ours.keys():
        if field != "hidden_states":
            assert_close_at_real(getattr(ours, field), theirs[field], mask, what=field)


@pytest.mark.parametrize("model_name", HEADS)
def test_heads_load_from_a_masked_lm_checkpoint(model_name, tmp_path):
    """A pretrained RoBERTa (MLM head) under a task head: the encoder loaded, the head fresh (`classifier.dense` /
    `out_proj`, `qa_outputs`, the pooler), the MLM head dropped — the keys transformers reports the same way."""
    import transformers

    save_reference("RobertaForMaskedLM", "RobertaConfig", tmp_path, **CONFIGS["base-like"])
    task = {"RobertaForSequenceClassification": minibert.AutoModelForSequenceClassification,
            "RobertaForTokenClassification": minibert.AutoModelForTokenClassification,
            "RobertaForQuestionAnswering": minibert.AutoModelForQuestionAnswering,
            "RobertaForMultipleChoice": minibert.AutoModelForMultipleChoice}[model_name]
    model, info = task.from_pretrained(tmp_path, output_loading_info=True)
    assert type(model).__name__ == model_name
    _, theirs = getattr(transformers, model_name).from_pretrained(tmp_path, output_loading_info=True)
    assert set(info["missing_keys"]) == set(theirs["missing_keys"])
    assert set(info["unexpected_keys"]) == set(theirs["unexpected_keys"]) - {"lm_head.decoder.weight",
                                                                             "lm_head.decoder.bias"}


def test_head_checkpoint_loads_into_bare_encoder(pair):
    _, model, _, path = pair
    encoder = roberta.RobertaModel.from_pretrained(path)
    ours = {k: v[...] for k, v in model_state_dict(encoder).items() if not k.startswith("pooler.")}
    expected = {k: v[...] for k, v in model_state_dict(getattr(model, "roberta", model)).items()
                if not k.startswith("pooler.")}
    assert set(ours) == set(expected)
    for key in ours:
        np.testing.assert_array_equal(ours[key], expected[key], err_msg=key)


def test_tied_copies_in_a_checkpoint_are_ignored(tmp_path):
    """transformers 4 saved `lm_head.decoder.weight` / `.bias`, copies of the word embeddings and `lm_head.bias`."""
    from safetensors.numpy import save_file

    save_reference("RobertaForMaskedLM", "RobertaConfig", tmp_path, **CONFIGS["base-like"])
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["lm_head.decoder.weight"] = tensors["roberta.embeddings.word_embeddings.weight"]
    tensors["lm_head.decoder.bias"] = tensors["lm_head.bias"]
    save_file(tensors, str(tmp_path / "model.safetensors"))
    _, info = from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info


# roberta-base's config.json as transformers 4.x wrote it (the released checkpoints), shrunk
TRANSFORMERS_4 = {"architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
                  "classifier_dropout": None, "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                  "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 37, "layer_norm_eps": 1e-05,
                  "max_position_embeddings": 40, "model_type": "roberta", "num_attention_heads": 4,
                  "num_hidden_layers": 2, "pad_token_id": 1, "position_embedding_type": "absolute",
                  "torch_dtype": "float32", "transformers_version": "4.40.0", "type_vocab_size": 1, "use_cache": True,
                  "vocab_size": 99}


@pytest.mark.parametrize("dialect", ["transformers-4", "transformers-5"])
def test_config_json_both_ways(dialect, tmp_path):
    """config.json as transformers 4 wrote it (`torch_dtype`, `position_embedding_type`) and as transformers 5 does
    (`dtype`, `is_decoder`, `add_cross_attention`, `tie_word_embeddings`): read into RobertaConfig with every field
    transformers reads, and written back so that transformers reads the same config."""
    import transformers

    if dialect == "transformers-4":
        (tmp_path / "config.json").write_text(json.dumps(TRANSFORMERS_4))
    else:
        transformers.RobertaConfig(**{k: v for k, v in TRANSFORMERS_4.items() if k not in (
            "torch_dtype", "transformers_version", "position_embedding_type", "model_type")}).save_pretrained(tmp_path)
    config = minibert.AutoConfig.from_pretrained(tmp_path)
    theirs = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(config) is roberta.RobertaConfig
    fields = [f for f in roberta.RobertaConfig.__dataclass_fields__ if f not in ("extra", "architectures")]
    assert {f: getattr(config, f) for f in fields} == {f: getattr(theirs, f) for f in fields}
    (tmp_path / "again").mkdir()
    config.save(tmp_path / "again")
    again = transformers.AutoConfig.from_pretrained(tmp_path / "again")
    assert again.to_diff_dict() == theirs.to_diff_dict()


def test_defaults_are_transformers():
    import transformers

    ours, theirs = roberta.RobertaConfig(), transformers.RobertaConfig()
    for field in roberta.RobertaConfig.__dataclass_fields__:
        if field not in ("extra", "architectures"):
            assert getattr(ours, field) == getattr(theirs, field), field


@pytest.mark.parametrize("model_name, config_name", [("RobertaForMaskedLM", "odd-heads"),
                                                     ("RobertaModel", "pad3-untied")])
def test_parity_command(model_name, config_name, tmp_path, capsys):
    save_reference(model_name, "RobertaConfig", tmp_path, **CONFIGS[config_name])
    assert main(["parity", str(tmp_path)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_unsupported_configs_are_rejected():
    with pytest.raises(ValueError, match="leaves no position after pad_token_id 1"):
        roberta.RobertaModel(roberta.RobertaConfig(**{**CONFIGS["base-like"], "max_position_embeddings": 2}))
    with pytest.raises(ValueError, match="decoder"):
        roberta.RobertaConfig.from_dict({"is_decoder": True}).validate()      # RobertaForCausalLM is not built
