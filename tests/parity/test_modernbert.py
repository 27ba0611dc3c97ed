"""ModernBERT parity with `transformers` at float32: every layer's hidden state and the MLM logits at real
positions, against both the eager and the SDPA reference, on sequences longer than the local window; both
`config.json` dialects; checkpoints both ways; the `minibert parity` command; unpadded == padded."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import minibert.models.modernbert as modernbert
from minibert.checkpoints.hf import from_pretrained, save_pretrained
from minibert.cli import main
from minibert.nn.attention import set_attention_implementation
from minibert.nn.packing import set_token_capacity
from tests.conftest import assert_close_at_real, assert_gradients_match, padded_batch, save_reference, torch_outputs

TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)
CONFIGS = {
    # layers 0 and 3 global; window ±4 (local_attention 8) on sequences of 24–40 tokens
    "every3": dict(vocab_size=99, hidden_size=32, intermediate_size=40, num_hidden_layers=4, num_attention_heads=4,
                   local_attention=8, global_attn_every_n_layers=3, **TOKENS),
    # layers 0 and 2 global; window ±5; every bias switched on, untied decoder, other activations and eps
    "every2-biases": dict(vocab_size=101, hidden_size=48, intermediate_size=64, num_hidden_layers=3,
                          num_attention_heads=3, local_attention=10, global_attn_every_n_layers=2,
                          attention_bias=True, mlp_bias=True, norm_bias=True, classifier_bias=True,
                          decoder_bias=True, tie_word_embeddings=False, hidden_activation="gelu_new",
                          classifier_activation="silu", norm_eps=1e-6, **TOKENS),
}
SHAPES = [(1, 24), (3, 33), (2, 40)]
MODELS = ["ModernBertModel", "ModernBertForMaskedLM"]
ATTENTION = ["eager", "sdpa"]


def reference(model_name: str, path, attn_implementation: str):
    import transformers

    return getattr(transformers, model_name).from_pretrained(path, attn_implementation=attn_implementation).eval()


@pytest.fixture(scope="module", params=[(m, c) for m in MODELS for c in CONFIGS], ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, tmp_path_factory):
    model_name, config_name = request.param
    path = tmp_path_factory.mktemp(f"{model_name}-{config_name}")
    save_reference(model_name, "ModernBertConfig", path, **CONFIGS[config_name])
    references = {impl: reference(model_name, path, impl) for impl in ATTENTION}
    return references, from_pretrained(path), CONFIGS[config_name], path


@pytest.fixture(scope="module", params=list(CONFIGS))
def mlm(request, tmp_path_factory):
    """The MLM model of each config (its encoder is `ModernBertModel`): for minibert-only behaviours."""
    path = tmp_path_factory.mktemp(f"mlm-{request.param}")
    save_reference("ModernBertForMaskedLM", "ModernBertConfig", path, **CONFIGS[request.param])
    return reference("ModernBertForMaskedLM", path, "sdpa"), from_pretrained(path), CONFIGS[request.param], path


def assert_matches(ours, theirs, mask, num_layers):
    assert len(ours.hidden_states) == len(theirs.hidden_states) == num_layers + 1
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        assert_close_at_real(a, b, mask, what=f"hidden state {i}")
    if getattr(theirs, "last_hidden_state", None) is not None:
        assert_close_at_real(ours.last_hidden_state, theirs.last_hidden_state, mask, what="last hidden state")
    if getattr(theirs, "logits", None) is not None:
        assert_close_at_real(ours.logits, theirs.logits, mask, what="MLM logits")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_matches_transformers(pair, shape):
    references, model, config, _ = pair
    batch = padded_batch(config["vocab_size"], *shape, seed=shape[1])
    ours = model(**batch, output_hidden_states=True)
    for impl, ref in references.items():
        assert_matches(ours, torch_outputs(ref, batch), batch["attention_mask"], config["num_hidden_layers"])


@pytest.mark.parametrize("mlm", ["every3"], indirect=True)
def test_window_is_local_attention_over_two_each_side_inclusive(mlm):
    """Query i sees keys j with |i − j| ≤ local_attention // 2 (as transformers' bidirectional sliding-window mask):
    a window one token narrower or wider each side no longer matches the reference."""
    import dataclasses

    from minibert.checkpoints.hf import load_state_dict, read_state_dict

    ref, model, config, path = mlm
    batch = padded_batch(config["vocab_size"], *SHAPES[-1], seed=7)
    theirs = torch_outputs(ref, batch)
    for local_attention in (config["local_attention"] - 2, config["local_attention"] + 2):
        other = type(model)(dataclasses.replace(model.config, local_attention=local_attention))
        load_state_dict(other, read_state_dict(path))
        other.eval()
        diff = np.abs(np.asarray(other(**batch).logits) - theirs.logits.numpy())[batch["attention_mask"] > 0]
        assert diff.max() > 1e-4, local_attention


@pytest.mark.parametrize("mlm", ["every3"], indirect=True)
def test_masked_lm_loss_matches(mlm):
    import torch

    ref, model, config, _ = mlm
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=3)
    rng = np.random.default_rng(3)
    labels = np.where((rng.random(SHAPES[1]) < 0.3) & (batch["attention_mask"] > 0),
                      rng.integers(0, config["vocab_size"], SHAPES[1]), -100)
    labels[0, 0] = 5
    theirs = torch_outputs(ref, batch, labels=torch.from_numpy(labels))
    np.testing.assert_allclose(float(model(**batch, labels=labels).loss), theirs.loss.item(), rtol=1e-6)


@pytest.mark.parametrize("mlm", ["every3"], indirect=True)
def test_gradients_match(mlm):
    """d(MLM loss)/d(every parameter) against PyTorch autograd (the tied embedding gets both paths' gradient).
    The padding token appears at real positions: its row gets no gradient from lookups (`padding_idx`)."""
    import torch
    from flax import nnx

    ref, model, config, _ = mlm
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=6)
    batch["input_ids"] = np.maximum(batch["input_ids"], 3)
    batch["input_ids"][0, :2] = config.get("pad_token_id", 0)
    rng = np.random.default_rng(6)
    labels = np.where((rng.random(SHAPES[1]) < 0.3) & (batch["attention_mask"] > 0),
                      rng.integers(0, config["vocab_size"], SHAPES[1]), -100)
    loss, grads = nnx.jit(nnx.value_and_grad(lambda m: m(**batch, labels=labels).loss))(model)
    ref.zero_grad()
    ref(**{k: torch.from_numpy(v) for k, v in batch.items()}, labels=torch.from_numpy(labels)).loss.backward()
    theirs = dict(ref.named_parameters())
    # decoder.weight is tied: the same tensor as the token embeddings
    assert_gradients_match(grads, theirs, set(theirs) - {"decoder.weight"})


@pytest.mark.parametrize("mlm", ["every2-biases"], indirect=True)
def test_fused_attention_matches(mlm):
    ref, _, config, path = mlm
    fused = from_pretrained(path)
    set_attention_implementation(fused, "fused")
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=1)
    assert_matches(fused(**batch, output_hidden_states=True), torch_outputs(ref, batch), batch["attention_mask"],
                   config["num_hidden_layers"])


# ---- unpadding and packed rows ---------------------------------------------------------------------------------


def unpadded(path, capacity=None):
    model = from_pretrained(path)
    (model if isinstance(model, modernbert.ModernBertModel) else model.model).unpad = True
    set_token_capacity(model, capacity)
    return model


def test_unpadded_equals_padded(mlm):
    """The unpadded encoder (the real tokens in one row of just enough slots) gives the padded outputs at real
    tokens, zeros at padding; a batch with more real tokens than the capacity is refused."""
    _, model, config, path = mlm
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=2)  # rows of 33, 22 and 11 real tokens
    real = batch["attention_mask"] > 0
    padded = model(**batch, output_hidden_states=True)
    packed_model = unpadded(path, capacity=int(real.sum()))  # 66 slots instead of 99
    packed = packed_model(**batch, output_hidden_states=True)
    for a, b in [*zip(padded.hidden_states, packed.hidden_states), (padded.logits, packed.logits)]:
        np.testing.assert_allclose(np.asarray(b)[real], np.asarray(a)[real], atol=1e-6)
        assert not np.asarray(b)[~real].any()
    with pytest.raises(ValueError, match="token capacity"):
        packed_model(np.ones(SHAPES[1], int))


def test_unpadded_takes_inputs_embeds_and_returns_attentions(mlm):
    """Unpadded, `inputs_embeds` are packed like ids, and the attention maps (computed on the re-padded rows) are
    the padded model's from every real query, with padded keys at probability 0."""
    _, model, config, path = mlm
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=3)
    batch["inputs_embeds"] = np.random.default_rng(4).normal(0, 0.5, (*SHAPES[1], config["hidden_size"]))
    del batch["input_ids"]
    real = batch["attention_mask"] > 0
    padded = model(**batch, output_attentions=True)
    packed = unpadded(path, capacity=int(real.sum()))(**batch, output_attentions=True)
    np.testing.assert_allclose(np.asarray(packed.logits)[real], np.asarray(padded.logits)[real], atol=1e-5)
    for a, b in zip(padded.attentions, packed.attentions, strict=True):
        a, b = np.asarray(a).transpose(0, 2, 1, 3)[real], np.asarray(b).transpose(0, 2, 1, 3)[real]  # real queries
        np.testing.assert_allclose(b, a, atol=1e-6)
    assert not np.asarray(packed.attentions[0]).transpose(0, 3, 1, 2)[~real].any()


