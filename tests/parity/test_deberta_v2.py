"""DeBERTa-v2/v3 parity with `transformers` at float32, on odd configs with weights perturbed off their init: every
hidden state, the attention maps and the MLM logits (both head layouts) on padded batches with token types; loss
and every parameter's gradient; checkpoints and config.json both ways; the head layout the checkpoint holds; the
`minibert parity` command."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import minibert
import minibert.models.deberta_v2 as deberta
from minibert.checkpoints.hf import from_pretrained, model_state_dict, save_pretrained
from minibert.cli import main
from tests.conftest import (assert_close_at_real, assert_gradients_match, padded_batch, save_perturbed_reference,
                            torch_outputs)

SMALL = dict(vocab_size=53, hidden_size=15, num_hidden_layers=2, num_attention_heads=3, intermediate_size=23,
             max_position_embeddings=24)                                                    # head size 5
CONFIGS = {
    # span 4 < sequence 17 (clamped both ends); own pos_key_proj / pos_query_proj; absolute positions too
    "span4-p2c|c2p": dict(SMALL, relative_attention=True, pos_att_type=["p2c", "c2p"], max_relative_positions=4,
                          type_vocab_size=2),
    # v3: log buckets (6) up to 10, shared keys, LayerNorm'd P, no absolute positions, no token types, lm_predictions
    "v3-buckets-shared": dict(SMALL, relative_attention=True, pos_att_type=["c2p", "p2c"], position_buckets=6,
                              max_relative_positions=10, share_att_key=True, norm_rel_ebd="layer_norm",
                              position_biased_input=False, type_vocab_size=0, legacy=False, hidden_act="gelu_new"),
    # embedding_size ≠ hidden (embed_proj, an E-wide legacy head, untied), c2p alone in buckets, the ConvLayer
    "embproj-c2p-conv": dict(SMALL, hidden_size=20, num_attention_heads=4, embedding_size=12, relative_attention=True,
                             pos_att_type=["c2p"], position_buckets=4, max_relative_positions=8, type_vocab_size=3,
                             conv_kernel_size=3, conv_groups=5, tie_word_embeddings=False, pad_token_id=2),
    # p2c alone, no buckets, span = max_position_embeddings; then no relative attention at all (the v2 default)
    "p2c-shared": dict(SMALL, relative_attention=True, pos_att_type=["p2c"], share_att_key=True, type_vocab_size=2),
    "not-relative": dict(SMALL, pos_att_type=["c2p", "p2c"], type_vocab_size=2, layer_norm_eps=1e-5),
}
# the masked LM holds the whole encoder: every config there, the bare encoder once
PAIRS = [("DebertaV2ForMaskedLM", c) for c in CONFIGS] + [("DebertaV2Model", "embproj-c2p-conv")]
SHAPES = [(3, 17), (3, 5)]     # one bucket (max_position_embeddings 24): one compile per model


def perturbed_reference(model_name: str, path, config: dict):
    return save_perturbed_reference(model_name, "DebertaV2Config", path, **config)


def deberta_batch(config: dict, batch: int, seq: int, seed: int = 0) -> dict:
    out = padded_batch(config["vocab_size"], batch, seq, type_vocab_size=config["type_vocab_size"], seed=seed)
    out["input_ids"][out["attention_mask"] == 0] = config.get("pad_token_id", 0)
    return out


def mlm_labels(config: dict, shape, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(shape) < 0.4, rng.integers(0, config["vocab_size"], shape), -100)
    labels[0, 0] = 3
    return labels


@pytest.fixture(scope="module")
def load(tmp_path_factory):
    """load(model name, config name) → (transformers model, minibert model, config, directory), built once."""
    cache = {}

    def load(model_name: str, config_name: str):
        if (model_name, config_name) not in cache:
            path = tmp_path_factory.mktemp(f"{model_name}-{config_name}")
            reference = perturbed_reference(model_name, path, CONFIGS[config_name])
            model, info = from_pretrained(path, output_loading_info=True)
            assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
            cache[model_name, config_name] = reference, model, CONFIGS[config_name], path
        return cache[model_name, config_name]

    return load


@pytest.fixture(scope="module", params=PAIRS, ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, load):
    return load(*request.param)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_forward_matches_transformers(pair, shape):
    """Host calls (bucketed: padded to max_position_embeddings 24 here): every hidden state and the MLM logits at
    real positions. (The loss is compared with the gradients.)"""
    reference, model, config, _ = pair
    batch = deberta_batch(config, *shape, seed=shape[1])
    ours, theirs = model(**batch, output_hidden_states=True), torch_outputs(reference, batch)
    mask = batch["attention_mask"]
    assert len(ours.hidden_states) == len(theirs.hidden_states) == config["num_hidden_layers"] + 1
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        assert_close_at_real(a, b, mask, what=f"hidden state {i}")
    if "ForMaskedLM" in type(model).__name__:
        assert_close_at_real(ours.logits, theirs.logits, mask, what="MLM logits")


@pytest.mark.parametrize("config_name", ["span4-p2c|c2p", "v3-buckets-shared"])
def test_attention_maps_match_transformers(config_name, load):
    """output_attentions: each layer's probabilities (batch, heads, seq, seq) between real tokens."""
    reference, model, config, _ = load("DebertaV2ForMaskedLM", config_name)
    batch = deberta_batch(config, 3, 11, seed=2)
    ours, theirs = model(**batch, output_attentions=True), torch_outputs(reference, batch, output_attentions=True)
    real = batch["attention_mask"].astype(bool)
    real = real[:, None, :, None] & real[:, None, None, :]
    for i, (a, b) in enumerate(zip(ours.attentions, theirs.attentions, strict=True)):
        assert np.abs(np.asarray(a) - b.numpy())[np.broadcast_to(real, a.shape)].max() <= 1e-6, f"attention {i}"