def holed_batch(vocab_size: int) -> dict:
    """(3, 33), a 0/1 mask with holes: `1 1 0 1 1 …` (holes inside the sliding window too), a left-padded row, and
    a holed right-padded row."""
    batch = padded_batch(vocab_size, *SHAPES[1], seed=13)
    mask = np.ones(SHAPES[1], np.int64)
    mask[0, [2, 9, 10, 20]] = 0
    mask[1, :8] = 0
    mask[2, [2, 5]] = 0
    mask[2, 25:] = 0
    batch["attention_mask"] = mask
    return batch


@pytest.fixture(scope="module", params=[(m, c) for m in MODELS for c in CONFIGS], ids=lambda p: f"{p[0]}-{p[1]}")
def sharp_pair(request, tmp_path_factory):
    """As `pair`, with weights at std 0.1 instead of 0.02: attention is sharp enough that rotary positions off by
    a few tokens (what a hole used to do) move the outputs by ~1e-2 instead of ~1e-5."""
    model_name, config_name = request.param
    path = tmp_path_factory.mktemp(f"sharp-{model_name}-{config_name}")
    config = {**CONFIGS[config_name], "initializer_range": 0.1}
    save_reference(model_name, "ModernBertConfig", path, **config)
    return {impl: reference(model_name, path, impl) for impl in ATTENTION}, from_pretrained(path), config, path


def test_holed_mask_matches_transformers_padded_and_unpadded(sharp_pair):
    """A mask value says only whether a token is visible: with holes and left padding, every hidden state and the
    logits at visible tokens match transformers (rotary positions 0 … seq−1, holes included) on the padded and on
    the unpadded path, and the two paths agree."""
    references, model, config, path = sharp_pair
    batch = holed_batch(config["vocab_size"])
    mask = batch["attention_mask"]
    padded = model(**batch, output_hidden_states=True)
    packed = unpadded(path, capacity=int(mask.sum()))(**batch, output_hidden_states=True)
    for impl, ref in references.items():
        theirs = torch_outputs(ref, batch)
        assert_matches(padded, theirs, mask, config["num_hidden_layers"])
        assert_matches(packed, theirs, mask, config["num_hidden_layers"])
    for a, b in zip(padded.hidden_states, packed.hidden_states):
        np.testing.assert_allclose(np.asarray(b)[mask > 0], np.asarray(a)[mask > 0], atol=1e-5)
    assert not np.asarray(packed.last_hidden_state)[mask == 0].any()


@pytest.mark.parametrize("mlm", ["every3"], indirect=True)
@pytest.mark.parametrize("unpad", [False, True], ids=["padded", "unpadded"])
def test_position_ids_match_transformers(mlm, unpad):
    """Explicit `position_ids` (offset, repeated, restarted) rotate as transformers' `position_ids` do."""
    import torch

    ref, model, config, path = mlm
    batch = holed_batch(config["vocab_size"])
    seq = SHAPES[1][1]
    positions = np.stack([np.arange(seq) + 5, np.arange(seq) // 2, np.concatenate([np.arange(12), np.arange(seq - 12)])])
    ours = (unpadded(path) if unpad else model)(**batch, position_ids=positions, output_hidden_states=True)
    assert_matches(ours, torch_outputs(ref, batch, position_ids=torch.from_numpy(positions)), batch["attention_mask"],
                   config["num_hidden_layers"])


@pytest.mark.parametrize("unpad", [False, True], ids=["padded", "unpadded"])
def test_packed_documents_equal_separate_rows(mlm, unpad):
    """Two documents packed in one row (`segment_ids` 1, 2; the mask is 0/1) give what each gives alone:
    attention stays in the document and rotary positions restart at 0 — also inside the sliding window."""
    _, model, config, path = mlm
    rng = np.random.default_rng(4)
    a, b = rng.integers(3, config["vocab_size"], 13), rng.integers(3, config["vocab_size"], 10)  # > the window
    packed_model = unpadded(path) if unpad else model
    packed = packed_model(np.concatenate([a, b, [0]])[None], attention_mask=np.array([[1] * 23 + [0]]),
                          segment_ids=np.array([[1] * 13 + [2] * 10 + [0]]), output_hidden_states=True)  # (1, 24)
    alone = model(np.stack([np.pad(a, (0, 27)), np.pad(b, (0, 30))]),
                  attention_mask=np.array([[1] * 13 + [0] * 27, [1] * 10 + [0] * 30]), output_hidden_states=True)
    for p, s in [*zip(packed.hidden_states, alone.hidden_states), (packed.logits, alone.logits)]:
        p, s = np.asarray(p)[0], np.asarray(s)
        np.testing.assert_allclose(p[:13], s[0, :13], atol=1e-5)
        np.testing.assert_allclose(p[13:23], s[1, :10], atol=1e-5)


def test_batch_fields_include_packing_inputs():
    """ModernBERT's encoder and MLM model take segment_ids and position_ids (so `model_inputs` passes them);
    BERT's do not."""
    from minibert.models.bert import BertForMaskedLM, BertModel

    for model_class in (modernbert.ModernBertModel, modernbert.ModernBertForMaskedLM):
        assert {"segment_ids", "position_ids"} <= set(model_class.batch_fields()), model_class
    for model_class in (BertModel, BertForMaskedLM):
        assert not {"segment_ids", "position_ids"} & set(model_class.batch_fields()), model_class


# ---- config.json dialects ----------------------------------------------------------------------------------------


def test_reads_the_transformers5_dialect(pair):
    """transformers 5 writes `layer_types` and `rope_parameters`; minibert reads them and writes them back."""
    _, model, config, path = pair
    written = json.loads((path / "config.json").read_text())
    assert "layer_types" in written and "rope_parameters" in written
    every = config["global_attn_every_n_layers"]
    assert model.config.layer_types == written["layer_types"] == [
        "sliding_attention" if i % every else "full_attention" for i in range(config["num_hidden_layers"])]
    assert model.config.rope_parameters == written["rope_parameters"]
    assert {layer.attn.rope_theta for layer in (model.layers if hasattr(model, "layers") else model.model.layers)} \
        == {160_000.0, 10_000.0}


HUB_STYLE_KEYS = dict(  # keys a transformers 4.x config.json carries and transformers 5 no longer writes
    global_attn_every_n_layers=2, global_rope_theta=40_000.0, local_rope_theta=500.0,
    position_embedding_type="absolute",
    reference_compile=None, repad_logits_with_grad=False, gradient_checkpointing=False, classifier_pooling="mean",
    torch_dtype="float32", transformers_version="4.48.0")


def test_reads_the_transformers4_dialect(tmp_path):
    """A hand-written hub-style config.json (no `layer_types`, no `rope_parameters`, its own thetas and
    period): transformers 5 and minibert read it alike and agree on the outputs."""
    import transformers

    config = {k: v for k, v in CONFIGS["every3"].items() if k != "global_attn_every_n_layers"}
    save_reference("ModernBertForMaskedLM", "ModernBertConfig", tmp_path, **config)
    values = json.loads((tmp_path / "config.json").read_text())
    for key in ("layer_types", "rope_parameters", "dtype"):
        values.pop(key)
    values.update(HUB_STYLE_KEYS)
    (tmp_path / "config.json").write_text(json.dumps(values, indent=2))

    ref = reference("ModernBertForMaskedLM", tmp_path, "eager")
    model = from_pretrained(tmp_path)
    expected_types = ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]
    assert ref.config.layer_types == model.config.layer_types == expected_types
    assert model.config.rope_parameters == {"full_attention": {"rope_type": "default", "rope_theta": 40_000.0},
                                            "sliding_attention": {"rope_type": "default", "rope_theta": 500.0}}
    assert {k: v["rope_theta"] for k, v in ref.config.rope_parameters.items()} == \
        {k: v["rope_theta"] for k, v in model.config.rope_parameters.items()}
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=5)
    assert_matches(model(**batch, output_hidden_states=True), torch_outputs(ref, batch), batch["attention_mask"], 4)

    # saved back: the transformers 5 dialect, the hub keys kept; transformers reads the same model again
    save_pretrained(model, tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["layer_types"] == expected_types and saved["global_rope_theta"] == 40_000.0
    again = transformers.ModernBertForMaskedLM.from_pretrained(tmp_path / "saved", attn_implementation="eager")
    assert again.config.layer_types == expected_types
    assert again.config.rope_parameters["sliding_attention"]["rope_theta"] == 500.0


@pytest.mark.parametrize("bad, message", [
    (dict(layer_types=["full_attention"]), "layer_types"),
    (dict(layer_types=["full_attention", "chunked", "full_attention"]), "layer_types"),
    (dict(rope_parameters={"full_attention": {"rope_type": "yarn", "rope_theta": 1.0}}), "rope_type"),
    (dict(rope_parameters={"rope_type": "default", "rope_theta": 1.0}), "keyed by layer type"),
    (dict(rope_scaling={"type": "linear", "factor": 2.0}), "rope_scaling"),
    (dict(hidden_size=36, num_attention_heads=4), "even head size"),
    (dict(hidden_size=30, num_attention_heads=4), "multiple"),
    (dict(pad_token_id=50283), "pad_token_id"),
])
def test_bad_configs_are_clear_errors(bad, message):
    values = {**dict(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, pad_token_id=0), **bad}
    with pytest.raises(ValueError, match=message):
        modernbert.ModernBertConfig.from_dict(values).validate()   # (the shape checks: when a model is built)


def test_token_type_ids_are_refused(pair):
    _, model, config, _ = pair
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=0)
    model(**batch, token_type_ids=np.zeros(SHAPES[1], int), output_hidden_states=True)  # zeros: fine
    with pytest.raises(ValueError, match="no token types"):
        model(**batch, token_type_ids=np.ones(SHAPES[1], int))