def test_inputs_embeds_match_transformers(load):
    """Embeddings given instead of ids, (batch, seq, embedding_size): E-wide, through embed_proj."""
    reference, model, config, _ = load("DebertaV2Model", "embproj-c2p-conv")
    batch = deberta_batch(config, 2, 7, seed=5)
    del batch["input_ids"]
    embeds = np.random.default_rng(6).normal(0, 0.5, (2, 7, config["embedding_size"])).astype(np.float32)
    ours = model(**batch, inputs_embeds=embeds, output_hidden_states=True)
    theirs = torch_outputs(reference, {**batch, "inputs_embeds": embeds})
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states, strict=True)):
        assert_close_at_real(a, b, batch["attention_mask"], what=f"hidden state {i}")


def shift_invariant(name: str, config: dict) -> bool:
    """Whether a bias only ever adds one amount to a whole row of scores, which softmax ignores: its gradient is
    exactly 0. pos_key_proj's (c2p: Q_i·(K_r + b) adds Q_i·b to row i), and key_proj's unless p2c reads the keys
    ((K_j + b)·Q_r[idx(i, j)] varies with j)."""
    p2c = config.get("relative_attention") and "p2c" in config["pos_att_type"]
    return name.endswith("self.pos_key_proj.bias") or (name.endswith("self.key_proj.bias") and not p2c)


@pytest.mark.parametrize("config_name", ["v3-buckets-shared", "embproj-c2p-conv"])
def test_mlm_loss_and_gradients_match(config_name, tmp_path):
    """d(loss)/d(every parameter) against PyTorch autograd, dropout off: within 1e-5 of each tensor's largest, and
    ~0 on both sides where the true gradient is 0. The untied legacy head's `bias` is kept for the checkpoint but
    unused, as in transformers (no gradient there)."""
    import torch
    from flax import nnx

    config = CONFIGS[config_name]
    reference = perturbed_reference("DebertaV2ForMaskedLM", tmp_path, config)
    model = minibert.from_pretrained(tmp_path)
    batch = deberta_batch(config, 3, 13, seed=7)
    labels = mlm_labels(config, (3, 13), seed=1)
    loss, grads = nnx.jit(nnx.value_and_grad(lambda m: m(**batch, labels=labels).loss))(model)
    out = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, labels=torch.from_numpy(labels))
    out.loss.backward()
    np.testing.assert_allclose(float(loss), out.loss.item(), rtol=1e-5)
    parameters = dict(reference.named_parameters(remove_duplicate=False))
    unused = {k for k, p in parameters.items() if p.grad is None}
    assert unused == ({"cls.predictions.bias"} if config.get("tie_word_embeddings") is False else set())
    ours = {".".join(map(str, path)): (path, g) for path, g in nnx.to_flat_state(grads)}
    zero = {k for k in ours if shift_invariant(k, config)}
    largest = max(np.abs(p.grad.numpy()).max() for k, p in parameters.items() if k not in unused)
    for key in zero:
        assert max(np.abs(ours[key][1][...]).max(), np.abs(parameters[key].grad.numpy()).max()) <= 1e-7 * largest, key
    kept = nnx.from_flat_state([ours[k] for k in ours if k not in zero | unused])
    assert_gradients_match(kept, parameters, set(ours) - zero - unused)