# ---- checkpoints both ways and the parity command ---------------------------------------------------------------


def test_hf_to_minibert_to_hf(pair, tmp_path):
    """minibert's save: byte-identical tensors, and transformers loads it with no missing or unexpected keys."""
    import transformers

    references, model, config, path = pair
    save_pretrained(model, tmp_path)
    original, ours = load_file(path / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert set(original) == set(ours)
    for key in original:
        assert original[key].dtype == ours[key].dtype and original[key].tobytes() == ours[key].tobytes(), key
    reloaded, info = getattr(transformers, type(model).__name__).from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=9)
    assert_matches(model(**batch, output_hidden_states=True), torch_outputs(reloaded.eval(), batch),
                   batch["attention_mask"], config["num_hidden_layers"])


@pytest.mark.parametrize("model_name", MODELS)
def test_minibert_to_transformers(model_name, tmp_path):
    """A randomly initialised minibert model, saved: transformers loads every weight and computes the same."""
    import transformers

    config = CONFIGS["every2-biases"]
    model = getattr(modernbert, model_name)(modernbert.ModernBertConfig.from_dict(config))
    model.eval()
    save_pretrained(model, tmp_path)
    ref, info = getattr(transformers, model_name).from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=11)
    assert_matches(model(**batch, output_hidden_states=True), torch_outputs(ref.eval(), batch),
                   batch["attention_mask"], config["num_hidden_layers"])


def test_encoder_loads_from_masked_lm_checkpoint(tmp_path):
    """A bare ModernBertModel reads the `model.` weights of an MLM checkpoint, as transformers does."""
    config = CONFIGS["every3"]
    save_reference("ModernBertForMaskedLM", "ModernBertConfig", tmp_path, **config)
    encoder = modernbert.ModernBertModel.from_pretrained(tmp_path)
    batch = padded_batch(config["vocab_size"], *SHAPES[1], seed=12)
    assert_matches(encoder(**batch, output_hidden_states=True),
                   torch_outputs(reference("ModernBertModel", tmp_path, "sdpa"), batch), batch["attention_mask"],
                   config["num_hidden_layers"])


def test_parity_command(pair, capsys):
    _, _, _, path = pair
    assert main(["parity", str(path), "--batch-size", str(SHAPES[1][0]), "--seq-len", str(SHAPES[1][1])]) == 0
    assert "PASS" in capsys.readouterr().out