def test_hf_to_minibert_to_hf_is_byte_identical(pair, tmp_path):
    _, model, _, path = pair
    save_pretrained(model, tmp_path)
    original, ours = load_file(path / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert set(original) == set(ours)
    for key in original:
        assert original[key].dtype == ours[key].dtype and original[key].tobytes() == ours[key].tobytes(), key


@pytest.mark.parametrize("config_name", ["v3-buckets-shared", "embproj-c2p-conv"])
def test_transformers_loads_minibert(config_name, tmp_path):
    """Saved by minibert, read by `transformers`: no missing / unexpected keys, the same tensors bit for bit, the
    same outputs. Both head layouts (lm_predictions; cls, untied and E-wide)."""
    import transformers

    config = CONFIGS[config_name]
    model = deberta.DebertaV2ForMaskedLM(deberta.DebertaV2Config.from_dict(config))
    rng = np.random.default_rng(0)
    for param in model_state_dict(model).values():
        param.set_value(rng.normal(0, 0.1, param.shape).astype(np.float32) + (param[...] == 1))
    model.eval()
    save_pretrained(model, tmp_path)
    reference, info = transformers.DebertaV2ForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    theirs_state = reference.state_dict()
    for key, param in model_state_dict(model).items():
        assert np.asarray(param[...]).tobytes() == theirs_state[key].numpy().tobytes(), key
    batch = deberta_batch(config, 3, 9, seed=9)
    ours, theirs = model(**batch, output_hidden_states=True), torch_outputs(reference.eval(), batch)
    assert_close_at_real(ours.hidden_states[-1], theirs.hidden_states[-1], batch["attention_mask"])
    assert_close_at_real(ours.logits, theirs.logits, batch["attention_mask"], what="logits")


@pytest.mark.parametrize("held", ["lm_predictions", "cls"])
def test_the_checkpoint_decides_the_head_layout(held, tmp_path, caplog):
    """microsoft/deberta-v3-base's config.json has no `legacy` (True) but its head is `lm_predictions.lm_head.*`:
    transformers would build `cls.predictions` fresh and drop the checkpoint's head; minibert loads it, says so,
    and matches the model built with the layout the weights are for."""
    config = dict(CONFIGS["v3-buckets-shared"], legacy=held == "cls")
    reference = perturbed_reference("DebertaV2ForMaskedLM", tmp_path, config)
    values = json.loads((tmp_path / "config.json").read_text())
    values["legacy"] = not values["legacy"]                                   # config.json says the other layout
    (tmp_path / "config.json").write_text(json.dumps(values))
    model, info = from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert model.config.legacy is (held == "cls") and "loading that layout" in caplog.text
    assert (model.cls is None) == (held == "lm_predictions")
    batch = deberta_batch(config, 2, 8, seed=3)
    assert_close_at_real(model(**batch).logits, torch_outputs(reference, batch).logits, batch["attention_mask"])


def test_encoder_loads_from_masked_lm_checkpoint(tmp_path):
    perturbed_reference("DebertaV2ForMaskedLM", tmp_path, CONFIGS["v3-buckets-shared"])
    encoder, info = deberta.DebertaV2Model.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and all(k.startswith("lm_predictions.") for k in info["unexpected_keys"])


# microsoft/deberta-v3-base's config.json (the authors' dialect: "p2c|c2p", transformers 4.x), shrunk
DEBERTA_V3 = {"model_type": "deberta-v2", "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1, "hidden_size": 15, "initializer_range": 0.02, "intermediate_size": 23,
              "max_position_embeddings": 24, "relative_attention": True, "position_buckets": 6,
              "norm_rel_ebd": "layer_norm", "share_att_key": True, "pos_att_type": "p2c|c2p", "layer_norm_eps": 1e-7,
              "max_relative_positions": -1, "position_biased_input": False, "num_attention_heads": 3,
              "num_hidden_layers": 2, "type_vocab_size": 0, "vocab_size": 53}
# what the model reads, transformers' config class's fields and its modeling code's getattr(config, …) ones
READ = [f for f in deberta.DebertaV2Config.__dataclass_fields__ if f not in ("extra", "architectures")]


@pytest.mark.parametrize("dialect", ["authors-string", "transformers-5-list"])
def test_config_json_both_ways(dialect, tmp_path):
    """pos_att_type as the authors' "p2c|c2p" string and as transformers 5's list: read into DebertaV2Config as
    transformers reads it, written back so that transformers reads the same config again."""
    import transformers

    values = dict(DEBERTA_V3, pos_att_type=["p2c", "c2p"]) if dialect == "transformers-5-list" else DEBERTA_V3
    (tmp_path / "config.json").write_text(json.dumps(values))
    config = minibert.AutoConfig.from_pretrained(tmp_path)
    theirs = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(config) is deberta.DebertaV2Config and config.pos_att_type == ["p2c", "c2p"]
    read = lambda c: {f: getattr(c, f, getattr(deberta.DebertaV2Config(hidden_size=c.hidden_size), f)) for f in READ}
    assert read(config) == read(theirs)
    (tmp_path / "again").mkdir()
    config.save(tmp_path / "again")
    assert read(transformers.AutoConfig.from_pretrained(tmp_path / "again")) == read(theirs)


def test_defaults_are_transformers():
    import transformers

    ours, theirs = deberta.DebertaV2Config(), transformers.DebertaV2Config()
    for field in READ:
        assert getattr(ours, field) == getattr(theirs, field, getattr(ours, field)), field
    assert ours.pos_att_type is theirs.pos_att_type is None and ours.embedding_size == theirs.hidden_size


def test_parity_command(tmp_path, capsys):
    perturbed_reference("DebertaV2ForMaskedLM", tmp_path, CONFIGS["v3-buckets-shared"])
    assert main(["parity", str(tmp_path)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_token_types_without_a_table_are_refused():
    config = CONFIGS["v3-buckets-shared"]
    model = deberta.DebertaV2Model(deberta.DebertaV2Config.from_dict(config))
    batch = deberta_batch(config, 2, 6)
    model.check_inputs(batch["input_ids"], batch["attention_mask"], np.zeros((2, 6), np.int64))
    with pytest.raises(ValueError, match=r"token_type_ids outside \[0, 1\).*type_vocab_size is 0"):
        model(**batch, token_type_ids=np.ones((2, 6), np.int64))


@pytest.mark.parametrize("bad, message", [
    (dict(pos_att_type=["c2p", "p2p"]), r"pos_att_type \['c2p', 'p2p'\]: unknown \['p2p'\]"),
    (dict(norm_rel_ebd="batch_norm"), "norm_rel_ebd 'batch_norm'"),
    (dict(legacy=False, embedding_size=12), "legacy False .* needs embedding_size = hidden_size"),
    (dict(conv_kernel_size=4), "conv_kernel_size 4 must be odd"),
    (dict(hidden_size=16), "hidden_size 16 is not a multiple of num_attention_heads 3"),
])
def test_bad_configs_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        deberta.DebertaV2Model(deberta.DebertaV2Config.from_dict({**SMALL, **bad}))
